package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"airlock.dev/airlock/e2e/internal/proxy"
	"airlock.dev/airlock/e2e/internal/registries"
)

// Site registries as they are shipped (issue 11): Docker media types refused as zot refuses them, tags
// that moved, tags that are immutable, and the exit status.

const (
	dockerManifestType = "application/vnd.docker.distribution.manifest.v2+json"
	dockerListType     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// pushDockerList pushes host/repo:tag as a Docker manifest list of one Docker schema 2 manifest, as
// most public images are, and returns the list's digest.
func pushDockerList(ctx context.Context, t *testing.T, host, repoName, tag string) digest.Digest {
	t.Helper()
	repo, push := testRepository(ctx, t, host, repoName)
	layer := make([]byte, 2<<10)
	rand.Read(layer)
	cfg, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}})
	m, _ := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: dockerManifestType,
		Config: push("application/vnd.docker.container.image.v1+json", cfg),
		Layers: []ocispec.Descriptor{push("application/vnd.docker.image.rootfs.diff.tar.gzip", layer)},
	})
	md := push(dockerManifestType, m)
	md.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	l, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: dockerListType, Manifests: []ocispec.Descriptor{md}})
	ld := content.NewDescriptorFromBytes(dockerListType, l)
	if err := repo.PushReference(ctx, ld, bytes.NewReader(l), tag); err != nil {
		t.Fatalf("push %s/%s:%s: %v", host, repoName, tag, err)
	}
	return ld.Digest
}

// refuseDockerTypes answers as zot does without http.compat: ["docker2s2"]: 415 manifest invalid to
// a PUT of a manifest in a Docker media type.
func refuseDockerTypes(w http.ResponseWriter, r *http.Request, _ string) bool {
	ct := r.Header.Get("Content-Type")
	if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/manifests/") || (ct != dockerManifestType && ct != dockerListType) {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnsupportedMediaType)
	fmt.Fprint(w, `{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}`)
	return true
}

// refuseExistingTags answers as Harbor and ECR do with tag immutability: 409 to a PUT of a manifest by
// a tag that exists, even when it names the same digest.
func refuseExistingTags(w http.ResponseWriter, r *http.Request, target string) bool {
	repo, ref, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/"), "/manifests/")
	if r.Method != http.MethodPut || !ok || strings.HasPrefix(ref, "sha256:") {
		return false
	}
	req, _ := http.NewRequestWithContext(r.Context(), http.MethodHead, "http://"+target+"/v2/"+repo+"/manifests/"+ref, nil)
	req.Header.Set("Accept", strings.Join([]string{ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, dockerManifestType, dockerListType}, ", "))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return true
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusConflict)
	fmt.Fprintf(w, `{"errors":[{"code":"TAG_INVALID","message":"tag %s in %s is immutable"}]}`, ref, repo)
	return true
}

// manifestStatus returns the status of a HEAD of host/repo:ref.
func manifestStatus(t *testing.T, host, repo, ref string) (int, digest.Digest) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, "http://"+host+"/v2/"+repo+"/manifests/"+ref, nil)
	req.Header.Set("Accept", strings.Join([]string{ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, dockerManifestType, dockerListType}, ", "))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, digest.Digest(resp.Header.Get("Docker-Content-Digest"))
}

