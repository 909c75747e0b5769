// Package mirrortest holds the fixtures the tests of mirror, mirror/plan and mirror/engine share: a
// source and a target in memory, image plans built from them, and a registry that pages its tag lists.
package mirrortest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/referrers"
	"airlock.dev/airlock/registry"
	"airlock.dev/airlock/vocab"
)

// fakeSource serves content by digest and counts the bytes it served.
type FakeSource struct {
	Mu     sync.Mutex
	Blobs  map[digest.Digest][]byte
	Served int64
	// alter, if set, is served with a digest mismatch at its end, as archive.Reader reports one.
	Alter digest.Digest
}

func (s *FakeSource) Add(b []byte) digest.Digest {
	d := digest.FromBytes(b)
	s.Mu.Lock()
	s.Blobs[d] = b
	s.Mu.Unlock()
	return d
}

func (s *FakeSource) Fetch(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	s.Mu.Lock()
	b, ok := s.Blobs[desc.Digest]
	s.Mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%s: not found", desc.Digest)
	}
	var r io.Reader = &countingReader{r: bytes.NewReader(b), s: s}
	if desc.Digest == s.Alter {
		r = io.MultiReader(io.LimitReader(r, int64(len(b)-1)), errReader{&archive.DigestMismatchError{Expected: desc.Digest}})
	}
	return io.NopCloser(r), nil
}

func (s *FakeSource) FetchFrom(ctx context.Context, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	rc, err := s.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	s.Mu.Lock()
	s.Served -= offset // a Range request: those bytes are not sent
	s.Mu.Unlock()
	_, err = io.CopyN(io.Discard, rc, offset)
	return rc, err
}

func (s *FakeSource) Resolve(context.Context, string) (ocispec.Descriptor, error) {
	return ocispec.Descriptor{}, errors.New("no tags")
}

