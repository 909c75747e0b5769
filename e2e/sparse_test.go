package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
)

// flattenReport is the part of `load --format json` that says what --sparse-index=flatten did.
type flattenReport struct {
	Images []struct {
		Status string
		Digest digest.Digest
	}
	Flattened []struct {
		Source, Platform string
		Index, Digest    digest.Digest
		Carried          int
		LeftBehind       []struct {
			Digest, Subject digest.Digest
			Kind            string
		}
	}
}

// TestSparseIndex saves the signed two-platform sample filtered to linux/amd64 (a sparse index, signed
// on the index and on linux/amd64) and loads it into the distribution registry: in its stock
// configuration (validation.manifests.indexes.platforms: all) the index is refused, the message names
// --sparse-index and nothing of the image is tagged; with --sparse-index=flatten the tag names the
// amd64 manifest, digest unchanged, and cosign and airlock verify it there; configured with
// platforms: none, the sparse index is pushed as it is. Flatten with two platforms saved is refused
// before anything is pushed.
func TestSparseIndex(t *testing.T) {
	ctx := t.Context()
	src := registries.StartGGCR(t)
	work := t.TempDir()
	f := seed.Sample(ctx, t, src, "team/app", filepath.Join(work, "keys"))
	amd64 := f.Platforms["linux/amd64"].Digest

	set := writeImageSet(t, filepath.Join(work), fmt.Sprintf("images:\n  - ref: %s\n    platforms: [linux/amd64]\n", f.Ref()))
	arch := filepath.Join(work, "amd64")
	saved := mustRun(ctx, t, "save", "-c", set, "-o", arch)
	if !strings.Contains(saved.stderr, "sparse index") || !strings.Contains(saved.stderr, "--sparse-index=flatten") ||
		!strings.Contains(saved.stderr, "validation.manifests.indexes.platforms: none") || strings.Count(saved.stderr, "--sparse-index=flatten") != 1 {
		t.Errorf("save with a platform filter does not say once that the site must take sparse indexes or flatten:\n%s", saved.stderr)
	}
	if cat := readCatalog(ctx, t, arch); len(cat.Images) != 1 || !cat.Images[0].Sparse || len(cat.Images[0].Platforms) != 1 {
		t.Fatalf("catalog: %+v", cat.Images)
	}
	const repo = "mirror/team/app"

	t.Run("stock distribution refuses the sparse index", func(t *testing.T) {
		t.Parallel()
		dst := registries.StartDistribution(ctx, t)
		res := run(ctx, t, "load", arch, "--to", dst+"/mirror")
		t.Logf("load of a sparse index into stock distribution: exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
		if res.code == 0 || !strings.Contains(res.stdout+res.stderr, "--sparse-index") {
			t.Errorf("load of a sparse index into stock distribution: exit %d, want a failure naming --sparse-index\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
		}
		if !strings.Contains(res.stdout+res.stderr, "validation.manifests.indexes.platforms") {
			t.Errorf("the message does not name the registry setting:\n%s%s", res.stdout, res.stderr)
		}
		if status, _, b := get(ctx, t, http.MethodGet, dst, "/v2/"+repo+"/manifests/"+f.Tag); status != http.StatusNotFound {
			t.Errorf("tag %s after a refused load: status %d, want 404: %s", f.Tag, status, b)
		}
	})

	t.Run("flatten into stock distribution", func(t *testing.T) {
		t.Parallel()
		dst := registries.StartDistribution(ctx, t)
		site := filepath.Join(t.TempDir(), "site")
		res := mustRun(ctx, t, "load", arch, "--to", dst+"/mirror", "--sparse-index=flatten", "--site-files", site, "--format", "json")
		var rep flattenReport
		if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
			t.Fatalf("load --format json: %v\n%s", err, res.stdout)
		}
		checkFlattenReport(t, f, rep)
		if got := manifest(ctx, t, dst, repo, f.Tag, &map[string]any{}); got != amd64 {
			t.Errorf("tag %s names %s, want the linux/amd64 manifest %s", f.Tag, got, amd64)
		}
		if status, _, _ := get(ctx, t, http.MethodHead, dst, "/v2/"+repo+"/manifests/"+f.IndexDigest.String()); status != http.StatusNotFound {
			t.Errorf("the index %s is on the target (status %d); flatten pushes no index", f.IndexDigest, status)
		}
		checkCosignVerifiesDigest(ctx, t, f.PublicKeyPath, dst+"/"+repo+":"+f.Tag)
		// The site files name what the mirror holds: the platform manifest, not the index.
		if mapping, err := os.ReadFile(filepath.Join(site, "mapping.txt")); err != nil || !strings.Contains(string(mapping), f.Ref()+"="+dst+"/"+repo+"@"+amd64.String()) {
			t.Errorf("mapping.txt after a flattened load: %q, %v; want %s=%s/%s@%s", mapping, err, f.Ref(), dst, repo, amd64)
		}
		ver := run(ctx, t, "verify", dst+"/mirror", "--archive", arch, "--key", f.PublicKeyPath)
		if ver.code != 0 || !strings.Contains(ver.stdout, "PASS") || !strings.Contains(ver.stdout, "on linux/amd64") {
			t.Errorf("airlock verify of the flattened image: exit %d, want a pass with a signature on linux/amd64\n%s%s", ver.code, ver.stdout, ver.stderr)
		}
		diff := run(ctx, t, "diff", "-c", set, "--against", dst+"/mirror")
		if diff.code != 0 || !strings.Contains(diff.stdout, "ok") || !strings.Contains(diff.stdout, "flattened") {
			t.Errorf("diff against the flattened mirror: exit %d, want ok (flattened)\n%s%s", diff.code, diff.stdout, diff.stderr)
		}
		text := mustRun(ctx, t, "load", arch, "--to", dst+"/mirror", "--sparse-index=flatten")
		t.Logf("second flattened load:\n%s\nverify:\n%s\ndiff:\n%s", text.stdout, ver.stdout, diff.stdout)
		if !strings.Contains(text.stdout, "left behind: signature") {
			t.Errorf("a second load's text report does not list what was left behind:\n%s", text.stdout)
		}
	})

	t.Run("copy with flatten into stock distribution", func(t *testing.T) {
		t.Parallel()
		dst := registries.StartDistribution(ctx, t)
		mustRun(ctx, t, "copy", "-c", set, "--to", dst+"/mirror", "--sparse-index=flatten")
		if got := manifest(ctx, t, dst, repo, f.Tag, &map[string]any{}); got != amd64 {
			t.Errorf("tag %s names %s after copy --sparse-index=flatten, want the linux/amd64 manifest %s", f.Tag, got, amd64)
		}
		checkCosignVerifiesDigest(ctx, t, f.PublicKeyPath, dst+"/"+repo+":"+f.Tag)
	})

	t.Run("distribution with platforms none takes the sparse index", func(t *testing.T) {
		t.Parallel()
		dst := registries.StartDistributionWith(ctx, t, registries.DistributionOptions{IndexPlatforms: "none"})
		mustRun(ctx, t, "load", arch, "--to", dst+"/mirror")
		if got := manifest(ctx, t, dst, repo, f.Tag, &map[string]any{}); got != f.IndexDigest {
			t.Errorf("tag %s names %s, want the sparse index %s, as saved", f.Tag, got, f.IndexDigest)
		}
		manifest(ctx, t, dst, repo, amd64.String(), &map[string]any{})
		checkCosignVerifiesDigest(ctx, t, f.PublicKeyPath, dst+"/"+repo+":"+f.Tag)
	})

	t.Run("flatten with two platforms saved is refused before any push", func(t *testing.T) {
		t.Parallel()
		ref := pushThreePlatformIndex(ctx, t, src, "team/three", "v3")
		set2 := writeImageSet(t, t.TempDir(), fmt.Sprintf("images:\n  - ref: %s\n    platforms: [linux/amd64, linux/arm64]\n", ref))
		arch2 := filepath.Join(t.TempDir(), "two-of-three")
		mustRun(ctx, t, "save", "-c", set2, "-o", arch2)
		dst := registries.StartDistribution(ctx, t)
		res := run(ctx, t, "load", arch2, "--to", dst+"/mirror", "--sparse-index=flatten")
		if res.code != 2 || !strings.Contains(res.stderr, ref) || !strings.Contains(res.stderr, "2 platform manifests") || !strings.Contains(res.stderr, "nothing was pushed") {
			t.Errorf("flatten of a two-platform sparse archive: exit %d, want 2 and a refusal naming the image and why\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
		}
		if status, _, b := get(ctx, t, http.MethodGet, dst, "/v2/_catalog"); status != http.StatusOK || strings.Contains(string(b), "mirror/") {
			t.Errorf("the registry holds repositories after a refused flatten: %d %s", status, b)
		}
	})
}

// pushThreePlatformIndex pushes an index of three one-layer images (linux/amd64, linux/arm64,
// linux/s390x) to host/repo:tag and returns its reference.
func pushThreePlatformIndex(ctx context.Context, t *testing.T, host, repoName, tag string) string {
	t.Helper()
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for _, arch := range []string{"amd64", "arm64", "s390x"} {
		d := pushRandomImage(ctx, t, host, repoName, "only-"+arch, 64)
		b := mustManifestBytes(ctx, t, host, repoName, d)
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: int64(len(b)),
			Platform: &ocispec.Platform{OS: "linux", Architecture: arch}})
	}
	repo, err := remote.NewRepository(host + "/" + repoName)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	b, _ := json.Marshal(idx)
	desc := ocispec.Descriptor{MediaType: idx.MediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if err := repo.PushReference(ctx, desc, bytes.NewReader(b), tag); err != nil {
		t.Fatal(err)
	}
	return host + "/" + repoName + ":" + tag
}

// mustManifestBytes fetches the manifest d of host/repo.
func mustManifestBytes(ctx context.Context, t *testing.T, host, repo string, d digest.Digest) []byte {
	t.Helper()
	status, _, b := get(ctx, t, http.MethodGet, host, "/v2/"+repo+"/manifests/"+d.String())
	if status != http.StatusOK || digest.FromBytes(b) != d {
		t.Fatalf("manifest %s of %s/%s: status %d", d, host, repo, status)
	}
	return b
}

// checkFlattenReport checks the JSON report of a flattened load: the image pushed at the amd64
// digest, the index's signature, attestation, SBOM and legacy signature left behind, the amd64
// signature carried.
func checkFlattenReport(t *testing.T, f *seed.Fixture, rep flattenReport) {
	t.Helper()
	amd64 := f.Platforms["linux/amd64"].Digest
	if len(rep.Images) != 1 || rep.Images[0].Status != "pushed" || rep.Images[0].Digest != amd64 {
		t.Errorf("report images: %+v; want the amd64 manifest pushed", rep.Images)
	}
	if len(rep.Flattened) != 1 {
		t.Fatalf("flattened: %+v", rep.Flattened)
	}
	fl := rep.Flattened[0]
	if fl.Index != f.IndexDigest || fl.Digest != amd64 || fl.Platform != "linux/amd64" || fl.Carried != 1 {
		t.Errorf("flattened: %+v; want index %s, linux/amd64 %s, its one signature carried", fl, f.IndexDigest, amd64)
	}
	var left []digest.Digest
	for _, lb := range fl.LeftBehind {
		left = append(left, lb.Digest)
	}
	for _, k := range []seed.Kind{seed.IndexSignature, seed.IndexAttestation, seed.IndexSBOM, seed.SBOMSignature, seed.LegacySignature} {
		if !slices.Contains(left, f.Referrers[k].Manifest.Digest) {
			t.Errorf("the %s is not reported as left behind (%v)", k, left)
		}
	}
	if slices.Contains(left, f.Referrers[seed.Amd64Signature].Manifest.Digest) {
		t.Errorf("the amd64 signature is reported as left behind")
	}
}
