package e2e

import (
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
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
)

// loadReport is the part of `load --format json` the tests read.
type loadReport struct {
	Images []struct {
		Source, Target, Status, ReferrersBy string
		Digest                              digest.Digest
	}
	Blobs struct {
		Pushed, Skipped, Mounted, Failed int
		BytesPushed, BytesSkipped        int64
	}
	Manifests struct{ Pushed, Skipped int }
	Verified  int
}

func loadJSON(ctx context.Context, t *testing.T, args ...string) loadReport {
	t.Helper()
	res := mustRun(ctx, t, append(args, "--format", "json")...)
	var rep loadReport
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("load --format json: %v\n%s", err, res.stdout)
	}
	return rep
}

// TestLoadRoundTrip saves from a registry with the referrers API and loads into the distribution
// registry (no API, delete disabled) and into a registry with the API: every manifest keeps its
// digest, referrers are listed the way each target supports, and the real cosign verifies the
// signatures and the attestation on both targets, offline.
func TestLoadRoundTrip(t *testing.T) {
	ctx := t.Context()
	src := registries.StartGGCR(t)
	work := t.TempDir()
	f := seed.Sample(ctx, t, src, "team/app", filepath.Join(work, "keys"))
	set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\n", f.Ref()))
	arch := filepath.Join(work, "archive")
	mustRun(ctx, t, "save", "-c", set, "-o", arch)
	cat := readCatalog(ctx, t, arch)

	for _, tc := range []struct {
		name  string
		start func(ctx context.Context, t testing.TB) string
		api   bool
	}{
		{"into distribution (tag schema)", registries.StartDistribution, false},
		{"into ggcr (referrers API)", func(_ context.Context, t testing.TB) string { return registries.StartGGCR(t) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dst := tc.start(ctx, t)
			site := filepath.Join(t.TempDir(), "site")
			rep := loadJSON(ctx, t, "load", arch, "--to", dst+"/mirror", "--site-files", site)
			if len(rep.Images) != 1 || rep.Images[0].Status != "pushed" || rep.Images[0].Target != dst+"/mirror/team/app:v1" {
				t.Fatalf("report images: %+v", rep.Images)
			}
			wantBy := "tag-schema"
			if tc.api {
				wantBy = "api"
			}
			if rep.Images[0].ReferrersBy != wantBy {
				t.Errorf("referrers attached by %q, want %q", rep.Images[0].ReferrersBy, wantBy)
			}

			// Every manifest of the archive is on the target with the same digest.
			tf := *f
			tf.Host, tf.Repo = dst, "mirror/team/app"
			all := []digest.Digest{f.IndexDigest}
			for _, p := range cat.Images[0].Platforms {
				all = append(all, p.Digest)
			}
			for _, r := range cat.Referrers {
				all = append(all, r.Digest)
			}
			for _, d := range all {
				var m map[string]any
				if got := manifest(ctx, t, dst, tf.Repo, d.String(), &m); got != d {
					t.Errorf("manifest %s on the target hashes to %s", d, got)
				}
			}
			if got := manifest(ctx, t, dst, tf.Repo, "v1", &map[string]any{}); got != f.IndexDigest {
				t.Errorf("tag v1 on the target is %s, want %s", got, f.IndexDigest)
			}
			if rep.Verified != len(all) {
				t.Errorf("report says %d manifests verified on the target, want %d", rep.Verified, len(all))
			}

			// Publishing only copies: every tag on the target names a manifest of the archive, except
			// the tag-schema indexes airlock keeps, which list only manifests of the archive.
			checkOnlyCopies(ctx, t, dst, tf.Repo, arch)

			// Referrers are findable the way the target supports.
			idxRefs := listed(ctx, t, &tf, f.IndexDigest, tc.api)
			for _, k := range []seed.Kind{seed.IndexSignature, seed.IndexAttestation, seed.IndexSBOM} {
				if !slices.Contains(idxRefs, f.Referrers[k].Manifest.Digest) {
					t.Errorf("the %s is not listed as a referrer of the index on the target (%v)", k, idxRefs)
				}
			}
			if got := listed(ctx, t, &tf, f.Referrers[seed.IndexSBOM].Manifest.Digest, tc.api); !slices.Contains(got, f.Referrers[seed.SBOMSignature].Manifest.Digest) {
				t.Errorf("the SBOM's signature is not listed on the target")
			}
			checkLegacySignature(ctx, t, &tf)
			checkCosignVerifies(ctx, t, &tf)

			// Site files name the target at the digest.
			mapping, err := os.ReadFile(filepath.Join(site, "mapping.txt"))
			if err != nil || !strings.Contains(string(mapping), dst+"/mirror/team/app@"+f.IndexDigest.String()) {
				t.Errorf("mapping.txt: %q, %v", mapping, err)
			}

			// A second load uploads nothing.
			again := loadJSON(ctx, t, "load", arch, "--to", dst+"/mirror")
			if again.Blobs.Pushed != 0 || again.Blobs.BytesPushed != 0 || again.Manifests.Pushed != 0 {
				t.Errorf("second load pushed %d blobs (%d bytes), %d manifests; want none", again.Blobs.Pushed, again.Blobs.BytesPushed, again.Manifests.Pushed)
			}
			if again.Blobs.Skipped == 0 || again.Images[0].Status != "up-to-date" {
				t.Errorf("second load: %+v", again)
			}

			// diff: the mirror has everything; an empty prefix has nothing.
			if res := run(ctx, t, "diff", "-c", set, "--against", dst+"/mirror"); res.code != 0 || !strings.Contains(res.stdout, "ok") {
				t.Errorf("diff against the loaded mirror: exit %d\n%s%s", res.code, res.stdout, res.stderr)
			}
			if res := run(ctx, t, "diff", "-c", set, "--against", dst+"/empty"); res.code != 1 || !strings.Contains(res.stdout, "missing") {
				t.Errorf("diff against an empty prefix: exit %d, want 1\n%s%s", res.code, res.stdout, res.stderr)
			}
		})
	}
}

