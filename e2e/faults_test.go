package e2e

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/e2e/internal/proxy"
	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
)

// TestFaults runs save, load and copy through proxies that fail about 10% of requests at random
// (5xx, 429 with Retry-After, connections reset mid-body and mid-upload, stalled bodies), several
// times with different seeds, and checks every run ends with the same digests as a clean run.
func TestFaults(t *testing.T) {
	ctx := t.Context()
	src := registries.StartDistribution(ctx, t)
	dst := registries.StartDistribution(ctx, t)
	work := t.TempDir()
	f := seed.Sample(ctx, t, src, "team/app", filepath.Join(work, "keys"))
	for i := range 3 {
		pushRandomImage(ctx, t, src, fmt.Sprintf("team/svc%d", i), "v1", 300<<10)
	}
	images := func(host string) string {
		s := fmt.Sprintf("images:\n  - ref: %s/team/app:v1\n", host)
		for i := range 3 {
			s += fmt.Sprintf("  - ref: %s/team/svc%d:v1\n", host, i)
		}
		return s
	}
	clean := filepath.Join(work, "clean")
	mustRun(t.Context(), t, "save", "-c", writeImageSet(t, t.TempDir(), images(src)), "-o", clean)
	want := archiveDigests(t, clean)

	flags := []string{"--stall-timeout", "1s", "--attempts", "8"}
	totals := map[proxy.Fault]int{}
	for round := range 3 {
		seedN := uint64(round + 1)
		opts := proxy.Options{FaultRate: 0.10, Seed: seedN, StallFor: 3 * time.Second}
		srcP := proxy.StartWith(t, src, opts)
		opts.Seed += 100
		dstP := proxy.StartWith(t, dst, opts)
		arch := filepath.Join(work, fmt.Sprintf("round%d", round))

		mustRun(ctx, t, append([]string{"save", "-c", writeImageSet(t, t.TempDir(), images(srcP.Host)), "-o", arch}, flags...)...)
		if got := archiveDigests(t, arch); !equalDigests(got, remap(want, src, srcP.Host)) {
			t.Errorf("round %d: saved through faults, the archive's manifests differ from a clean save", round)
		}
		checkEveryBlobHashesToItsName(t, arch)

		prefix := fmt.Sprintf("r%d", round)
		mustRun(ctx, t, append([]string{"load", arch, "--to", dstP.Host + "/" + prefix}, flags...)...)
		mustRun(ctx, t, append([]string{"copy", "-c", writeImageSet(t, t.TempDir(), images(srcP.Host)), "--to", dstP.Host + "/" + prefix + "copy"}, flags...)...)
		for _, p := range []string{prefix, prefix + "copy"} {
			if got := manifest(ctx, t, dst, p+"/team/app", "v1", &ocispec.Index{}); got != f.IndexDigest {
				t.Errorf("round %d: %s/team/app:v1 is %s, want %s", round, p, got, f.IndexDigest)
			}
			for _, r := range f.Referrers {
				var m map[string]any
				if got := manifest(ctx, t, dst, p+"/team/app", r.Manifest.Digest.String(), &m); got != r.Manifest.Digest {
					t.Errorf("round %d: referrer %s differs on the target", round, r.Manifest.Digest)
				}
			}
		}
		for k, v := range srcP.Injected() {
			totals[k] += v
		}
		for k, v := range dstP.Injected() {
			totals[k] += v
		}
	}
	var kinds []string
	for k, v := range totals {
		kinds = append(kinds, fmt.Sprintf("%s: %d", k, v))
		record("network (save, load, copy)", string(k), fmt.Sprintf("survived: injected %d times over 3 rounds at a 10%% fault rate; retried with backoff and jitter; every digest identical to a clean run", v))
	}
	sort.Strings(kinds)
	t.Logf("faults injected: %s", strings.Join(kinds, ", "))
	if len(totals) < 5 {
		t.Errorf("only %d kinds of fault were injected: %v", len(totals), kinds)
	}
}

// TestFaultGivesUp checks that a registry that always fails ends the run, after bounded retries,
// with an error naming the reference and the last error.
func TestFaultGivesUp(t *testing.T) {
	ctx := t.Context()
	src := registries.StartDistribution(ctx, t)
	pushRandomImage(ctx, t, src, "team/app", "v1", 1024)
	bad := proxy.StartWith(t, src, proxy.Options{FaultRate: 1, Faults: []proxy.Fault{proxy.Status503}})
	set := writeImageSet(t, t.TempDir(), fmt.Sprintf("images:\n  - ref: %s/team/app:v1\n", bad.Host))
	start := time.Now()
	res := run(ctx, t, "save", "-c", set, "-o", filepath.Join(t.TempDir(), "a"), "--attempts", "3")
	took := time.Since(start)
	if res.code != 2 || !strings.Contains(res.stderr, bad.Host+"/team/app") || !strings.Contains(res.stderr, "503") {
		t.Fatalf("exit %d after %s\n%s", res.code, took, res.stderr)
	}
	record("network", "registry answers 503 to every request", fmt.Sprintf("gave up after bounded retries (%s) with exit 2, naming the reference and the last error", took.Round(time.Second)))
}

// archiveDigests lists the manifest digests the archive's catalog names (images, platforms, referrers).
func archiveDigests(t *testing.T, dir string) []string {
	t.Helper()
	cat := readCatalog(t.Context(), t, dir)
	var out []string
	for _, img := range cat.Images {
		out = append(out, img.Source+"@"+img.Digest.String())
		for _, p := range img.Platforms {
			out = append(out, p.Digest.String())
		}
	}
	for _, r := range cat.Referrers {
		out = append(out, r.Digest.String()+" of "+r.Subject.String()+" by "+r.FoundBy)
	}
	sort.Strings(out)
	return out
}

func remap(ds []string, from, to string) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = strings.ReplaceAll(d, from, to)
	}
	sort.Strings(out)
	return out
}

func equalDigests(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}
