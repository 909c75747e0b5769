package engine_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
)

// wholeSource is a source that cannot start a blob at an offset (no Range requests).
type wholeSource struct{ s *mirrortest.FakeSource }

func (w wholeSource) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	return w.s.Fetch(ctx, d)
}

func (w wholeSource) Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error) {
	return w.s.Resolve(ctx, ref)
}

// TestCopyResumesFromWholeSource: a partial blob resumed from a source that cannot read from an
// offset is read whole, the bytes the target holds skipped; the blob lands right.
func TestCopyResumesFromWholeSource(t *testing.T) {
	src, plans := mirrortest.SamplePlans(t)
	ip := plans[1]
	ip.Content = wholeSource{src}
	layer := ip.Root.Blobs[1] // 3000 bytes
	tgt := mirrortest.NewFakeTarget()
	tgt.Partial[layer.Digest] = src.Blobs[layer.Digest][:2000]
	rep, err := engine.Copy(context.Background(), []*plan.ImagePlan{ip}, tgt, engine.CopyOptions{Retry: mirrortest.Retry})
	if err != nil {
		t.Fatal(err)
	}
	var whole int64
	for _, b := range ip.Root.Blobs {
		whole += b.Size
	}
	if rep.Resumed != 1 || src.Served != whole {
		t.Errorf("resumed %d, the source served %d bytes; want 1 and every byte (%d)", rep.Resumed, src.Served, whole)
	}
	if got := tgt.Stores["site/team/api"].Content[layer.Digest]; !bytes.Equal(got, src.Blobs[layer.Digest]) {
		t.Errorf("the resumed layer holds %d bytes, not the layer", len(got))
	}
}

// plainTarget's stores can only Push: no resume, no exists-check on push, no tags.
type plainTarget struct{ *mirrortest.FakeTarget }

func (t plainTarget) Store(ctx context.Context, p *plan.ImagePlan) (engine.Store, error) {
	st, err := t.FakeTarget.Store(ctx, p)
	if err != nil {
		return nil, err
	}
	return plainStore{st.(*mirrortest.FakeStore)}, nil
}

type plainStore struct{ s *mirrortest.FakeStore }

func (p plainStore) Name() string { return p.s.Name() }
func (p plainStore) Exists(ctx context.Context, d ocispec.Descriptor) (bool, error) {
	return p.s.Exists(ctx, d)
}
func (p plainStore) Push(ctx context.Context, d ocispec.Descriptor, r io.Reader) error {
	return p.s.Push(ctx, d, r)
}

// TestCopyPlainStoreSourceFailing: into a store that can only push, a blob the source cannot serve
// fails its image, naming the blob and the source; the other image lands.
func TestCopyPlainStoreSourceFailing(t *testing.T) {
	src, plans := mirrortest.SamplePlans(t)
	gone := plans[1].Root.Blobs[1]
	delete(src.Blobs, gone.Digest)
	tgt := plainTarget{mirrortest.NewFakeTarget()}
	rep, err := engine.Copy(context.Background(), plans, tgt, engine.CopyOptions{Retry: mirrortest.Retry})
	if err == nil {
		t.Fatal("a blob the source lacks was not reported")
	}
	if rep.Images[0].Status != "pushed" || rep.Images[1].Status != "failed" {
		t.Errorf("statuses %s, %s; want pushed, failed", rep.Images[0].Status, rep.Images[1].Status)
	}
	if !strings.Contains(rep.Images[1].Error, "read blob "+gone.Digest.String()) {
		t.Errorf("error %q does not name the blob", rep.Images[1].Error)
	}
}
