package engine_test

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
)

// overlapTarget is a FakeTarget whose stores (Store only: no optional abilities) count the pushes
// in flight at once. Each push waits a little for more to start, until wanted have.
type overlapTarget struct {
	*mirrortest.FakeTarget
	mu             sync.Mutex
	inFlight, most int
	// started is closed once wanted pushes are in flight together; each push waits for it, at most
	// wait (50ms if unset).
	started chan struct{}
	wanted  int
	wait    time.Duration
	closed  bool
}

func (o *overlapTarget) Store(ctx context.Context, ip *plan.ImagePlan) (engine.Store, error) {
	st, err := o.FakeTarget.Store(ctx, ip)
	return overlapStore{st, o}, err
}

type overlapStore struct {
	engine.Store
	o *overlapTarget
}

func (s overlapStore) Push(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	o := s.o
	o.mu.Lock()
	o.inFlight++
	o.most = max(o.most, o.inFlight)
	if o.inFlight == o.wanted && !o.closed {
		o.closed = true
		close(o.started)
	}
	o.mu.Unlock()
	wait := o.wait
	if wait == 0 {
		wait = 50 * time.Millisecond
	}
	select {
	case <-o.started:
	case <-time.After(wait):
	}
	err := s.Store.Push(ctx, desc, r)
	o.mu.Lock()
	o.inFlight--
	o.mu.Unlock()
	return err
}

// Concurrency 1 pushes one blob at a time, 2 two; 0 (unset) means the default, 8: the four blobs of
// the image go at once.
func TestCopyConcurrency(t *testing.T) {
	for _, tc := range []struct{ concurrency, most int }{{1, 1}, {2, 2}, {0, 4}} {
		src := &mirrortest.FakeSource{Blobs: map[digest.Digest][]byte{}}
		ip := mirrortest.Plan(t, src, "registry.example.com/team/app:1.0", mirrortest.ImageNode(t, src, "team/app", 10, 20, 30))
		tgt := &overlapTarget{FakeTarget: mirrortest.NewFakeTarget(), started: make(chan struct{}), wanted: max(tc.most, 2)}
		if tc.most > 1 {
			tgt.wait = 5 * time.Second // they start together long before: no flake on a busy machine
		}
		rep, err := engine.Copy(context.Background(), []*plan.ImagePlan{ip}, tgt, engine.CopyOptions{Retry: mirrortest.Retry, Concurrency: tc.concurrency})
		if err != nil || rep.Blobs.Pushed != 4 {
			t.Fatalf("concurrency %d: %d blobs pushed, %v; want 4", tc.concurrency, rep.Blobs.Pushed, err)
		}
		if tgt.most != tc.most {
			t.Errorf("concurrency %d: %d pushes at once at most, want %d", tc.concurrency, tgt.most, tc.most)
		}
	}
}
