package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"oras.land/oras-go/v2/errdef"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/referrers"
	"airlock.dev/airlock/registry"
)

// fakeSource serves content by digest and counts the bytes it served.
type fakeSource struct {
	mu     sync.Mutex
	blobs  map[digest.Digest][]byte
	served int64
	// alter, if set, is served with a digest mismatch at its end, as archive.Reader reports one.
	alter digest.Digest
}

func (s *fakeSource) add(b []byte) digest.Digest {
	d := digest.FromBytes(b)
	s.mu.Lock()
	s.blobs[d] = b
	s.mu.Unlock()
	return d
}

func (s *fakeSource) Fetch(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	s.mu.Lock()
	b, ok := s.blobs[desc.Digest]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%s: not found", desc.Digest)
	}
	var r io.Reader = &countingReader{r: bytes.NewReader(b), s: s}
	if desc.Digest == s.alter {
		r = io.MultiReader(io.LimitReader(r, int64(len(b)-1)), errReader{&archive.DigestMismatchError{Expected: desc.Digest}})
	}
	return io.NopCloser(r), nil
}

func (s *fakeSource) FetchFrom(ctx context.Context, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	rc, err := s.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.served -= offset // a Range request: those bytes are not sent
	s.mu.Unlock()
	_, err = io.CopyN(io.Discard, rc, offset)
	return rc, err
}

func (s *fakeSource) Resolve(context.Context, string) (ocispec.Descriptor, error) {
	return ocispec.Descriptor{}, errors.New("no tags")
}

type countingReader struct {
	r io.Reader
	s *fakeSource
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.s.mu.Lock()
	c.s.served += int64(n)
	c.s.mu.Unlock()
	return n, err
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// fakeTarget is a registry-like target: one store per repository, every write recorded in order.
type fakeTarget struct {
	mu     sync.Mutex
	events []string
	stores map[string]*fakeStore
	// failBlob is refused by every store, for good.
	failBlob digest.Digest
	// partial holds what an interrupted run left of a blob, for PushResumable.
	partial map[digest.Digest][]byte
}

func newFakeTarget() *fakeTarget {
	return &fakeTarget{stores: map[string]*fakeStore{}, partial: map[digest.Digest][]byte{}}
}

func (t *fakeTarget) record(format string, args ...any) {
	t.mu.Lock()
	t.events = append(t.events, fmt.Sprintf(format, args...))
	t.mu.Unlock()
}

func (t *fakeTarget) Store(_ context.Context, plan *ImagePlan) (Store, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	name := "site/" + plan.Image.Repository
	if s, ok := t.stores[name]; ok {
		return s, nil
	}
	s := &fakeStore{t: t, name: name, content: map[digest.Digest][]byte{}, tags: map[string]digest.Digest{}}
	t.stores[name] = s
	return s, nil
}

type fakeStore struct {
	t       *fakeTarget
	name    string
	mu      sync.Mutex
	content map[digest.Digest][]byte
	tags    map[string]digest.Digest
}

var (
	_ ResumablePusher  = (*fakeStore)(nil)
	_ ReferrerAttacher = (*fakeStore)(nil)
	_ ReadBacker       = (*fakeStore)(nil)
)

func (s *fakeStore) Name() string { return s.name }

func (s *fakeStore) Exists(_ context.Context, desc ocispec.Descriptor) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.content[desc.Digest]
	return ok, nil
}

func (s *fakeStore) Push(_ context.Context, desc ocispec.Descriptor, r io.Reader) error {
	if desc.Digest == s.t.failBlob {
		return errors.New("denied: quota exceeded") // not retryable
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if digest.FromBytes(b) != desc.Digest {
		return fmt.Errorf("%s: digest mismatch", desc.Digest)
	}
	s.mu.Lock()
	s.content[desc.Digest] = b
	s.mu.Unlock()
	kind := "blob"
	if isIndex(desc.MediaType) || isManifest(desc.MediaType) {
		kind = "manifest"
	}
	s.t.record("%s %s %s", kind, s.name, desc.Digest)
	return nil
}

func (s *fakeStore) PushResumable(ctx context.Context, desc ocispec.Descriptor, open func(int64) (io.ReadCloser, error)) (int64, error) {
	s.t.mu.Lock()
	have := s.t.partial[desc.Digest]
	s.t.mu.Unlock()
	rc, err := open(int64(len(have)))
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	cr := &countReader{r: rc}
	err = s.Push(ctx, desc, io.MultiReader(bytes.NewReader(have), cr))
	return cr.n, err
}

func (s *fakeStore) Tag(_ context.Context, desc ocispec.Descriptor, reference string) error {
	s.mu.Lock()
	_, ok := s.content[desc.Digest]
	s.tags[reference] = desc.Digest
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("tag %s: %s is not there", reference, desc.Digest)
	}
	s.t.record("tag %s %s", s.name, reference)
	return nil
}

