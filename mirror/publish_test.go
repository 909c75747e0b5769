package mirror

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/registry"
)

func TestTargetRepository(t *testing.T) {
	img := func(ref, target string) config.Image {
		i, err := config.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		i.Target = target
		return i
	}
	cases := []struct {
		to       string
		keepHost bool
		img      config.Image
		want     string
	}{
		{"site:5000/mirror", false, img("registry.example.com/team/app:1.4.2", ""), "site:5000/mirror/team/app"},
		{"site:5000/mirror/", false, img("registry.example.com/team/app:1.4.2", ""), "site:5000/mirror/team/app"},
		{"site:5000", false, img("registry.example.com/team/app:1.4.2", ""), "site:5000/team/app"},
		{"site:5000/mirror", true, img("registry.example.com/team/app:1.4.2", ""), "site:5000/mirror/registry.example.com/team/app"},
		{"site:5000/mirror", true, img("127.0.0.1:5000/team/app:v1", ""), "site:5000/mirror/127.0.0.1-5000/team/app"},
		{"site:5000/mirror", false, img("registry.example.com/team/app:1.4.2", "platform/app"), "site:5000/mirror/platform/app"},
		{"site:5000/mirror", false, img("nginx", ""), "site:5000/mirror/library/nginx"},
	}
	for _, c := range cases {
		got, err := engine.TargetRepository(c.to, c.keepHost, c.img)
		if err != nil || got != c.want {
			t.Errorf("TargetRepository(%q, %v, %s) = %q, %v; want %q", c.to, c.keepHost, c.img, got, err, c.want)
		}
	}
	if _, err := engine.TargetRepository("/mirror", false, img("registry.example.com/team/app:1", "")); err == nil || !strings.Contains(err.Error(), "HOST[:PORT]/PREFIX") {
		t.Errorf("an empty host: %v", err)
	}
	if _, err := engine.TargetRepository("site:5000/Mirror", false, img("registry.example.com/team/app:1", "")); err == nil {
		t.Errorf("an upper-case prefix was accepted")
	}
}

func TestCheckCollisions(t *testing.T) {
	a := engine.ImageReport{Source: "a.example.com/team/app:v1", Target: "site/team/app:v1", Tag: "v1", Digest: "sha256:aaaa"}
	b := engine.ImageReport{Source: "b.example.com/team/app:v1", Target: "site/team/app:v1", Tag: "v1", Digest: "sha256:bbbb"}
	same := engine.ImageReport{Source: "c.example.com/team/app:v1", Target: "site/team/app:v1", Tag: "v1", Digest: "sha256:aaaa"}
	if err := checkCollisions([]engine.ImageReport{a, same}); err != nil {
		t.Errorf("the same digest twice is no collision: %v", err)
	}
	err := checkCollisions([]engine.ImageReport{a, b})
	if err == nil || !strings.Contains(err.Error(), "--keep-host") || !strings.Contains(err.Error(), "b.example.com/team/app:v1") {
		t.Errorf("collision: %v", err)
	}
}

