package e2e

import (
	"context"
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
// (5xx, 429 with Retry-After, connections reset mid-body and mid-upload, blob bodies that stall until
// the client gives up), several times with different seeds, and checks every run ends with the same
// digests as a clean run. Every kind of fault takes effect in every round (the proxy injects each
// kind on the first request it can take effect on, then at random); a stall never ends by itself, so
// only airlock's stall watchdog (--stall-timeout) gets the run through it.
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

	const stallTimeout = time.Second
	flags := []string{"--stall-timeout", stallTimeout.String(), "--attempts", "8"}
	// A run that hangs (a stall the watchdog missed) fails here instead of at the suite's timeout.
	runCtx := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 2*time.Minute)
		t.Cleanup(cancel)
		return c
	}
	const rounds = 3
	for round := range rounds {
		seedN := uint64(round + 1)
		opts := proxy.Options{FaultRate: 0.10, EachAtLeast: 1, Seed: seedN, StallFor: proxy.StallForever}
		srcP := proxy.StartWith(t, src, opts)
		opts.Seed += 100
		dstP := proxy.StartWith(t, dst, opts)
		arch := filepath.Join(work, fmt.Sprintf("round%d", round))

		mustRun(runCtx(), t, append([]string{"save", "-c", writeImageSet(t, t.TempDir(), images(srcP.Host)), "-o", arch}, flags...)...)
		if got := archiveDigests(t, arch); !equalDigests(got, remap(want, src, srcP.Host)) {
			t.Errorf("round %d: saved through faults, the archive's manifests differ from a clean save", round)
		}
		checkEveryBlobHashesToItsName(t, arch)

		prefix := fmt.Sprintf("r%d", round)
		mustRun(runCtx(), t, append([]string{"load", arch, "--to", dstP.Host + "/" + prefix}, flags...)...)
		mustRun(runCtx(), t, append([]string{"copy", "-c", writeImageSet(t, t.TempDir(), images(srcP.Host)), "--to", dstP.Host + "/" + prefix + "copy"}, flags...)...)
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
		totals := map[proxy.Fault]int{}
		for _, p := range []*proxy.Proxy{srcP, dstP} {
			for k, v := range p.Injected() {
				totals[k] += v
			}
			checkStallsRetried(t, round, p, stallTimeout)
		}
		var kinds []string
		for _, k := range proxy.AllFaults {
			kinds = append(kinds, fmt.Sprintf("%s: %d", k, totals[k]))
			if totals[k] == 0 {
				t.Errorf("round %d (seed %d): %q never took effect", round, seedN, k)
			}
		}
		t.Logf("round %d: faults that took effect: %s", round, strings.Join(kinds, ", "))
	}
	for _, k := range proxy.AllFaults {
		outcome := "survived: took effect in each of 3 rounds (each kind on the first request it can hit, then at random at a 10% fault rate); retried with backoff and jitter; every digest identical to a clean run"
		if k == proxy.Stall {
			k += " until the client gives up"
			outcome = "survived: in each of 3 rounds the stall watchdog (--stall-timeout 1s) ended every stalled transfer and a later request for the same blob succeeded; every digest identical to a clean run"
		}
		record("network (save, load, copy)", string(k), outcome)
	}
}

// checkStallsRetried fails unless every body the proxy stalled was given up by the client (airlock's
// watchdog: the proxy never ends a stall itself) no sooner than the stall timeout, and the same blob
// was then fetched again in full.
func checkStallsRetried(t *testing.T, round int, p *proxy.Proxy, timeout time.Duration) {
	t.Helper()
	reqs := p.Requests()
	for i, r := range reqs {
		if r.Fault != proxy.Stall {
			continue
		}
		if !r.ClientGone {
			t.Errorf("round %d: stalled %s %s: the client never gave up on it", round, r.Method, r.Path)
			continue
		}
		if held := r.End.Sub(r.Start); held < timeout {
			t.Errorf("round %d: stalled %s %s: given up after %s, sooner than --stall-timeout %s", round, r.Method, r.Path, held, timeout)
		}
		retried := false
		for _, later := range reqs[i+1:] {
			if later.Method == r.Method && later.Path == r.Path && later.OK() && later.Start.After(r.Start) {
				retried = true
				break
			}
		}
		if !retried {
			t.Errorf("round %d: stalled %s %s: no later request for it succeeded", round, r.Method, r.Path)
		}
	}
}

// TestFaultGivesUp checks that a registry that always fails ends the run after exactly --attempts
// tries of the failing request, spaced with growing waits, with an error naming the reference and the
// last error.
func TestFaultGivesUp(t *testing.T) {
	ctx := t.Context()
	src := registries.StartDistribution(ctx, t)
	pushRandomImage(ctx, t, src, "team/app", "v1", 1024)
	bad := proxy.StartWith(t, src, proxy.Options{FaultRate: 1, Faults: []proxy.Fault{proxy.Status503}})
	set := writeImageSet(t, t.TempDir(), fmt.Sprintf("images:\n  - ref: %s/team/app:v1\n", bad.Host))
	const attempts = 3
	// One retry layer: each of airlock's attempts sends the request once, and nothing under it sends
	// it again (with oras-go's retry transport under airlock's retries it went out up to 18 times).
	res := run(ctx, t, "save", "-c", set, "-o", filepath.Join(t.TempDir(), "a"), "--attempts", fmt.Sprint(attempts))
	if res.code != 2 || !strings.Contains(res.stderr, bad.Host+"/team/app") || !strings.Contains(res.stderr, "503") {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	var times []time.Time
	for _, r := range bad.Requests() {
		if r.Path != "/v2/team/app/manifests/v1" {
			t.Errorf("request for another operation than the tag's manifest: %s %s", r.Method, r.Path)
			continue
		}
		times = append(times, r.Start)
	}
	if n := len(times); n != attempts {
		t.Fatalf("the proxy saw %d requests for the manifest, want exactly --attempts %d", n, attempts)
	}
	gaps := []time.Duration{times[1].Sub(times[0]), times[2].Sub(times[1])}
	t.Logf("gaps %v", gaps)
	// Spaced: no retry is sent straight after the failure (the shortest wait is 125 ms). Growing:
	// the waits double (125-250 ms, then 250-500 ms), so the second is never the shorter.
	if gaps[0] < 100*time.Millisecond || gaps[1] < gaps[0]-10*time.Millisecond {
		t.Errorf("waits between attempts %v: want at least 100 ms, and growing", gaps)
	}
	record("network", "registry answers 503 to every request", fmt.Sprintf("gave up after --attempts %d: the failing manifest request sent exactly %d times, asserted at the registry (one retry layer), the waits at least 100 ms and growing; exit 2, naming the reference and the last error", attempts, attempts))
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