func (s *fakeStore) AttachReferrers(_ context.Context, plan *ImagePlan) (Attached, error) {
	s.mu.Lock()
	done := s.tags["attached "+plan.Source] != ""
	s.tags["attached "+plan.Source] = plan.Root.Desc.Digest
	s.mu.Unlock()
	if done {
		return Attached{By: "tag-schema"}, nil
	}
	s.t.record("attach %s %s", s.name, plan.Root.Desc.Digest)
	return Attached{By: "tag-schema", Indexes: 1, Changed: true}, nil
}

func (s *fakeStore) FetchManifest(_ context.Context, desc ocispec.Descriptor) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.content[desc.Digest]
	if !ok {
		return nil, fmt.Errorf("%s: not found", desc.Digest)
	}
	return b, nil
}

func (s *fakeStore) Resolve(_ context.Context, reference string) (ocispec.Descriptor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.tags[reference]
	if !ok {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w", reference, errdef.ErrNotFound)
	}
	return ocispec.Descriptor{Digest: d}, nil
}

// imageNode builds an image manifest with a config and layers of the given sizes, stored in src.
func imageNode(t *testing.T, src *fakeSource, repo string, sizes ...int) *Node {
	t.Helper()
	blob := func(mt string, n int, seed string) ocispec.Descriptor {
		b := bytes.Repeat([]byte(seed), n/len(seed)+1)[:n]
		return ocispec.Descriptor{MediaType: mt, Digest: src.add(b), Size: int64(n)}
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: blob(ocispec.MediaTypeImageConfig, 32, repo+"config"+fmt.Sprint(sizes))}
	for i, n := range sizes {
		m.Layers = append(m.Layers, blob(ocispec.MediaTypeImageLayerGzip, n, fmt.Sprintf("%s-layer%d-", repo, i)))
	}
	return manifestNode(t, src, repo, ocispec.MediaTypeImageManifest, m, append([]ocispec.Descriptor{m.Config}, m.Layers...))
}

func manifestNode(t *testing.T, src *fakeSource, repo, mt string, v any, blobs []ocispec.Descriptor) *Node {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return &Node{Desc: ocispec.Descriptor{MediaType: mt, Digest: src.add(b), Size: int64(len(b))}, Manifest: b, Repository: repo, Blobs: blobs}
}

// indexNode builds an index over children.
func indexNode(t *testing.T, src *fakeSource, repo string, children ...*Node) *Node {
	t.Helper()
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for _, c := range children {
		idx.Manifests = append(idx.Manifests, c.Desc)
	}
	n := manifestNode(t, src, repo, ocispec.MediaTypeImageIndex, idx, nil)
	n.Children = children
	return n
}

// signatureNode builds a referrer of subject (a cosign-like signature) with one layer.
func signatureNode(t *testing.T, src *fakeSource, repo string, subject *Node, tag string) *Node {
	t.Helper()
	n := imageNode(t, src, repo+"-sig-"+subject.Desc.Digest.Encoded()[:8], 64)
	if tag == "" {
		// Found through the referrers API: its manifest names its subject.
		var m ocispec.Manifest
		if err := json.Unmarshal(n.Manifest, &m); err != nil {
			t.Fatal(err)
		}
		m.Subject = &ocispec.Descriptor{MediaType: subject.Desc.MediaType, Digest: subject.Desc.Digest, Size: subject.Desc.Size}
		n = manifestNode(t, src, repo, ocispec.MediaTypeImageManifest, m, n.Blobs)
	}
	n.Repository = repo
	n.Referrer = &referrers.Found{Subject: subject.Desc.Digest, Method: referrers.API}
	if tag != "" {
		n.Referrer.Method, n.Referrer.Tag = referrers.CosignTag, tag
	}
	return n
}

