package e2e

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"airlock.dev/airlock/e2e/internal/registries"
)

// Requests per image, counted in distribution's access log (issue 10, item 7). Requests to an image's
// own repository count for that image; the others (airlock's catalog, which load pushes to
// PREFIX/airlock/catalog, and any ping) are counted once per run.
const (
	requestImages = 3 // single-platform images, each in its own repository: a manifest, a config and one layer (two blobs), no referrers

	// loadRequestsTarget is issue 10's bound for a load into a registry that has none of it (it was
	// 12). Before the first blob, the preflight reads each image's tag (GET, 404 here: issue 11).
	// Distribution answers a monolithic upload (POST ?digest= with the body) with an upload session,
	// so a blob takes a POST and a PUT; the POST mounts the blob from the repository itself, which is
	// the exists-check (201 where it is there). Then the manifest, pushed once by its tag, and read
	// back once by its tag (bytes and tag at once). Today: 1 GET + 2 POST + 2 PUT + 1 PUT + 1 GET = 7.
	// How the registry takes blobs is asked only on a run again (a tag found) or for a blob over 1 MiB.
	loadRequestsTarget = 7
	// loadRunMax bounds the fixed cost of a load, whatever the number of images: airlock's catalog
	// (3 blobs, POST and PUT each; its manifest pushed by its tag and read back: 8; it was 15).
	loadRunMax = 8

	// saveRequestsTarget is issue 10's bound for a save of content alone (referrers discovery off):
	// one GET of the manifest by tag (it was a HEAD and a GET) and a GET per blob: 3.
	saveRequestsTarget = 3
	// saveDiscoveryMax bounds what discovering referrers adds per repository on a registry without
	// the referrers API: the probe of the API (distribution answers 404) and the tag list (tag schema
	// and cosign tags): 2. Here one image per repository: a default save is 5 per image.
	saveDiscoveryMax = 2
	// saveRunMax is the fixed cost of a save: none.
	saveRunMax = 0
)

// TestRequestsPerImage counts the requests airlock sends to a distribution registry, from the
// registry's own access log: a save of requestImages single-platform images with two blobs each
// (with referrers discovery off, then on), then a load of that archive into an empty registry. It
// logs the breakdown by method and kind of path, and fails when either sends more per image, or more
// per run, than issue 10 allows.
func TestRequestsPerImage(t *testing.T) {
	ctx := t.Context()
	work := t.TempDir()
	src, srcLog := registries.StartDistributionWithAccessLog(ctx, t)
	var refs strings.Builder
	var repos []string
	for i := range requestImages {
		repo := fmt.Sprintf("team/app%d", i)
		pushTwoBlobImage(ctx, t, src, repo, "v1")
		fmt.Fprintf(&refs, "  - ref: %s/%s:v1\n", src, repo)
		repos = append(repos, repo)
	}
	plain := writeImageSet(t, t.TempDir(), "images:\n"+refs.String()+"referrers:\n  enabled: false\n")
	save := countRequests(ctx, t, srcLog, func() { mustRun(ctx, t, "save", "-q", "-c", plain, "-o", filepath.Join(work, "plain")) })
	contentPer, contentRun := report(t, "save (referrers discovery off)", save, repos)

	set := writeImageSet(t, work, "images:\n"+refs.String())
	arch := filepath.Join(work, "archive")
	save = countRequests(ctx, t, srcLog, func() { mustRun(ctx, t, "save", "-q", "-c", set, "-o", arch) })
	savePer, saveRun := report(t, "save", save, repos)

	dst, dstLog := registries.StartDistributionWithAccessLog(ctx, t)
	load := countRequests(ctx, t, dstLog, func() { mustRun(ctx, t, "load", "-q", arch, "--to", dst+"/mirror") })
	var mirrored []string
	for _, r := range repos {
		mirrored = append(mirrored, "mirror/"+r)
	}
	loadPer, loadRun := report(t, "load", load, mirrored)

	t.Logf("per image: save %.2f without referrers discovery (target %d), %.2f with it (at most %d more per repository); load %.2f (target %d); per run: save %d, load %d",
		contentPer, saveRequestsTarget, savePer, saveDiscoveryMax, loadPer, loadRequestsTarget, saveRun, loadRun)
	if contentPer > saveRequestsTarget {
		t.Errorf("save without referrers discovery sends %.2f requests per image, more than %d", contentPer, saveRequestsTarget)
	}
	if savePer > saveRequestsTarget+saveDiscoveryMax {
		t.Errorf("save sends %.2f requests per image, more than %d + %d for discovery", savePer, saveRequestsTarget, saveDiscoveryMax)
	}
	if saveRun > saveRunMax || contentRun > saveRunMax {
		t.Errorf("save sends %d (%d without discovery) requests outside the images' repositories, more than %d", saveRun, contentRun, saveRunMax)
	}
	if loadPer > loadRequestsTarget {
		t.Errorf("load sends %.2f requests per image, more than %d", loadPer, loadRequestsTarget)
	}
	if loadRun > loadRunMax {
		t.Errorf("load sends %d requests outside the images' repositories (its catalog), more than %d", loadRun, loadRunMax)
	}
}

