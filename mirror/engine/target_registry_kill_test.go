package engine

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
	"strings"
	"sync"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/referrers"
	"airlock.dev/airlock/registry"
)

// hookedRegistry is go-containerregistry's registry behind a hook: a request the hook answers (it
// returns true) goes no further. Each request is recorded as "METHOD path?query".
type hookedRegistry struct {
	next http.Handler
	hook func(w http.ResponseWriter, r *http.Request) bool

	mu   sync.Mutex
	seen []string
}

func (h *hookedRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.seen = append(h.seen, r.Method+" "+r.URL.RequestURI())
	h.mu.Unlock()
	if h.hook != nil && h.hook(w, r) {
		return
	}
	h.next.ServeHTTP(w, r)
}

func (h *hookedRegistry) requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.seen...)
}

// startHooked starts a hooked registry and a RegistryTarget into HOST/mirror on it, with no retries.
func startHooked(t *testing.T, hook func(w http.ResponseWriter, r *http.Request) bool) (*RegistryTarget, *hookedRegistry, string) {
	t.Helper()
	h := &hookedRegistry{next: ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))), hook: hook}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	once := registry.Retry{Attempts: 1, Base: 1, Max: 1}
	regs, err := registry.New(registry.Options{Retry: once})
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	return &RegistryTarget{Regs: regs, To: host + "/mirror", Retry: once}, h, host
}

// storeFor returns tgt's store for registry.example.com/<repo>:1.0, a plan with no large blob.
func storeFor(ctx context.Context, t *testing.T, tgt *RegistryTarget, repo string) *registryStore {
	t.Helper()
	img, err := config.ParseReference("registry.example.com/" + repo + ":1.0")
	if err != nil {
		t.Fatal(err)
	}
	ip := &plan.ImagePlan{Image: img, Source: img.String(), Root: &plan.Node{Desc: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("m"), Size: 1}}}
	st, err := tgt.Store(ctx, ip)
	if err != nil {
		t.Fatal(err)
	}
	return st.(*registryStore)
}

// referrerPlan is registry.example.com/team/app:1.0 with two referrers: one found by the API, of
// subject "a", and one found by a cosign tag, of subject "b".
func referrerPlan(t *testing.T) (*plan.ImagePlan, *plan.Node, *plan.Node) {
	t.Helper()
	img, err := config.ParseReference("registry.example.com/team/app:1.0")
	if err != nil {
		t.Fatal(err)
	}
	node := func(subject string, method referrers.Method, tag string) *plan.Node {
		b := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/x-test","annotations":{"of":"` + subject + `"}}`)
		return &plan.Node{Desc: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(b), Size: int64(len(b))}, Manifest: b,
			Referrer: &referrers.Found{Subject: digest.FromString(subject), Method: method, Tag: tag}}
	}
	api := node("a", referrers.API, "")
	cosign := node("b", referrers.CosignTag, referrers.TagFor(digest.FromString("b"))+".sig")
	ip := &plan.ImagePlan{Image: img, Source: img.String(), Root: &plan.Node{Desc: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("m"), Size: 1}},
		Referrers: []*plan.Node{api, cosign}}
	return ip, api, cosign
}

func smallBlob(s string) ([]byte, ocispec.Descriptor) {
	b := []byte(s)
	return b, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(b), Size: int64(len(b))}
}