// TestCopyRegistryToRegistry promotes the sample from a registry with the API to one without.
func TestCopyRegistryToRegistry(t *testing.T) {
	ctx := t.Context()
	src := registries.StartGGCR(t)
	dst := registries.StartDistribution(ctx, t)
	work := t.TempDir()
	f := seed.Sample(ctx, t, src, "team/app", filepath.Join(work, "keys"))
	set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\n", f.Ref()))
	rep := loadJSON(ctx, t, "copy", "-c", set, "--to", dst+"/prod")
	if len(rep.Images) != 1 || rep.Images[0].Status != "pushed" {
		t.Fatalf("copy report: %+v", rep.Images)
	}
	tf := *f
	tf.Host, tf.Repo = dst, "prod/team/app"
	if got := manifest(ctx, t, dst, tf.Repo, "v1", &ocispec.Index{}); got != f.IndexDigest {
		t.Fatalf("copied tag is %s, want %s", got, f.IndexDigest)
	}
	checkLegacySignature(ctx, t, &tf)
	checkCosignVerifies(ctx, t, &tf)

	// copy --verify promotes only what verifies: the unsigned image is refused, the signed one copied.
	unsigned := pushRandomImage(ctx, t, src, "team/unsigned", "v1", 1024)
	set2 := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\n  - ref: %s/team/unsigned@%s\ntrust:\n  keys: [%s]\n", f.Ref(), src, unsigned, f.PublicKeyPath))
	res := run(ctx, t, "copy", "-c", set2, "--to", dst+"/gated", "--verify")
	if res.code != 1 || !strings.Contains(res.stderr, "refused, verification failed: "+src+"/team/unsigned") {
		t.Errorf("copy --verify: exit %d\n%s", res.code, res.stderr)
	}
	if got := manifest(ctx, t, dst, "gated/team/app", "v1", &ocispec.Index{}); got != f.IndexDigest {
		t.Errorf("the signed image was not copied: %s", got)
	}
	// ...and nothing of the refused one is on the target: no manifest by its digest, no repository.
	if status, _, _ := get(ctx, t, http.MethodHead, dst, "/v2/gated/team/unsigned/manifests/"+unsigned.String()); status != http.StatusNotFound {
		t.Errorf("copy --verify pushed the refused image's manifest (HEAD status %d)", status)
	}
	for _, repo := range catalogRepos(ctx, t, dst) {
		if strings.HasPrefix(repo, "gated/team/unsigned") {
			t.Errorf("copy --verify created %s on the target for the refused image", repo)
		}
	}
}

