package mirror

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// askingTarget is a registry-like target whose stores answer the questions a registry does in one
// request each (ReferencePusher, TagReader, CheckingPusher), and log every request they would send.
type askingTarget struct {
	*fakeTarget
	mu     sync.Mutex
	asked  []string
	stores map[string]*askingStore
	// mangle: the bytes read by tag are not those pushed (a registry that rewrites manifests).
	mangle bool
}

func (t *askingTarget) Store(ctx context.Context, plan *ImagePlan) (Store, error) {
	st, err := t.fakeTarget.Store(ctx, plan)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stores == nil {
		t.stores = map[string]*askingStore{}
	}
	if s, ok := t.stores[st.Name()]; ok {
		return s, nil
	}
	s := &askingStore{fakeStore: st.(*fakeStore), t: t}
	t.stores[st.Name()] = s
	return s, nil
}

func (t *askingTarget) ask(format string, args ...any) {
	t.mu.Lock()
	t.asked = append(t.asked, fmt.Sprintf(format, args...))
	t.mu.Unlock()
}

type askingStore struct {
	*fakeStore
	t *askingTarget
}

var (
	_ ReferencePusher = (*askingStore)(nil)
	_ TagReader       = (*askingStore)(nil)
	_ CheckingPusher  = (*askingStore)(nil)
)

func (s *askingStore) Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	s.t.ask("exists %s", desc.Digest)
	return s.fakeStore.Exists(ctx, desc)
}

func (s *askingStore) Push(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	s.t.ask("push %s", desc.Digest)
	return s.fakeStore.Push(ctx, desc, r)
}

func (s *askingStore) ChecksOnPush(ocispec.Descriptor) bool { return true }

func (s *askingStore) PushChecked(ctx context.Context, desc ocispec.Descriptor, open func() (io.ReadCloser, error)) (bool, error) {
	s.t.ask("push-checked %s", desc.Digest)
	if ok, _ := s.fakeStore.Exists(ctx, desc); ok {
		return true, nil
	}
	rc, err := open()
	if err != nil {
		return false, err
	}
	defer rc.Close()
	return false, s.fakeStore.Push(ctx, desc, rc)
}

func (s *askingStore) PushReference(ctx context.Context, desc ocispec.Descriptor, r io.Reader, reference string) error {
	s.t.ask("push-tag %s", reference)
	if err := s.fakeStore.Push(ctx, desc, r); err != nil {
		return err
	}
	return s.fakeStore.Tag(ctx, desc, reference)
}

func (s *askingStore) FetchTagged(ctx context.Context, reference string) (ocispec.Descriptor, []byte, error) {
	s.t.ask("get-tag %s", reference)
	d, err := s.fakeStore.Resolve(ctx, reference)
	if err != nil {
		return d, nil, err
	}
	b, err := s.fakeStore.FetchManifest(ctx, d)
	if s.t.mangle {
		b = bytes.Replace(b, []byte("schemaVersion"), []byte("schemaVersioN"), 1)
	}
	return d, b, err
}

func (s *askingStore) FetchManifest(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	s.t.ask("get %s", desc.Digest)
	return s.fakeStore.FetchManifest(ctx, desc)
}

func (s *askingStore) Resolve(ctx context.Context, reference string) (ocispec.Descriptor, error) {
	s.t.ask("resolve %s", reference)
	return s.fakeStore.Resolve(ctx, reference)
}

// TestCopyAsksOnce: a single-platform image into a registry-like store that has none of it is its two
// blobs, each pushed with its exists-check in the same request, then the manifest pushed once by its
// tag, then that tag read back once (bytes and tag); no exists-check of the manifest, whose blobs were
// missing. Again, with everything there: the two blob checks and the tag read once, nothing written.
func TestCopyAsksOnce(t *testing.T) {
	_, plans := samplePlans(t)
	plan := plans[1] // team/api:2.0, a config and two layers
	tgt := &askingTarget{fakeTarget: newFakeTarget()}
	rep, err := Copy(context.Background(), []*ImagePlan{plan}, tgt, CopyOptions{Retry: testRetry})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, b := range plan.Root.Blobs {
		want = append(want, "push-checked "+b.Digest.String())
	}
	blobs := len(want)
	want = append(want, "push-tag 2.0", "get-tag 2.0")
	got := tgt.asked
	slices.Sort(got[:min(blobs, len(got))]) // blobs go in parallel
	slices.Sort(want[:blobs])
	if !slices.Equal(got, want) {
		t.Errorf("first copy asked:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if rep.Images[0].Status != "pushed" || rep.Blobs.Pushed != blobs || rep.Manifests.Pushed != 1 || rep.Verified != 1 || rep.Tags != 1 {
		t.Errorf("first copy: %s, %d blobs and %d manifests pushed, %d verified, %d tags", rep.Images[0].Status, rep.Blobs.Pushed, rep.Manifests.Pushed, rep.Verified, rep.Tags)
	}

	tgt.asked = nil
	writes := len(tgt.events)
	rep, err = Copy(context.Background(), []*ImagePlan{plan}, tgt, CopyOptions{Retry: testRetry})
	if err != nil {
		t.Fatal(err)
	}
	got = tgt.asked
	slices.Sort(got[:min(blobs, len(got))])
	if want = append(want[:blobs], "get-tag 2.0"); !slices.Equal(got, want) {
		t.Errorf("second copy asked:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if len(tgt.events) != writes || rep.Images[0].Status != "up-to-date" || rep.Blobs.Skipped != blobs || rep.Verified != 1 {
		t.Errorf("second copy: %d writes, %s, %d blobs skipped, %d verified", len(tgt.events)-writes, rep.Images[0].Status, rep.Blobs.Skipped, rep.Verified)
	}
}

// TestCopyReadBackByTagFindsAlteredManifest: the read-back by tag compares the bytes, not only where
// the tag points.
func TestCopyReadBackByTagFindsAlteredManifest(t *testing.T) {
	_, plans := samplePlans(t)
	tgt := &askingTarget{fakeTarget: newFakeTarget(), mangle: true}
	_, err := Copy(context.Background(), plans[1:], tgt, CopyOptions{Retry: testRetry})
	if err == nil || !strings.Contains(err.Error(), "differs from the source") {
		t.Errorf("a registry serving other bytes under the tag: err %v", err)
	}
}