// TestPushReopeningHoldsTheFirstTry (target_registry.go:160): while how the registry takes blobs is
// not known, a small blob tried in one request is read once: a registry that answers the POST with a
// session gets the PUT from the copy held in memory, the blob is not opened again.
func TestPushReopeningHoldsTheFirstTry(t *testing.T) {
	ctx := context.Background()
	tgt, _, _ := startHooked(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && r.URL.Query().Get("digest") != "" {
			// No monolithic upload: the body is dropped and a session opened.
			io.Copy(io.Discard, r.Body)
			r.URL.RawQuery = ""
			r.Body, r.ContentLength = http.NoBody, 0
		}
		return false
	})
	st := storeFor(ctx, t, tgt, "team/app")
	b, desc := smallBlob("small layer")
	opened := 0
	open := func() (io.ReadCloser, error) {
		opened++
		if opened > 1 {
			return nil, errors.New("opened again")
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	if err := st.pushReopening(ctx, desc, open); err != nil {
		t.Fatalf("push: %v", err)
	}
	if opened != 1 || tgt.monolithic.Load() != 2 {
		t.Errorf("opened %d times, learned %d; want once, 2 (a session for each blob)", opened, tgt.monolithic.Load())
	}
	if ok, err := st.Exists(ctx, desc); !ok || err != nil {
		t.Errorf("not there after the push: %v, %v", ok, err)
	}
}

// TestPushCheckedStatusClasses (target_registry.go:195): a registry that refuses the mount from the
// repository itself with 400, 404 or 405 gets the blob the ordinary way; 401, 403, 429 and 5xx come
// back as the error, and no upload follows.
func TestPushCheckedStatusClasses(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		status   int
		fallback bool
	}{
		{http.StatusBadRequest, true}, {http.StatusNotFound, true}, {http.StatusMethodNotAllowed, true}, {499, true},
		{399, false}, {http.StatusUnauthorized, false}, {http.StatusForbidden, false}, {http.StatusTooManyRequests, false},
		{http.StatusInternalServerError, false}, {http.StatusServiceUnavailable, false},
	} {
		tgt, h, _ := startHooked(t, func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPost && r.URL.Query().Get("mount") != "" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				io.WriteString(w, `{"errors":[{"code":"DENIED","message":"no mount here"}]}`)
				return true
			}
			return false
		})
		st := storeFor(ctx, t, tgt, "team/app")
		b, desc := smallBlob("checked layer")
		open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		held, err := st.pushChecked(ctx, desc, open)
		if held {
			t.Errorf("%d: held, want not", tc.status)
		}
		there, _ := st.Exists(ctx, desc)
		if tc.fallback {
			if err != nil || !there {
				t.Errorf("%d: %v, blob there %v; want the blob uploaded the ordinary way", tc.status, err, there)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), fmt.Sprint(tc.status)) || there {
			t.Errorf("%d: error %v, blob there %v; want the %d as the error and no upload", tc.status, err, there, tc.status)
		}
		for _, req := range h.requests() {
			if strings.HasPrefix(req, "PUT ") || strings.Contains(req, "digest=") {
				t.Errorf("%d: sent %s after the refusal", tc.status, req)
			}
		}
	}
}

// nameOnly is a Store known by its name only: the repository a blob is mounted from.
type nameOnly struct {
	Store
	name string
}

func (n nameOnly) Name() string { return n.name }

// TestRegistryStoreMountSameHost (target_registry.go:254): a blob is mounted from another repository
// of the same registry (the registry's 201 is a mount), and from a repository on another host it is
// not asked for at all.
func TestRegistryStoreMountSameHost(t *testing.T) {
	ctx := context.Background()
	tgt, h, host := startHooked(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && r.URL.Query().Get("mount") != "" {
			w.Header().Set("Docker-Content-Digest", r.URL.Query().Get("mount"))
			w.Header().Set("Location", "/v2/x/blobs/"+r.URL.Query().Get("mount"))
			w.WriteHeader(http.StatusCreated)
			return true
		}
		return false
	})
	st := storeFor(ctx, t, tgt, "team/app")
	_, desc := smallBlob("shared layer")
	ok, err := st.Mount(ctx, desc, nameOnly{name: host + "/mirror/team/other"})
	if !ok || err != nil {
		t.Errorf("mount from the same registry: %v, %v; want mounted", ok, err)
	}
	want := "from=mirror/team/other"
	if reqs := h.requests(); len(reqs) != 1 || !strings.Contains(reqs[0], want) {
		t.Errorf("requests %q, want one POST with %s", reqs, want)
	}
	ok, err = st.Mount(ctx, desc, nameOnly{name: "other.example.com/mirror/team/other"})
	if ok || err != nil || len(h.requests()) != 1 {
		t.Errorf("mount from another host: %v, %v after %d requests; want not mounted, nothing asked", ok, err, len(h.requests()))
	}
}

// TestAttachReferrersAPI (target_registry.go:272): where the registry serves the referrers API, the
// referrers are left to it: no tag-schema index is written.
func TestAttachReferrersAPI(t *testing.T) {
	ctx := context.Background()
	tgt, h, _ := startHooked(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/referrers/") {
			w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
			io.WriteString(w, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
			return true
		}
		return false
	})
	ip, _, _ := referrerPlan(t)
	st, err := tgt.Store(ctx, ip)
	if err != nil {
		t.Fatal(err)
	}
	a, err := st.(*registryStore).AttachReferrers(ctx, ip)
	if err != nil || a.By != string(referrers.API) || a.Changed || a.Indexes != 0 {
		t.Errorf("attached %+v, %v; want by the API, nothing changed", a, err)
	}
	for _, req := range h.requests() {
		if strings.HasPrefix(req, "PUT ") {
			t.Errorf("sent %s: want nothing written", req)
		}
	}
}