// TestSiteDockerMediaTypesRefused: a target that refuses Docker media types (zot's 415) fails only the
// Docker image, with a message that names Docker media types and the zot setting, nothing of it
// tagged; the other image lands, and the exit status is 1.
func TestSiteDockerMediaTypesRefused(t *testing.T) {
	ctx := t.Context()
	src, dst := registries.StartDistribution(ctx, t), registries.StartDistribution(ctx, t)
	pushDockerList(ctx, t, src, "team/docker", "1.0")
	pushTwoBlobImage(ctx, t, src, "team/oci", "1.0")
	zot := proxy.StartWith(t, dst, proxy.Options{Hook: refuseDockerTypes})
	set := writeImageSet(t, t.TempDir(), fmt.Sprintf("images:\n  - ref: %s/team/docker:1.0\n  - ref: %s/team/oci:1.0\n", src, src))
	res := run(ctx, t, "copy", "-q", "-c", set, "--to", zot.Host+"/site")
	if res.code != 1 {
		t.Fatalf("exit %d, want 1 (one image refused, the other done)\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	for _, s := range []string{"refuses Docker media types", `http.compat: ["docker2s2"]`, "never converts", "manifest invalid"} {
		if !strings.Contains(res.stdout, s) {
			t.Errorf("the report does not say %q:\n%s", s, res.stdout)
		}
	}
	if code, _ := manifestStatus(t, dst, "site/team/docker", "1.0"); code != http.StatusNotFound {
		t.Errorf("the refused image is tagged on the target: HEAD %d", code)
	}
	if code, _ := manifestStatus(t, dst, "site/team/oci", "1.0"); code != http.StatusOK {
		t.Errorf("the other image did not land: HEAD %d", code)
	}
}

// publishReport is the part of load and copy --format json these tests read.
type publishReport struct {
	Images []struct {
		Source, Status, Error string
		TagMoved              *struct {
			Tag      string
			From, To digest.Digest
			Refused  bool
		}
	}
}

// TestSiteTagMoves: a tag that names another digest on the target is reported (text and JSON) and
// moved; with --tag-moves=refuse it is left alone, that image fails, the others land, exit 1.
func TestSiteTagMoves(t *testing.T) {
	ctx := t.Context()
	src, dst := registries.StartDistribution(ctx, t), registries.StartDistribution(ctx, t)
	pushTwoBlobImage(ctx, t, src, "team/a", "1.0")
	pushTwoBlobImage(ctx, t, src, "team/b", "1.0")
	_, want := manifestStatus(t, src, "team/a", "1.0")
	set := writeImageSet(t, t.TempDir(), fmt.Sprintf("images:\n  - ref: %s/team/a:1.0\n  - ref: %s/team/b:1.0\n", src, src))
	old := pushRandomImage(ctx, t, dst, "site/team/a", "1.0", 1024)

	res := run(ctx, t, "copy", "-q", "-c", set, "--to", dst+"/site", "--tag-moves=refuse")
	if res.code != 1 {
		t.Fatalf("--tag-moves=refuse: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	if _, at := manifestStatus(t, dst, "site/team/a", "1.0"); at != old {
		t.Errorf("--tag-moves=refuse moved the tag to %s (was %s)", at, old)
	}
	if code, _ := manifestStatus(t, dst, "site/team/b", "1.0"); code != http.StatusOK {
		t.Errorf("--tag-moves=refuse: the other image did not land: HEAD %d", code)
	}
	if !strings.Contains(res.stdout, "tag moved: 1.0 "+old.String()+" -> "+want.String()+" (refused") {
		t.Errorf("--tag-moves=refuse: the refused move is not reported:\n%s", res.stdout)
	}

	res = mustRun(ctx, t, "copy", "-q", "-c", set, "--to", dst+"/site", "--format", "json")
	var rep publishReport
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, res.stdout)
	}
	if m := rep.Images[0].TagMoved; m == nil || m.From != old || m.To != want || m.Refused || rep.Images[1].TagMoved != nil {
		t.Errorf("JSON: tagMoved %+v, want %s -> %s on the first image only", m, old, want)
	}
	if _, at := manifestStatus(t, dst, "site/team/a", "1.0"); at != want {
		t.Errorf("allow: the tag points at %s, want %s", at, want)
	}

	old = pushRandomImage(ctx, t, dst, "site/team/a", "1.0", 1024)
	res = mustRun(ctx, t, "copy", "-q", "-c", set, "--to", dst+"/site")
	for _, s := range []string{"tag moved: 1.0 " + old.String() + " -> " + want.String(), "tag moves:  1 tag(s) moved"} {
		if !strings.Contains(res.stdout, s) {
			t.Errorf("text: does not say %q:\n%s", s, res.stdout)
		}
	}
}

// TestSiteReloadImmutableTags: a load again through a registry that refuses any PUT to an existing
// tag (Harbor's and ECR's tag immutability) passes: tags that already name the digest are left alone.
func TestSiteReloadImmutableTags(t *testing.T) {
	ctx := t.Context()
	src, dst := registries.StartDistribution(ctx, t), registries.StartDistribution(ctx, t)
	pushTwoBlobImage(ctx, t, src, "team/a", "1.0")
	pushTwoBlobImage(ctx, t, src, "team/b", "2.0")
	work := t.TempDir()
	set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s/team/a:1.0\n  - ref: %s/team/b:2.0\n", src, src))
	arch := filepath.Join(work, "archive")
	mustRun(ctx, t, "save", "-q", "-c", set, "-o", arch)
	harbor := proxy.StartWith(t, dst, proxy.Options{Hook: refuseExistingTags})
	mustRun(ctx, t, "load", "-q", arch, "--to", harbor.Host+"/site")
	res := mustRun(ctx, t, "load", "-q", arch, "--to", harbor.Host+"/site", "--format", "json")
	var rep publishReport
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, res.stdout)
	}
	for _, ir := range rep.Images {
		if ir.Status != "up-to-date" {
			t.Errorf("load again: %s %s (%s), want up-to-date", ir.Source, ir.Status, ir.Error)
		}
	}
	// A tag that must move is refused by such a registry, and the message says why.
	pushTwoBlobImage(ctx, t, src, "team/a", "1.0")
	mustRun(ctx, t, "save", "-q", "-c", set, "-o", filepath.Join(work, "next"))
	res = run(ctx, t, "load", "-q", filepath.Join(work, "next"), "--to", harbor.Host+"/site")
	if res.code != 1 || !strings.Contains(res.stdout, "is immutable on the target") {
		t.Errorf("a moved tag into an immutable repository: exit %d, want 1 naming the immutability\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
}

// TestSiteUnreachableExits2: nothing could be done when the target does not answer: exit 2, said
// before the first blob.
func TestSiteUnreachableExits2(t *testing.T) {
	ctx := t.Context()
	src := registries.StartDistribution(ctx, t)
	pushTwoBlobImage(ctx, t, src, "team/a", "1.0")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	set := writeImageSet(t, t.TempDir(), fmt.Sprintf("images:\n  - ref: %s/team/a:1.0\n", src))
	res := run(ctx, t, "copy", "-q", "--attempts", "2", "-c", set, "--to", closed+"/site")
	if res.code != 2 || !strings.Contains(res.stderr, "nothing could be done") {
		t.Errorf("unreachable target: exit %d, want 2 saying nothing could be done\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
}
