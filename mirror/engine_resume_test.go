package mirror

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// wholeSource is a source that cannot start a blob at an offset (no Range requests).
type wholeSource struct{ s *fakeSource }

func (w wholeSource) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	return w.s.Fetch(ctx, d)
}

func (w wholeSource) Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error) {
	return w.s.Resolve(ctx, ref)
}

// TestCopyResumesFromWholeSource: a partial blob resumed from a source that cannot read from an
// offset is read whole, the bytes the target holds skipped; the blob lands right.
func TestCopyResumesFromWholeSource(t *testing.T) {
	src, plans := samplePlans(t)
	plan := plans[1]
	plan.repo = wholeSource{src}
	layer := plan.Root.Blobs[1] // 3000 bytes
	tgt := newFakeTarget()
	tgt.partial[layer.Digest] = src.blobs[layer.Digest][:2000]
	rep, err := Copy(context.Background(), []*ImagePlan{plan}, tgt, CopyOptions{Retry: testRetry})
	if err != nil {
		t.Fatal(err)
	}
	var whole int64
	for _, b := range plan.Root.Blobs {
		whole += b.Size
	}
	if rep.Resumed != 1 || src.served != whole {
		t.Errorf("resumed %d, the source served %d bytes; want 1 and every byte (%d)", rep.Resumed, src.served, whole)
	}
	if got := tgt.stores["site/team/api"].content[layer.Digest]; !bytes.Equal(got, src.blobs[layer.Digest]) {
		t.Errorf("the resumed layer holds %d bytes, not the layer", len(got))
	}
}

// plainTarget's stores can only Push: no resume, no exists-check on push.
type plainTarget struct{ *fakeTarget }

func (t plainTarget) Store(ctx context.Context, p *ImagePlan) (Store, error) {
	st, err := t.fakeTarget.Store(ctx, p)
	if err != nil {
		return nil, err
	}
	return plainStore{st.(*fakeStore)}, nil
}

type plainStore struct{ s *fakeStore }

func (p plainStore) Name() string { return p.s.Name() }
func (p plainStore) Exists(ctx context.Context, d ocispec.Descriptor) (bool, error) {
	return p.s.Exists(ctx, d)
}
func (p plainStore) Push(ctx context.Context, d ocispec.Descriptor, r io.Reader) error {
	return p.s.Push(ctx, d, r)
}
func (p plainStore) Tag(ctx context.Context, d ocispec.Descriptor, ref string) error {
	return p.s.Tag(ctx, d, ref)
}

// TestCopyPlainStoreSourceFailing: into a store that can only push, a blob the source cannot serve
// fails its image, naming the blob and the source; the other image lands.
func TestCopyPlainStoreSourceFailing(t *testing.T) {
	src, plans := samplePlans(t)
	gone := plans[1].Root.Blobs[1]
	delete(src.blobs, gone.Digest)
	tgt := plainTarget{newFakeTarget()}
	rep, err := Copy(context.Background(), plans, tgt, CopyOptions{Retry: testRetry})
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
