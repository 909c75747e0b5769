package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
)

// askingTarget is a registry-like target whose stores answer the questions a registry does in one
// request each (Tagger, BlobPusher), and log every request they would send.
type askingTarget struct {
	*mirrortest.FakeTarget
	Mu     sync.Mutex
	asked  []string
	Stores map[string]*askingStore
	// mangle: the bytes read by tag are not those pushed (a registry that rewrites manifests).
	mangle bool
}

func (t *askingTarget) Store(ctx context.Context, ip *plan.ImagePlan) (engine.Store, error) {
	st, err := t.FakeTarget.Store(ctx, ip)
	if err != nil {
		return nil, err
	}
	t.Mu.Lock()
	defer t.Mu.Unlock()
	if t.Stores == nil {
		t.Stores = map[string]*askingStore{}
	}
	if s, ok := t.Stores[st.Name()]; ok {
		return s, nil
	}
	s := &askingStore{FakeStore: st.(*mirrortest.FakeStore), t: t}
	t.Stores[st.Name()] = s
	return s, nil
}

func (t *askingTarget) ask(format string, args ...any) {
	t.Mu.Lock()
	t.asked = append(t.asked, fmt.Sprintf(format, args...))
	t.Mu.Unlock()
}

type askingStore struct {
	*mirrortest.FakeStore
	t *askingTarget
}

var (
	_ engine.Tagger     = (*askingStore)(nil)
	_ engine.BlobPusher = (*askingStore)(nil)
)

func (s *askingStore) Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	s.t.ask("exists %s", desc.Digest)
	return s.FakeStore.Exists(ctx, desc)
}

func (s *askingStore) Push(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	s.t.ask("push %s", desc.Digest)
	return s.FakeStore.Push(ctx, desc, r)
}

func (s *askingStore) ChecksOnPush(ocispec.Descriptor) bool { return true }

func (s *askingStore) PushBlob(ctx context.Context, desc ocispec.Descriptor, open func(int64) (io.ReadCloser, error), check bool) (bool, error) {
	if !check {
		return false, errors.New("pushed without its check")
	}
	s.t.ask("push-checked %s", desc.Digest)
	if ok, _ := s.FakeStore.Exists(ctx, desc); ok {
		return true, nil
	}
	rc, err := open(0)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	return false, s.FakeStore.Push(ctx, desc, rc)
}

func (s *askingStore) PushTagged(ctx context.Context, desc ocispec.Descriptor, manifest []byte, reference string) error {
	s.t.ask("push-tag %s", reference)
	return s.FakeStore.PushTagged(ctx, desc, manifest, reference)
}

func (s *askingStore) FetchTagged(ctx context.Context, reference string) (ocispec.Descriptor, []byte, error) {
	s.t.ask("get-tag %s", reference)
	d, b, err := s.FakeStore.FetchTagged(ctx, reference)
	if s.t.mangle {
		b = bytes.Replace(b, []byte("schemaVersion"), []byte("schemaVersioN"), 1)
	}
	return d, b, err
}

func (s *askingStore) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	s.t.ask("get %s", desc.Digest)
	return s.FakeStore.Fetch(ctx, desc)
}