// countRequests returns the requests the registry of log served while f ran.
func countRequests(ctx context.Context, t *testing.T, log *registries.AccessLog, f func()) []registries.Request {
	t.Helper()
	if err := log.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := log.Requests()
	if err != nil {
		t.Fatal(err)
	}
	f()
	if err := log.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := log.Requests()
	if err != nil {
		t.Fatal(err)
	}
	return after[len(before):]
}

// report logs every request and the counts by method and kind of path, and returns the requests to
// the images' repositories per image and the number of the others (per run).
func report(t *testing.T, what string, reqs []registries.Request, imageRepos []string) (perImage float64, perRun int) {
	t.Helper()
	counts := map[string]int{}
	var lines strings.Builder
	images := 0
	for _, r := range reqs {
		kind := pathKind(r.URI)
		if slices.Contains(imageRepos, repository(r.URI)) {
			images++
		} else {
			kind += " (per run: " + cmp.Or(repository(r.URI), "no repository") + ")"
		}
		counts[r.Method+" "+kind]++
		fmt.Fprintf(&lines, "\n  %s %s %d", r.Method, r.URI, r.Status)
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var by strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&by, "\n  %-50s %3d", k, counts[k])
		if !strings.Contains(k, "per run") {
			fmt.Fprintf(&by, "  (%.2f per image)", float64(counts[k])/requestImages)
		}
	}
	perImage, perRun = float64(images)/requestImages, len(reqs)-images
	t.Logf("%s of %d images: %d requests: %.2f per image and %d per run; by method and path:%s\nin order:%s",
		what, requestImages, len(reqs), perImage, perRun, by.String(), lines.String())
	return perImage, perRun
}

// repository returns the repository name of a registry API path (/v2/NAME/manifests/..., blobs,
// referrers, tags), or "" for /v2/ and the catalog.
func repository(uri string) string {
	p, _, _ := strings.Cut(uri, "?")
	p, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return ""
	}
	for _, sep := range []string{"/manifests/", "/blobs/", "/referrers/", "/tags/"} {
		if i := strings.LastIndex(p, sep); i > 0 {
			return p[:i]
		}
	}
	return ""
}

// pathKind names what a registry API path addresses: ping, manifest, blob, blob upload (POST to start
// one, PATCH and PUT to send and finish it), referrers, tag list, catalog, other.
func pathKind(uri string) string {
	p, _, _ := strings.Cut(uri, "?")
	switch {
	case p == "/v2/" || p == "/v2":
		return "ping /v2/"
	case strings.Contains(p, "/manifests/"):
		return "manifest"
	case strings.Contains(p, "/blobs/uploads"):
		return "blob upload"
	case strings.Contains(p, "/blobs/"):
		return "blob"
	case strings.Contains(p, "/referrers/"):
		return "referrers"
	case strings.HasSuffix(p, "/tags/list"):
		return "tags/list"
	case strings.HasSuffix(p, "/_catalog"):
		return "catalog"
	}
	return "other"
}

// pushTwoBlobImage pushes host/repo:tag, a single-platform image of two blobs found in no other
// image: a config naming repo and a layer of 4 KiB random bytes. (pushRandomImage's configs are the
// same in every image, which a load could mount from the first repository instead of uploading.)
func pushTwoBlobImage(ctx context.Context, t *testing.T, host, repoName, tag string) {
	t.Helper()
	repo, push := testRepository(ctx, t, host, repoName)
	layer := make([]byte, 4<<10)
	rand.Read(layer)
	cfg, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Config: ocispec.ImageConfig{Cmd: []string{"/" + repoName}}})
	m, _ := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    push(ocispec.MediaTypeImageConfig, cfg),
		Layers:    []ocispec.Descriptor{push(ocispec.MediaTypeImageLayer, layer)},
	})
	md := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, m)
	if err := repo.PushReference(ctx, md, bytes.NewReader(m), tag); err != nil {
		t.Fatalf("push %s/%s:%s: %v", host, repoName, tag, err)
	}
}
