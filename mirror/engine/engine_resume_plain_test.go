package engine_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/internal/mirrortest"
)

// plainSource serves a FakeSource's blobs whole only (no RangeFetcher), and each body fails once
// closed, as a network body does; it counts the bodies opened and closed.
type plainSource struct {
	src            *mirrortest.FakeSource
	mu             sync.Mutex
	opened, closed int
}

func (p *plainSource) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	rc, err := p.src.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.opened++
	p.mu.Unlock()
	return &closingBody{r: rc, p: p}, nil
}

func (p *plainSource) Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error) {
	return p.src.Resolve(ctx, ref)
}

type closingBody struct {
	r    io.Reader
	p    *plainSource
	done bool
}

func (b *closingBody) Read(buf []byte) (int, error) {
	if b.done {
		return 0, errors.New("read on a closed body")
	}
	return b.r.Read(buf)
}

func (b *closingBody) Close() error {
	if !b.done {
		b.done = true
		b.p.mu.Lock()
		b.p.closed++
		b.p.mu.Unlock()
	}
	return nil
}

// A partial blob resumed from a source that cannot read from an offset is read from the start, what
// the store holds skipped, and the blob stored whole; every body opened is closed, after it is read.
func TestCopyResumesFromAPlainSource(t *testing.T) {
	src, plans := mirrortest.SamplePlans(t)
	ip := plans[1]
	layer := ip.Root.Blobs[1] // 3000 bytes
	plain := &plainSource{src: src}
	ip.Content = plain
	tgt := mirrortest.NewFakeTarget()
	tgt.Partial[layer.Digest] = src.Blobs[layer.Digest][:2000]
	rep, err := engine.Copy(context.Background(), plans[1:], tgt, engine.CopyOptions{Retry: mirrortest.Retry})
	if err != nil {
		t.Fatal(err)
	}
	got := tgt.Stores["site/team/api"].Content[layer.Digest]
	if string(got) != string(src.Blobs[layer.Digest]) || rep.Resumed != 1 || rep.Blobs.Pushed != 3 {
		t.Errorf("stored %d bytes of the layer, resumed %d, pushed %d; want all 3000, 1 and 3", len(got), rep.Resumed, rep.Blobs.Pushed)
	}
	if plain.opened != 3 || plain.closed != 3 {
		t.Errorf("bodies opened %d, closed %d; want 3 and 3 (one a blob)", plain.opened, plain.closed)
	}
}