// TestCopyAsksOnce: a single-platform image into a registry-like store that has none of it is the
// preflight's read of its tag (not there), its two blobs, each pushed with its exists-check in the
// same request, then the manifest pushed once by its tag, then that tag read back once (bytes and
// tag); no exists-check of the manifest, whose blobs were missing. Again, with everything there: the
// tag read once before the blobs (right: no PUT, no read-back), the two blob checks, nothing written.
func TestCopyAsksOnce(t *testing.T) {
	_, plans := mirrortest.SamplePlans(t)
	ip := plans[1] // team/api:2.0, a config and two layers
	tgt := &askingTarget{FakeTarget: mirrortest.NewFakeTarget()}
	opts := engine.CopyOptions{Retry: mirrortest.Retry, Preflight: true}
	rep, err := engine.Copy(context.Background(), []*plan.ImagePlan{ip}, tgt, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"get-tag 2.0"}
	for _, b := range ip.Root.Blobs {
		want = append(want, "push-checked "+b.Digest.String())
	}
	blobs := len(ip.Root.Blobs)
	want = append(want, "push-tag 2.0", "get-tag 2.0")
	got := tgt.asked
	slices.Sort(got[1:min(1+blobs, len(got))]) // blobs go in parallel
	slices.Sort(want[1 : 1+blobs])
	if !slices.Equal(got, want) {
		t.Errorf("first copy asked:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if rep.Images[0].Status != "pushed" || rep.Blobs.Pushed != blobs || rep.Manifests.Pushed != 1 || rep.Verified != 1 || rep.Tags != 1 || rep.Images[0].TagMoved != nil {
		t.Errorf("first copy: %s, %d blobs and %d manifests pushed, %d verified, %d tags, moved %v", rep.Images[0].Status, rep.Blobs.Pushed, rep.Manifests.Pushed, rep.Verified, rep.Tags, rep.Images[0].TagMoved)
	}

	tgt.asked = nil
	writes := len(tgt.Events)
	rep, err = engine.Copy(context.Background(), []*plan.ImagePlan{ip}, tgt, opts)
	if err != nil {
		t.Fatal(err)
	}
	got = tgt.asked
	slices.Sort(got[1:min(1+blobs, len(got))])
	if want = want[:1+blobs]; !slices.Equal(got, want) {
		t.Errorf("second copy asked:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if len(tgt.Events) != writes || rep.Images[0].Status != "up-to-date" || rep.Blobs.Skipped != blobs || rep.Manifests.Skipped != 1 || rep.Manifests.Pushed != 0 || rep.Verified != 1 || rep.Tags != 0 {
		t.Errorf("second copy: %d writes, %s, %d blobs and %d manifests skipped (%d pushed), %d verified, %d tags", len(tgt.Events)-writes, rep.Images[0].Status, rep.Blobs.Skipped, rep.Manifests.Skipped, rep.Manifests.Pushed, rep.Verified, rep.Tags)
	}
}

// immutableTarget refuses, as Harbor and ECR do with tag immutability, a PUT to a tag that exists,
// even one that names the same digest.
type immutableTarget struct{ *askingTarget }

func (t *immutableTarget) Store(ctx context.Context, ip *plan.ImagePlan) (engine.Store, error) {
	st, err := t.askingTarget.Store(ctx, ip)
	if err != nil {
		return nil, err
	}
	return &immutableStore{st.(*askingStore)}, nil
}

type immutableStore struct{ *askingStore }

func (s *immutableStore) PushTagged(ctx context.Context, desc ocispec.Descriptor, manifest []byte, reference string) error {
	if _, _, err := s.FakeStore.FetchTagged(ctx, reference); err == nil {
		return mirrortest.Refusal(412, "PRECONDITION", "configured as immutable")
	}
	return s.askingStore.PushTagged(ctx, desc, manifest, reference)
}

// TestCopyImmutableTags: a run again into a target that refuses any PUT to an existing tag passes: a
// tag that names the wanted digest (the image's own, a cosign tag) is left alone, with no PUT.
func TestCopyImmutableTags(t *testing.T) {
	_, plans := mirrortest.SamplePlans(t)
	tgt := &immutableTarget{&askingTarget{FakeTarget: mirrortest.NewFakeTarget()}}
	opts := engine.CopyOptions{Retry: mirrortest.Retry, Preflight: true}
	for run := range 2 {
		tgt.asked = nil
		if _, err := engine.Copy(context.Background(), plans, tgt, opts); err != nil {
			t.Fatalf("run %d: %v", run+1, err)
		}
		if run == 1 && slices.ContainsFunc(tgt.asked, func(a string) bool { return strings.HasPrefix(a, "push-tag") }) {
			t.Errorf("run again wrote tags:\n  %s", strings.Join(tgt.asked, "\n  "))
		}
	}
}

// moveTag points tag of store at a manifest of its own, as another load would have.
func moveTag(t *testing.T, tgt *mirrortest.FakeTarget, store, tag string) digest.Digest {
	t.Helper()
	b := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)
	d := digest.FromBytes(b)
	s := tgt.Stores[store]
	s.Mu.Lock()
	s.Content[d], s.Tags[tag] = b, d
	s.Mu.Unlock()
	return d
}

// TestCopyTagMoves: a tag that named another digest is moved and reported; with RefuseTagMoves it is
// left alone, its image fails with nothing of it pushed, and the other images land.
func TestCopyTagMoves(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		_, plans := mirrortest.SamplePlans(t)
		tgt := &askingTarget{FakeTarget: mirrortest.NewFakeTarget()}
		for _, p := range plans { // the stores, empty
			if _, err := tgt.Store(context.Background(), p); err != nil {
				t.Fatal(err)
			}
		}
		old := moveTag(t, tgt.FakeTarget, "site/team/api", "2.0")
		rep, err := engine.Copy(context.Background(), plans, tgt, engine.CopyOptions{Retry: mirrortest.Retry, Preflight: true, RefuseTagMoves: refuse})
		app, api := rep.Images[0], rep.Images[1]
		if m := api.TagMoved; m == nil || m.From != old || m.To != plans[1].Root.Desc.Digest || m.Refused != refuse {
			t.Errorf("refuse %v: tag move reported as %+v, want %s -> %s", refuse, m, old, plans[1].Root.Desc.Digest)
		}
		if app.Status != "pushed" || app.TagMoved != nil {
			t.Errorf("refuse %v: the other image: %s, moved %v", refuse, app.Status, app.TagMoved)
		}
		now := tgt.Stores["site/team/api"].Tags["2.0"]
		if !refuse {
			if err != nil || api.Status != "pushed" || now != plans[1].Root.Desc.Digest {
				t.Errorf("allow: %v, %s, tag at %s", err, api.Status, now)
			}
			continue
		}
		if err == nil || api.Status != "failed" || now != old || !strings.Contains(api.Error, "--tag-moves=refuse") {
			t.Errorf("refuse: %v, %s (%s), tag at %s, want it left at %s", err, api.Status, api.Error, now, old)
		}
		if slices.ContainsFunc(tgt.Events, func(e string) bool { return strings.Contains(e, "site/team/api") }) {
			t.Errorf("refuse: something of the refused image was written: %v", tgt.Events)
		}
	}
}

// TestCopyReadBackByTagFindsAlteredManifest: the read-back by tag compares the bytes, not only where
// the tag points.
func TestCopyReadBackByTagFindsAlteredManifest(t *testing.T) {
	_, plans := mirrortest.SamplePlans(t)
	tgt := &askingTarget{FakeTarget: mirrortest.NewFakeTarget(), mangle: true}
	_, err := engine.Copy(context.Background(), plans[1:], tgt, engine.CopyOptions{Retry: mirrortest.Retry})
	if err == nil || !strings.Contains(err.Error(), "differs from the source") {
		t.Errorf("a registry serving other bytes under the tag: err %v", err)
	}
}
