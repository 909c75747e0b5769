package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"airlock.dev/airlock/e2e/internal/proxy"
	"airlock.dev/airlock/e2e/internal/registries"
)

// TestStalledManifestIsCut: a registry that sends a manifest's headers and first bytes and then
// nothing does not hang airlock. --stall-timeout cuts every response, not only blob transfers, and
// the manifest is fetched again. Before the cut covered manifests, this save waited for ever (here:
// until the test's deadline killed it).
func TestStalledManifestIsCut(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	src := registries.StartDistribution(ctx, t)
	pushTwoBlobImage(ctx, t, src, "team/a", "1.0")

	var mu sync.Mutex
	stalled, gone, manifestGets := 0, 0, 0
	hook := func(w http.ResponseWriter, r *http.Request, _ string) bool {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/manifests/") {
			return false
		}
		mu.Lock()
		manifestGets++
		first := stalled == 0
		if first {
			stalled++
		}
		mu.Unlock()
		if !first {
			return false
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, `{"schemaVersion":2,`)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			mu.Lock()
			gone++
			mu.Unlock()
		case <-ctx.Done():
		}
		return true
	}
	slow := proxy.StartWith(t, src, proxy.Options{Hook: hook})
	work := t.TempDir()
	set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s/team/a:1.0\n", slow.Host))
	res := run(ctx, t, "save", "-q", "--stall-timeout", "1s", "-c", set, "-o", filepath.Join(work, "archive"))
	if res.code != 0 {
		t.Fatalf("save through a registry that stalls a manifest: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if stalled != 1 || gone != 1 || manifestGets < 2 {
		t.Errorf("stalled %d manifest responses, airlock cut %d of them, %d manifest GETs in all; want 1, 1 and a second GET", stalled, gone, manifestGets)
	}
}
