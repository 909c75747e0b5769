package engine_test

import (
	"context"
	"fmt"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
)

// mountTarget is a FakeTarget whose stores mount a blob from another store that holds it.
type mountTarget struct{ *mirrortest.FakeTarget }

func (m mountTarget) Store(ctx context.Context, ip *plan.ImagePlan) (engine.Store, error) {
	st, err := m.FakeTarget.Store(ctx, ip)
	if err != nil {
		return nil, err
	}
	return mountStore{st.(*mirrortest.FakeStore), m.FakeTarget}, nil
}

type mountStore struct {
	*mirrortest.FakeStore
	t *mirrortest.FakeTarget
}

func (s mountStore) Mount(_ context.Context, desc ocispec.Descriptor, from engine.Store) (bool, error) {
	f := from.(mountStore).FakeStore
	f.Mu.Lock()
	b, ok := f.Content[desc.Digest]
	f.Mu.Unlock()
	if !ok {
		return false, fmt.Errorf("mount %s from %s: not there", desc.Digest, f.Name())
	}
	s.Mu.Lock()
	s.Content[desc.Digest] = b
	s.Mu.Unlock()
	s.t.Record("mount %s %s from %s", s.Name(), desc.Digest, f.Name())
	return true, nil
}

// A blob two stores of one target need is uploaded into the store that gets to it first and mounted
// into the other from it, once it is there.
func TestCopyMountsFromTheStoreThatGotItFirst(t *testing.T) {
	_, plans := mirrortest.SamplePlans(t)
	api := plans[1]
	other := *api
	other.Image.Repository = "team/other"
	var size int64
	for _, b := range api.Root.Blobs {
		size += b.Size
	}
	tgt := mountTarget{mirrortest.NewFakeTarget()}
	rep, err := engine.Copy(context.Background(), []*plan.ImagePlan{api, &other}, tgt, engine.CopyOptions{Retry: mirrortest.Retry, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Blobs.Pushed != 3 || rep.Blobs.Mounted != 3 || rep.Blobs.BytesPushed != size || rep.Blobs.BytesMounted != size {
		t.Errorf("blobs %+v: want 3 (%d bytes) pushed and the same 3 mounted", rep.Blobs, size)
	}
	for _, b := range api.Root.Blobs {
		ok := false
		for _, pair := range [][2]string{{"site/team/api", "site/team/other"}, {"site/team/other", "site/team/api"}} {
			first := mirrortest.IndexOf(tgt.Events, "blob "+pair[0]+" "+b.Digest.String())
			mount := mirrortest.IndexOf(tgt.Events, "mount "+pair[1]+" "+b.Digest.String()+" from "+pair[0])
			again := mirrortest.IndexOf(tgt.Events, "blob "+pair[1]+" "+b.Digest.String())
			ok = ok || (first >= 0 && mount > first && again < 0)
		}
		if !ok {
			t.Errorf("%s: want it pushed into one store, then mounted from it into the other, never pushed there; events %q", b.Digest, tgt.Events)
		}
	}
}