// TestPublishStopsOnAlteredBlob loads a directory archive one byte of whose layer is flipped after it
// was opened and checked: the layer is caught as it streams to the registry, and the whole run stops
// with the digest named before any manifest or tag is pushed, for the intact image in another
// repository too.
func TestPublishStopsOnAlteredBlob(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	dir := t.TempDir()
	layoutDir := filepath.Join(dir, "layout")
	l, err := archive.CreateLayout(layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	push := func(mt string, b []byte) ocispec.Descriptor {
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
		if err := l.PushBytes(ctx, d, b); err != nil {
			t.Fatal(err)
		}
		return d
	}
	cat := &archive.Catalog{Tool: archive.Tool{Name: "airlock", Version: "test"}, Created: time.Now().UTC()}
	layers := map[string][]byte{}
	for _, src := range []string{"registry.example.com/team/app:1", "registry.example.com/team/other:1"} {
		layer := make([]byte, 200_000)
		rand.Read(layer)
		ld := push(ocispec.MediaTypeImageLayer, layer)
		cd := push(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}`))
		mb, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: []ocispec.Descriptor{ld}})
		md := push(ocispec.MediaTypeImageManifest, mb)
		e := md
		e.Annotations = map[string]string{ocispec.AnnotationRefName: src}
		l.AddEntry(e)
		repo, tag, _ := strings.Cut(src, ":")
		cat.Images = append(cat.Images, archive.Image{Source: src, Repository: repo, Tag: tag, Digest: md.Digest, MediaType: md.MediaType, Size: md.Size})
		cat.Contents = append(cat.Contents, ld.Digest, cd.Digest, md.Digest)
		layers[src] = layer
	}
	cat.Contents = mergeDigests(cat.Contents, nil)
	if _, err := l.WriteCatalog(ctx, cat); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	bad := digest.FromBytes(layers["registry.example.com/team/app:1"])
	r, err := archive.Open(ctx, layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	// Altered after the archive was opened and checked against its catalog, before the push: only the
	// hash taken as the blob streams to the registry can see it (tar volumes are refused by Open).
	p := archive.BlobPath(layoutDir, bad)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[150_000] ^= 1
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rcat, _, err := r.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := archive.Check(r, rcat); err != nil {
		t.Fatal(err)
	}
	plans, err := plan.PlansFromArchive(ctx, r, rcat)
	if err != nil {
		t.Fatal(err)
	}
	regs, err := registry.New(registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Publish(ctx, plans, regs, PublishOptions{To: host + "/mirror", Concurrency: 1, Retry: registry.Retry{Attempts: 2, Base: time.Millisecond, Max: time.Millisecond}})
	var ce *archive.CheckError
	if !errors.As(err, &ce) || ce.Digest != bad || !strings.Contains(err.Error(), bad.String()) || !strings.Contains(err.Error(), "altered") {
		t.Fatalf("got %v, want an *archive.CheckError naming %s and saying the archive was altered", err, bad)
	}
	if !slices.Contains(ce.Images, "registry.example.com/team/app:1") {
		t.Errorf("the error names images %v, want registry.example.com/team/app:1", ce.Images)
	}
	if rep == nil || !rep.Failed() || rep.Manifests.Pushed != 0 || rep.Tags != 0 {
		t.Errorf("report: %+v", rep)
	}
	for _, repo := range []string{"team/app", "team/other"} {
		for _, tag := range []string{"1"} {
			resp, err := http.Head(srv.URL + "/v2/mirror/" + repo + "/manifests/" + tag)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s:%s is on the registry (status %d) after the run stopped", repo, tag, resp.StatusCode)
			}
		}
		for _, img := range rcat.Images {
			resp, err := http.Head(srv.URL + "/v2/mirror/" + repo + "/manifests/" + img.Digest.String())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("manifest %s is in %s after the run stopped", img.Digest, repo)
			}
		}
	}
	resp, err := http.Head(srv.URL + "/v2/mirror/team/app/blobs/" + bad.String())
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("the altered blob %s was accepted by the registry", bad)
		}
	}
}

// TestMain keeps the record of verified blobs (archive.Layout) out of the user's cache directory.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "airlock-mirror-cache")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestResaveRefetchesFlippedLayer saves an image into a directory, flips a byte of its layer on disk
// and saves again into the same directory: the re-save hashes the changed file, fetches the layer
// again and the archive verifies; an unchanged re-save fetches nothing. (Here rather than in a
// save_test.go: it needs the registry this file starts.)
func TestResaveRefetchesFlippedLayer(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	regs, err := registry.New(registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	repo, err := regs.Repository(host + "/team/app")
	if err != nil {
		t.Fatal(err)
	}
	layer := make([]byte, 300_000)
	rand.Read(layer)
	pushBlob := func(mt string, b []byte) ocispec.Descriptor {
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
		if err := repo.Push(ctx, d, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	ld := pushBlob(ocispec.MediaTypeImageLayer, layer)
	cd := pushBlob(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}`))
	mb, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: []ocispec.Descriptor{ld}})
	md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mb), Size: int64(len(mb))}
	if err := repo.PushReference(ctx, md, bytes.NewReader(mb), "1"); err != nil {
		t.Fatal(err)
	}
	img, err := config.ParseReference(host + "/team/app:1")
	if err != nil {
		t.Fatal(err)
	}
	set := &config.ImageSet{Images: []config.Image{img}}
	out := filepath.Join(t.TempDir(), "archive")
	save := func() *SaveSummary {
		t.Helper()
		sum, err := Save(ctx, set, regs, SaveOptions{Output: out, Concurrency: 2, Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	verifyDir := func() error {
		r, err := archive.Open(ctx, out)
		if err != nil {
			return err
		}
		defer r.Close()
		cat, _, err := r.Catalog(ctx)
		if err != nil {
			return err
		}
		return archive.VerifyContents(ctx, r, cat)
	}
	save()
	if sum := save(); sum.Copy.Copied != 0 || len(sum.Repaired) != 0 {
		t.Fatalf("unchanged re-save copied %d blobs, repaired %v", sum.Copy.Copied, sum.Repaired)
	}
	p := archive.BlobPath(out, ld.Digest)
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 1
	os.WriteFile(p, b, 0o644)
	if err := verifyDir(); err == nil {
		t.Fatal("the flipped layer passes VerifyContents")
	}
	sum := save()
	if !slices.Contains(sum.Repaired, ld.Digest) || sum.Copy.Copied != 1 {
		t.Fatalf("re-save over a flipped layer: repaired %v, copied %d; want the layer %s fetched again", sum.Repaired, sum.Copy.Copied, ld.Digest)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, layer) {
		t.Fatal("the layer on disk is still wrong after the re-save")
	}
	if err := verifyDir(); err != nil {
		t.Fatalf("the re-saved archive does not verify: %v", err)
	}
}