func testPlan(t *testing.T, src *fakeSource, ref string, root *Node, refs ...*Node) *ImagePlan {
	t.Helper()
	img, err := config.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	return &ImagePlan{Image: img, Source: ref, Root: root, Referrers: refs, repo: src}
}

var testRetry = registry.Retry{Attempts: 2, Base: 1, Max: 1}

// samplePlans: a two-platform index with a signature on the index and one on a platform manifest
// (cosign tag), and a single-platform image in another repository that shares a layer size (not a
// layer) with it.
func samplePlans(t *testing.T) (*fakeSource, []*ImagePlan) {
	src := &fakeSource{blobs: map[digest.Digest][]byte{}}
	amd, arm := imageNode(t, src, "team/app", 1000, 2000), imageNode(t, src, "team/app", 1500)
	amd.Platform, arm.Platform = "linux/amd64", "linux/arm64"
	idx := indexNode(t, src, "team/app", amd, arm)
	sig := signatureNode(t, src, "team/app", idx, "")
	sigAmd := signatureNode(t, src, "team/app", amd, "sha256-"+amd.Desc.Digest.Encoded()+".sig")
	app := testPlan(t, src, "registry.example.com/team/app:1.0", idx, sig, sigAmd)
	api := testPlan(t, src, "registry.example.com/team/api:2.0", imageNode(t, src, "team/api", 3000, 10))
	return src, []*ImagePlan{app, api}
}

func indexOf(events []string, prefix string) int {
	return slices.IndexFunc(events, func(e string) bool { return strings.HasPrefix(e, prefix) })
}

func lastIndexOf(events []string, prefix string) int {
	for i := len(events) - 1; i >= 0; i-- {
		if strings.HasPrefix(events[i], prefix) {
			return i
		}
	}
	return -1
}

// at returns the position of the write of n into store, failing the test when there is none.
func at(t *testing.T, events []string, store string, n *Node) int {
	t.Helper()
	i := indexOf(events, "manifest "+store+" "+n.Desc.Digest.String())
	if i < 0 {
		t.Fatalf("manifest %s never pushed to %s; events:\n%s", n.Desc.Digest, store, strings.Join(events, "\n"))
	}
	return i
}

