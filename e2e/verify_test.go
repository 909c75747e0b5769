package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
)

type verifyOutput struct {
	Passed  bool
	Results []struct {
		Source     string
		Passed     bool
		Failures   []string
		Signatures []struct {
			Covers, Format, Signer string
			Valid                  bool
		}
		Attestations []struct {
			PredicateType string
			Valid         bool
		}
	}
}

func verifyJSON(t *testing.T, res result) verifyOutput {
	t.Helper()
	var v verifyOutput
	if err := json.Unmarshal([]byte(res.stdout), &v); err != nil {
		t.Fatalf("verify --format json: %v\n%s\n%s", err, res.stdout, res.stderr)
	}
	return v
}

// TestVerifyEndToEnd: save with trust material, load, verify the site registry; then alter one
// signature blob in the archive: verify fails for that image alone and load --verify skips it.
func TestVerifyEndToEnd(t *testing.T) {
	ctx := t.Context()
	src := registries.StartGGCR(t)
	dst := registries.StartDistribution(ctx, t)
	work := t.TempDir()
	keys := filepath.Join(work, "keys")
	app := seed.Sample(ctx, t, src, "team/app", keys)
	api := seed.Sample(ctx, t, src, "team/api", keys)
	unsigned := pushRandomImage(ctx, t, src, "team/unsigned", "v1", 1024)
	set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\n  - ref: %s\ntrust:\n  keys: [keys/%s]\n", app.Ref(), api.Ref(), filepath.Base(app.PublicKeyPath)))
	arch := filepath.Join(work, "archive")
	mustRun(ctx, t, "save", "-c", set, "-o", arch, "--verify")

	// Real cosign v3 output verifies, in the archive: bundles on the index and on linux/amd64, the
	// legacy .sig, and the attestation.
	// The image key is pinned at the site (--key): the archive's own trust material is not used.
	pin := []string{"--key", app.PublicKeyPath}
	v := verifyJSON(t, mustRun(ctx, t, append([]string{"verify", arch, "--format", "json"}, pin...)...))
	if !v.Passed || len(v.Results) != 2 {
		t.Fatalf("verify archive: %+v", v)
	}
	formats := map[string]bool{}
	for _, s := range v.Results[0].Signatures {
		if s.Valid {
			formats[s.Format+" on "+s.Covers] = true
		}
	}
	for _, want := range []string{"bundle on index", "bundle on linux/amd64", "legacy-sig on index"} {
		if !formats[want] {
			t.Errorf("no valid %s in %v", want, formats)
		}
	}
	if len(v.Results[0].Attestations) != 1 || !v.Results[0].Attestations[0].Valid || v.Results[0].Attestations[0].PredicateType != "https://slsa.dev/provenance/v0.2" {
		t.Errorf("attestation: %+v", v.Results[0].Attestations)
	}

	// Offline means offline: verify of the archive in a network namespace with loopback only.
	if unshare, err := exec.LookPath("unshare"); err == nil {
		out, err := exec.CommandContext(ctx, unshare, append([]string{"-rn", airlock(t), "verify", arch}, pin...)...).CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "unshare failed") || strings.Contains(string(out), "Operation not permitted") {
				if os.Getenv("CI") == "true" {
					t.Fatalf("unshare -rn not permitted here: %s", out)
				}
				t.Logf("unshare -rn not permitted here, skipping the namespace check: %s", out)
			} else {
				t.Errorf("verify inside unshare -rn failed: %v\n%s", err, out)
			}
		}
	} else if os.Getenv("CI") == "true" {
		t.Fatalf("unshare not found (util-linux)")
	}

	// Load, then verify the site registry against the archive's catalog and trust material.
	mustRun(ctx, t, "load", arch, "--to", dst+"/mirror")
	v = verifyJSON(t, mustRun(ctx, t, append([]string{"verify", dst + "/mirror", "--archive", arch, "--format", "json"}, pin...)...))
	if !v.Passed || len(v.Results) != 2 {
		t.Fatalf("verify site registry: %+v", v)
	}
	// The same with the ImageSet naming the images and the trust (no archive at hand).
	v = verifyJSON(t, mustRun(ctx, t, "verify", dst+"/mirror", "-c", set, "--format", "json"))
	if !v.Passed || len(v.Results) != 2 {
		t.Fatalf("verify site registry with the ImageSet: %+v", v)
	}

	// --key with a key that signed nothing fails every image.
	other := seed.Sample(ctx, t, src, "team/other", filepath.Join(work, "otherkeys"))
	res := run(ctx, t, "verify", arch, "--key", other.PublicKeyPath)
	if res.code != 1 || strings.Count(res.stdout, "FAIL") != 2 {
		t.Errorf("verify with another key: exit %d\n%s", res.code, res.stdout)
	}

	// save --verify refuses an unsigned image before writing anything.
	set2 := writeImageSet(t, t.TempDir(), fmt.Sprintf("images:\n  - ref: %s/team/unsigned@%s\ntrust:\n  keys: [%s]\n", src, unsigned, app.PublicKeyPath))
	out2 := filepath.Join(work, "refused")
	if res := run(ctx, t, "save", "-c", set2, "-o", out2, "--verify"); res.code != 1 || !strings.Contains(res.stderr, "no signature found") {
		t.Errorf("save --verify of an unsigned image: exit %d\n%s", res.code, res.stderr)
	}
	if _, err := os.Stat(out2); !os.IsNotExist(err) {
		t.Errorf("save --verify wrote %s for an image that failed", out2)
	}

	// Break the signatures of "api" the way an attacker who rewrites the whole archive would: every
	// digest agrees again (see rewriteReferrerLayer), so only the signatures themselves can fail, and
	// they fail for that image alone.
	rewriteReferrerLayer(t, arch, api.Referrers[seed.IndexSignature].Manifest.Digest, breakBundleSignature)
	rewriteReferrerLayer(t, arch, api.Referrers[seed.Amd64Signature].Manifest.Digest, breakBundleSignature)
	rewriteReferrerLayer(t, arch, api.Referrers[seed.LegacySignature].Manifest.Digest, func(_ *testing.T, b []byte) []byte { return append(b, ' ') })
	res = run(ctx, t, append([]string{"verify", arch, "--format", "json"}, pin...)...)
	v = verifyJSON(t, res)
	if res.code != 1 || v.Passed {
		t.Fatalf("verify after tampering: exit %d, passed %v", res.code, v.Passed)
	}
	for _, r := range v.Results {
		wantPass := r.Source == app.Ref()
		if r.Passed != wantPass {
			t.Errorf("%s: passed=%v, want %v (failures %v)", r.Source, r.Passed, wantPass, r.Failures)
		}
	}
	res = run(ctx, t, append([]string{"load", arch, "--to", dst + "/gated", "--verify"}, pin...)...)
	if res.code != 1 || !strings.Contains(res.stderr, "refused, verification failed: "+api.Ref()) {
		t.Errorf("load --verify: exit %d\n%s", res.code, res.stderr)
	}
	if got := manifest(ctx, t, dst, "gated/team/app", "v1", &ocispec.Index{}); got != app.IndexDigest {
		t.Errorf("the image that passed was not loaded: %s", got)
	}
	if status, _, _ := get(ctx, t, "HEAD", dst, "/v2/gated/team/api/manifests/v1"); status != 404 {
		t.Errorf("the refused image's tag is on the target (status %d)", status)
	}
}

// tamperLayer replaces the first layer of referrer manifest d, in the archive, with altered bytes
// that still hash to their (new) name, and rewrites nothing else: the manifest keeps pointing at the
// old digest, so readers see a blob that does not match its digest.
func tamperLayer(t *testing.T, dir string, d digest.Digest) {
	t.Helper()
	mb, err := os.ReadFile(archive.BlobPath(dir, d))
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil || len(m.Layers) == 0 {
		t.Fatalf("referrer %s: %v", d, err)
	}
	p := archive.BlobPath(dir, m.Layers[0].Digest)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