// TestLoadFromVolumesInPlace loads a tar split into volumes and checks nothing was extracted.
func TestLoadFromVolumesInPlace(t *testing.T) {
	ctx := t.Context()
	src := registries.StartDistribution(ctx, t)
	dst := registries.StartDistribution(ctx, t)
	work := t.TempDir()
	f := seed.Sample(ctx, t, src, "team/app", filepath.Join(work, "keys"))
	big := pushRandomImage(ctx, t, src, "team/big", "v1", 3<<20)
	set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\n  - ref: %s/team/big:v1\n", f.Ref(), src))
	out := filepath.Join(work, "vol", "airlock.tar")
	os.MkdirAll(filepath.Dir(out), 0o755)
	mustRun(ctx, t, "save", "-c", set, "-o", out, "--volume-size", "1MiB")
	vols, _ := filepath.Glob(out + ".0*")
	if len(vols) < 3 {
		t.Fatalf("want the 3 MiB archive in several 1 MiB volumes, got %v", vols)
	}
	volDir := filepath.Dir(out)
	before := tree(t, volDir)

	// airlock's home, temporary and cache directories are redirected into one watched directory:
	// extraction would land there or beside the volumes.
	watched := t.TempDir()
	home, tmp := filepath.Join(watched, "home"), filepath.Join(watched, "tmp")
	mkdir(t, home)
	mkdir(t, tmp)
	env := []string{"HOME=" + home, "TMPDIR=" + tmp, "XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"XDG_STATE_HOME=" + filepath.Join(home, ".local", "state"), "XDG_RUNTIME_DIR=" + filepath.Join(tmp, "run")}
	watchedBefore := tree(t, watched)
	res := mustRunEnv(ctx, t, env, "load", out+".000", "--to", dst+"/mirror", "--format", "json")
	var rep loadReport
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("load --format json: %v\n%s", err, res.stdout)
	}
	if len(rep.Images) != 2 {
		t.Errorf("load reported %d images, want 2", len(rep.Images))
	}
	for _, img := range rep.Images {
		if img.Status != "pushed" {
			t.Errorf("%s: %s", img.Source, img.Status)
		}
	}
	if after := tree(t, volDir); !equalTrees(before, after) {
		t.Errorf("load wrote beside the volumes:\nbefore %v\nafter  %v", before, after)
	}
	if after := tree(t, watched); !equalTrees(watchedBefore, after) {
		t.Errorf("load wrote into HOME or TMPDIR (it extracted the archive?):\nbefore %v\nafter  %v", watchedBefore, after)
	}
	if got := manifest(ctx, t, dst, "mirror/team/big", "v1", &ocispec.Manifest{}); got != big {
		t.Errorf("big image on the target is %s, want %s", got, big)
	}
	// Damaged volume: refused before anything is pushed.
	b, _ := os.ReadFile(vols[1])
	b[len(b)/2] ^= 0xff
	os.WriteFile(vols[1], b, 0o644)
	res = run(ctx, t, "load", out+".000", "--to", dst+"/other")
	if res.code == 0 || !strings.Contains(res.stderr, filepath.Base(vols[1])) {
		t.Errorf("load of a damaged volume: exit %d\n%s", res.code, res.stderr)
	}
	if status, _, _ := get(ctx, t, http.MethodGet, dst, "/v2/other/team/big/tags/list"); status == http.StatusOK {
		t.Errorf("a refused load left content on the target")
	}
}

func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// checkOnlyCopies fails if a tag in host/repo names content the archive does not hold, other than a
// sha256-<hex> tag-schema index that lists only manifests the archive holds.
func checkOnlyCopies(ctx context.Context, t *testing.T, host, repo, arch string) {
	t.Helper()
	var tags struct{ Tags []string }
	status, _, body := get(ctx, t, http.MethodGet, host, "/v2/"+repo+"/tags/list")
	if status != http.StatusOK || json.Unmarshal(body, &tags) != nil || len(tags.Tags) == 0 {
		t.Fatalf("tags of %s: status %d: %s", repo, status, body)
	}
	inArchive := func(d digest.Digest) bool {
		_, err := os.Stat(filepath.Join(arch, "blobs", d.Algorithm().String(), d.Encoded()))
		return err == nil
	}
	for _, tag := range tags.Tags {
		var idx ocispec.Index
		d := manifest(ctx, t, host, repo, tag, &idx)
		if inArchive(d) {
			continue
		}
		if !strings.HasPrefix(tag, "sha256-") || idx.MediaType != ocispec.MediaTypeImageIndex {
			t.Errorf("tag %s:%s names %s, which is not in the archive: load created a new object", repo, tag, d)
			continue
		}
		for _, m := range idx.Manifests {
			if !inArchive(m.Digest) {
				t.Errorf("tag-schema index %s lists %s, which is not in the archive", tag, m.Digest)
			}
		}
	}
}