func TestCopyOrder(t *testing.T) {
	_, plans := samplePlans(t)
	tgt := newFakeTarget()
	rep, err := Copy(context.Background(), plans, tgt, CopyOptions{Retry: testRetry, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	ev := tgt.events
	if last, first := lastIndexOf(ev, "blob "), indexOf(ev, "manifest "); last > first {
		t.Errorf("blob written at %d, after the first manifest at %d:\n%s", last, first, strings.Join(ev, "\n"))
	}
	for _, p := range plans {
		store := "site/" + p.Image.Repository
		for _, n := range p.Nodes() {
			for _, c := range n.Children {
				if at(t, ev, store, c) > at(t, ev, store, n) {
					t.Errorf("index %s pushed before its child %s", n.Desc.Digest, c.Desc.Digest)
				}
			}
		}
		for _, r := range p.Referrers {
			subject := slices.IndexFunc(p.Nodes(), func(n *Node) bool { return n.Desc.Digest == r.Referrer.Subject })
			if at(t, ev, store, r) < at(t, ev, store, p.Nodes()[subject]) {
				t.Errorf("referrer %s pushed before its subject %s", r.Desc.Digest, r.Referrer.Subject)
			}
		}
		lastManifest := lastIndexOf(ev, "manifest "+store)
		if len(p.Referrers) > 0 {
			if a := indexOf(ev, "attach "+store); a < lastManifest {
				t.Errorf("referrers of %s attached at %d, before its last manifest at %d", p.Source, a, lastManifest)
			}
		}
		if first := indexOf(ev, "tag "+store); first < lastManifest || first < indexOf(ev, "attach "+store) {
			t.Errorf("%s tagged at %d, before its last manifest (%d) or its referrers index:\n%s", p.Source, first, lastManifest, strings.Join(ev, "\n"))
		}
	}
	if rep.Tags != 3 || rep.Verified != 5+1 || rep.Blobs.Pushed != 12 || rep.ReferrerIndexes != 1 {
		t.Errorf("report: %d tags, %d verified, %d blobs pushed, %d indexes; want 3, 6, 12, 1", rep.Tags, rep.Verified, rep.Blobs.Pushed, rep.ReferrerIndexes)
	}
	for _, ir := range rep.Images {
		if ir.Status != "pushed" {
			t.Errorf("%s: %s %s", ir.Source, ir.Status, ir.Error)
		}
	}
	// Again: everything is there, nothing is written.
	before := len(tgt.events)
	rep, err = Copy(context.Background(), plans, tgt, CopyOptions{Retry: testRetry})
	if err != nil || len(tgt.events) != before || rep.Images[0].Status != "up-to-date" {
		t.Errorf("second copy: err %v, %d more writes, status %s", err, len(tgt.events)-before, rep.Images[0].Status)
	}
}

func TestCopyFailedBlobFailsOnlyItsImages(t *testing.T) {
	_, plans := samplePlans(t)
	tgt := newFakeTarget()
	tgt.failBlob = plans[1].Root.Blobs[1].Digest // a layer of team/api only
	rep, err := Copy(context.Background(), plans, tgt, CopyOptions{Retry: testRetry})
	if err == nil || !strings.Contains(err.Error(), "team/api") || strings.Contains(err.Error(), "team/app") {
		t.Errorf("error: %v", err)
	}
	if app, api := rep.Images[0], rep.Images[1]; app.Status != "pushed" || api.Status != "failed" || !strings.Contains(api.Error, tgt.failBlob.String()) {
		t.Errorf("statuses: app %s, api %s (%s)", app.Status, api.Status, api.Error)
	}
	if i := indexOf(tgt.events, "manifest site/team/api"); i >= 0 {
		t.Errorf("a manifest of the failed image was pushed: %s", tgt.events[i])
	}
	if i := indexOf(tgt.events, "tag site/team/api"); i >= 0 {
		t.Errorf("the failed image was tagged: %s", tgt.events[i])
	}
	if rep.Blobs.Failed != 1 {
		t.Errorf("%d blobs failed, want 1", rep.Blobs.Failed)
	}
}

func TestCopyResumesPartialBlob(t *testing.T) {
	src, plans := samplePlans(t)
	plans = plans[1:]
	layer := plans[0].Root.Blobs[1] // 3000 bytes
	tgt := newFakeTarget()
	tgt.partial[layer.Digest] = src.blobs[layer.Digest][:2000]
	rep, err := Copy(context.Background(), plans, tgt, CopyOptions{Retry: testRetry})
	if err != nil {
		t.Fatal(err)
	}
	var want int64 = 1000 // the rest of the layer
	for _, b := range plans[0].Root.Blobs {
		if b.Digest != layer.Digest {
			want += b.Size
		}
	}
	if rep.Resumed != 1 || rep.BytesFetched != want {
		t.Errorf("resumed %d, fetched %d bytes; want 1 and %d", rep.Resumed, rep.BytesFetched, want)
	}
	if src.served != want {
		t.Errorf("the source served %d blob bytes, want %d", src.served, want)
	}
}

func TestCopyStopsOnAlteredSourceBlob(t *testing.T) {
	src, plans := samplePlans(t)
	src.alter = plans[0].Root.Children[1].Blobs[1].Digest // a layer of the arm64 image of team/app
	tgt := newFakeTarget()
	rep, err := Copy(context.Background(), plans, tgt, CopyOptions{Retry: testRetry, Concurrency: 1})
	var ce *archive.CheckError
	if !errors.As(err, &ce) || ce.Digest != src.alter || !slices.Equal(ce.Images, []string{plans[0].Source}) {
		t.Fatalf("error: %v", err)
	}
	for _, e := range tgt.events {
		if !strings.HasPrefix(e, "blob ") {
			t.Errorf("written after an altered blob: %s", e)
		}
	}
	for _, ir := range rep.Images {
		if ir.Status != "failed" {
			t.Errorf("%s: %s, want failed (the whole run stops)", ir.Source, ir.Status)
		}
	}
}