// TestAttachReferrersTagSchemaSkipsCosignTags (target_registry.go:302, 317): without the referrers
// API, the referrer found by the API gets its subject's sha256-<hex> index, counted once; the one
// found by a cosign tag gets none (it travels as its tag).
func TestAttachReferrersTagSchemaSkipsCosignTags(t *testing.T) {
	ctx := context.Background()
	tgt, _, _ := startHooked(t, nil)
	ip, api, cosign := referrerPlan(t)
	st, err := tgt.Store(ctx, ip)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ip.Referrers {
		if err := st.Push(ctx, r.Desc, bytes.NewReader(r.Manifest)); err != nil {
			t.Fatal(err)
		}
	}
	a, err := st.(*registryStore).AttachReferrers(ctx, ip)
	if err != nil || a.By != string(referrers.TagSchema) || !a.Changed || a.Indexes != 1 {
		t.Fatalf("attached %+v, %v; want by the tag schema, one index written", a, err)
	}
	repo := st.(*registryStore).repo
	_, rc, err := repo.FetchReference(ctx, referrers.TagFor(api.Referrer.Subject))
	if err != nil {
		t.Fatalf("index of the API referrer's subject: %v", err)
	}
	var idx ocispec.Index
	err = json.NewDecoder(rc).Decode(&idx)
	rc.Close()
	if err != nil || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != api.Desc.Digest {
		t.Errorf("index of %s: %+v, %v; want the one referrer %s", api.Referrer.Subject, idx.Manifests, err, api.Desc.Digest)
	}
	if _, err := repo.Resolve(ctx, referrers.TagFor(cosign.Referrer.Subject)); err == nil {
		t.Errorf("the cosign-tag referrer's subject %s got a tag-schema index", cosign.Referrer.Subject)
	}
}

// TestReferrersAfterProbeAsksNoAPI: once the store has probed a repository without the referrers
// API, listing referrers (site signing does, per image) reads the tag-schema index without asking
// the API first.
func TestReferrersAfterProbeAsksNoAPI(t *testing.T) {
	ctx := context.Background()
	tgt, h, _ := startHooked(t, nil)
	ip, api, _ := referrerPlan(t)
	st, err := tgt.Store(ctx, ip)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ip.Referrers {
		if err := st.Push(ctx, r.Desc, bytes.NewReader(r.Manifest)); err != nil {
			t.Fatal(err)
		}
	}
	if a, err := st.(*registryStore).AttachReferrers(ctx, ip); err != nil || a.By != string(referrers.TagSchema) {
		t.Fatalf("attached %+v, %v; want by the tag schema", a, err)
	}
	before := len(h.requests())
	var listed []ocispec.Descriptor
	err = st.(*registryStore).Referrers(ctx, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: api.Referrer.Subject}, "", func(page []ocispec.Descriptor) error {
		listed = append(listed, page...)
		return nil
	})
	if err != nil || len(listed) != 1 || listed[0].Digest != api.Desc.Digest {
		t.Fatalf("listed %+v, %v; want the one referrer %s", listed, err, api.Desc.Digest)
	}
	for _, req := range h.requests()[before:] {
		if strings.Contains(req, "/referrers/") {
			t.Errorf("asked %s of a registry the store knows has no referrers API", req)
		}
	}
}

// TestReferrersOfARepositoryNotThereYet: a registry with the referrers API that answers 404
// NAME_UNKNOWN (the repository does not exist yet) holds no referrers there: no error, nothing
// listed. Another 404 (MANIFEST_UNKNOWN) is an error, as oras-go reports it (target_registry.go:324,
// the status compared).
func TestReferrersOfARepositoryNotThereYet(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		code string
		ok   bool
	}{{"NAME_UNKNOWN", true}, {"MANIFEST_UNKNOWN", false}} {
		tgt, _, _ := startHooked(t, func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.Contains(r.URL.Path, "/referrers/") {
				return false
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"errors":[{"code":%q,"message":"not here"}]}`, tc.code)
			return true
		})
		s := storeFor(ctx, t, tgt, "team/ghost")
		s.api = true
		s.probed.Store(true)
		listed := 0
		err := s.Referrers(ctx, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("m"), Size: 1}, "", func(page []ocispec.Descriptor) error {
			listed += len(page)
			return nil
		})
		switch {
		case tc.ok && (err != nil || listed != 0):
			t.Errorf("404 %s: %d listed, %v; want none and no error", tc.code, listed, err)
		case !tc.ok && err == nil:
			t.Errorf("404 %s: no error; want oras-go's", tc.code)
		}
	}
}