type countingReader struct {
	r io.Reader
	s *FakeSource
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.s.Mu.Lock()
	c.s.Served += int64(n)
	c.s.Mu.Unlock()
	return n, err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// FakeTarget is a registry-like target: one store per repository, every write recorded in order.
type FakeTarget struct {
	Mu     sync.Mutex
	Events []string
	Stores map[string]*FakeStore
	// failBlob is refused by every store, for good.
	FailBlob digest.Digest
	// partial holds what an interrupted run left of a blob, for PushResumable.
	Partial map[digest.Digest][]byte
}

func NewFakeTarget() *FakeTarget {
	return &FakeTarget{Stores: map[string]*FakeStore{}, Partial: map[digest.Digest][]byte{}}
}

func (t *FakeTarget) Record(format string, args ...any) {
	t.Mu.Lock()
	t.Events = append(t.Events, fmt.Sprintf(format, args...))
	t.Mu.Unlock()
}

func (t *FakeTarget) Store(_ context.Context, ip *plan.ImagePlan) (engine.Store, error) {
	t.Mu.Lock()
	defer t.Mu.Unlock()
	name := "site/" + ip.Image.Repository
	if s, ok := t.Stores[name]; ok {
		return s, nil
	}
	s := &FakeStore{t: t, name: name, Content: map[digest.Digest][]byte{}, Tags: map[string]digest.Digest{}, TagReads: map[string]int{}}
	t.Stores[name] = s
	return s, nil
}

type FakeStore struct {
	t       *FakeTarget
	name    string
	Mu      sync.Mutex
	Content map[digest.Digest][]byte
	Tags    map[string]digest.Digest
	// TagReads counts the reads of each tag (FetchTagged), found or not.
	TagReads map[string]int
}

var (
	_ engine.BlobPusher = (*FakeStore)(nil)
	_ engine.Tagger     = (*FakeStore)(nil)
)

func (s *FakeStore) Name() string { return s.name }

func (s *FakeStore) Exists(_ context.Context, desc ocispec.Descriptor) (bool, error) {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	_, ok := s.Content[desc.Digest]
	return ok, nil
}

func (s *FakeStore) Push(_ context.Context, desc ocispec.Descriptor, r io.Reader) error {
	if desc.Digest == s.t.FailBlob {
		return errors.New("denied: quota exceeded") // not retryable
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if digest.FromBytes(b) != desc.Digest {
		return fmt.Errorf("%s: digest mismatch", desc.Digest)
	}
	s.Mu.Lock()
	s.Content[desc.Digest] = b
	s.Mu.Unlock()
	kind := "blob"
	if vocab.IsIndex(desc.MediaType) || vocab.IsManifest(desc.MediaType) {
		kind = "manifest"
	}
	s.t.Record("%s %s %s", kind, s.name, desc.Digest)
	return nil
}

func (s *FakeStore) ChecksOnPush(ocispec.Descriptor) bool { return false }

// PushBlob resumes from what an interrupted run left (Partial).
func (s *FakeStore) PushBlob(ctx context.Context, desc ocispec.Descriptor, open func(int64) (io.ReadCloser, error), _ bool) (bool, error) {
	s.t.Mu.Lock()
	have := s.t.Partial[desc.Digest]
	s.t.Mu.Unlock()
	rc, err := open(int64(len(have)))
	if err != nil {
		return false, err
	}
	defer rc.Close()
	return false, s.Push(ctx, desc, io.MultiReader(bytes.NewReader(have), rc))
}

// PushTagged stores the manifest, when it is not there yet, and tags it.
func (s *FakeStore) PushTagged(ctx context.Context, desc ocispec.Descriptor, manifest []byte, reference string) error {
	if ok, _ := s.Exists(ctx, desc); !ok {
		if err := s.Push(ctx, desc, bytes.NewReader(manifest)); err != nil {
			return err
		}
	}
	s.Mu.Lock()
	s.Tags[reference] = desc.Digest
	s.Mu.Unlock()
	s.t.Record("tag %s %s", s.name, reference)
	return nil
}

func (s *FakeStore) AttachReferrers(_ context.Context, ip *plan.ImagePlan) (engine.Attached, error) {
	s.Mu.Lock()
	done := s.Tags["attached "+ip.Source] != ""
	s.Tags["attached "+ip.Source] = ip.Root.Desc.Digest
	s.Mu.Unlock()
	if done {
		return engine.Attached{By: "tag-schema"}, nil
	}
	s.t.Record("attach %s %s", s.name, ip.Root.Desc.Digest)
	return engine.Attached{By: "tag-schema", Indexes: 1, Changed: true}, nil
}

// Fetch reads what the store holds, as a registry serves a blob.
func (s *FakeStore) Fetch(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	b, ok := s.Content[desc.Digest]
	if !ok {
		return nil, fmt.Errorf("%s: %w", desc.Digest, errdef.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Referrers lists the manifests the store holds whose subject is subject, as the referrers API does.
func (s *FakeStore) Referrers(_ context.Context, subject ocispec.Descriptor, artifactType string, fn func([]ocispec.Descriptor) error) error {
	s.Mu.Lock()
	var out []ocispec.Descriptor
	for d, b := range s.Content {
		var m ocispec.Manifest
		if json.Unmarshal(b, &m) == nil && m.Subject != nil && m.Subject.Digest == subject.Digest && (artifactType == "" || m.ArtifactType == artifactType) {
			out = append(out, ocispec.Descriptor{MediaType: m.MediaType, Digest: d, Size: int64(len(b)), ArtifactType: m.ArtifactType, Annotations: m.Annotations})
		}
	}
	s.Mu.Unlock()
	return fn(out)
}

func (s *FakeStore) FetchTagged(_ context.Context, reference string) (ocispec.Descriptor, []byte, error) {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	s.TagReads[reference]++
	d, ok := s.Tags[reference]
	if !ok {
		return ocispec.Descriptor{}, nil, fmt.Errorf("%s: %w", reference, errdef.ErrNotFound)
	}
	return ocispec.Descriptor{Digest: d, Size: int64(len(s.Content[d]))}, s.Content[d], nil
}

// imageNode builds an image manifest with a config and layers of the given sizes, stored in src.
func ImageNode(t *testing.T, src *FakeSource, repo string, sizes ...int) *plan.Node {
	t.Helper()
	blob := func(mt string, n int, seed string) ocispec.Descriptor {
		b := bytes.Repeat([]byte(seed), n/len(seed)+1)[:n]
		return ocispec.Descriptor{MediaType: mt, Digest: src.Add(b), Size: int64(n)}
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: blob(ocispec.MediaTypeImageConfig, 32, repo+"config"+fmt.Sprint(sizes))}
	for i, n := range sizes {
		m.Layers = append(m.Layers, blob(ocispec.MediaTypeImageLayerGzip, n, fmt.Sprintf("%s-layer%d-", repo, i)))
	}
	return ManifestNode(t, src, repo, ocispec.MediaTypeImageManifest, m, append([]ocispec.Descriptor{m.Config}, m.Layers...))
}

func ManifestNode(t *testing.T, src *FakeSource, repo, mt string, v any, blobs []ocispec.Descriptor) *plan.Node {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return &plan.Node{Desc: ocispec.Descriptor{MediaType: mt, Digest: src.Add(b), Size: int64(len(b))}, Manifest: b, Repository: repo, Blobs: blobs}
}

// indexNode builds an index over children.
func IndexNode(t *testing.T, src *FakeSource, repo string, children ...*plan.Node) *plan.Node {
	t.Helper()
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for _, c := range children {
		idx.Manifests = append(idx.Manifests, c.Desc)
	}
	n := ManifestNode(t, src, repo, ocispec.MediaTypeImageIndex, idx, nil)
	n.Children = children
	return n
}

// signatureNode builds a referrer of subject (a cosign-like signature) with one layer.
func SignatureNode(t *testing.T, src *FakeSource, repo string, subject *plan.Node, tag string) *plan.Node {
	t.Helper()
	n := ImageNode(t, src, repo+"-sig-"+subject.Desc.Digest.Encoded()[:8], 64)
	if tag == "" {
		// Found through the referrers API: its manifest names its subject.
		var m ocispec.Manifest
		if err := json.Unmarshal(n.Manifest, &m); err != nil {
			t.Fatal(err)
		}
		m.Subject = &ocispec.Descriptor{MediaType: subject.Desc.MediaType, Digest: subject.Desc.Digest, Size: subject.Desc.Size}
		n = ManifestNode(t, src, repo, ocispec.MediaTypeImageManifest, m, n.Blobs)
	}
	n.Repository = repo
	n.Referrer = &referrers.Found{Subject: subject.Desc.Digest, Method: referrers.API}
	if tag != "" {
		n.Referrer.Method, n.Referrer.Tag = referrers.CosignTag, tag
	}
	return n
}

func Plan(t *testing.T, src *FakeSource, ref string, root *plan.Node, refs ...*plan.Node) *plan.ImagePlan {
	t.Helper()
	img, err := config.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	return &plan.ImagePlan{Image: img, Source: ref, Root: root, Referrers: refs, Content: src}
}

var Retry = registry.Retry{Attempts: 2, Base: 1, Max: 1}

// samplePlans: a two-platform index with a signature on the index and one on a platform manifest
// (cosign tag), and a single-platform image in another repository that shares a layer size (not a
// layer) with it.
func SamplePlans(t *testing.T) (*FakeSource, []*plan.ImagePlan) {
	src := &FakeSource{Blobs: map[digest.Digest][]byte{}}
	amd, arm := ImageNode(t, src, "team/app", 1000, 2000), ImageNode(t, src, "team/app", 1500)
	amd.Platform, arm.Platform = "linux/amd64", "linux/arm64"
	idx := IndexNode(t, src, "team/app", amd, arm)
	sig := SignatureNode(t, src, "team/app", idx, "")
	sigAmd := SignatureNode(t, src, "team/app", amd, "sha256-"+amd.Desc.Digest.Encoded()+".sig")
	app := Plan(t, src, "registry.example.com/team/app:1.0", idx, sig, sigAmd)
	api := Plan(t, src, "registry.example.com/team/api:2.0", ImageNode(t, src, "team/api", 3000, 10))
	return src, []*plan.ImagePlan{app, api}
}

// pagingRegistry is go-containerregistry's registry, whose tag list honours n and last but sends no
// Link header, with the tag list of one repository served by hand: at most max tags a page (fewer
// than n when n is larger, as a registry may), and a Link header to the next page, as distribution
// writes it. Each tag list request is recorded.
type PagingRegistry struct {
	next     http.Handler
	repo     string
	Tags     []string
	max      int
	Mu       sync.Mutex
	Requests []string
}

func (p *PagingRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v2/"+p.repo+"/tags/list" {
		p.next.ServeHTTP(w, r)
		return
	}
	p.Mu.Lock()
	p.Requests = append(p.Requests, r.URL.RawQuery)
	p.Mu.Unlock()
	n := p.max
	if v, err := strconv.Atoi(r.URL.Query().Get("n")); err == nil && v < n {
		n = v
	}
	start := 0
	if last := r.URL.Query().Get("last"); last != "" {
		start = slices.Index(p.Tags, last) + 1
	}
	end := min(start+n, len(p.Tags))
	if end < len(p.Tags) {
		w.Header().Set("Link", fmt.Sprintf(`</v2/%s/tags/list?last=%s&n=%d>; rel="next"`, p.repo, p.Tags[end-1], n))
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"name": p.repo, "tags": p.Tags[start:end]})
}

// pushTags pushes one small image to host/repo under each tag.
func PushTags(ctx context.Context, t *testing.T, regs *registry.Registries, name string, tags ...string) {
	t.Helper()
	repo, err := regs.Repository(name)
	if err != nil {
		t.Fatal(err)
	}
	cb := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}`)
	cd := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cb), Size: int64(len(cb))}
	if err := repo.Push(ctx, cd, bytes.NewReader(cb)); err != nil {
		t.Fatal(err)
	}
	for _, tag := range tags {
		// A manifest of its own for each tag, so that each tag is a distinct image.
		mb, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: []ocispec.Descriptor{}, Annotations: map[string]string{"tag": tag}})
		md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mb), Size: int64(len(mb))}
		if err := repo.PushReference(ctx, md, bytes.NewReader(mb), tag); err != nil {
			t.Fatal(err)
		}
	}
}

func StartPagingRegistry(t *testing.T, max int) (string, *registry.Registries, *PagingRegistry) {
	t.Helper()
	p := &PagingRegistry{next: ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))), repo: "team/app", max: max}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	regs, err := registry.New(registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(srv.URL, "http://"), regs, p
}
