package plan_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/registry"
)

// TestPlanContentReadsFromOffset: the content of an image planned from a registry reads a resumed
// blob from its offset (RangeFetcher) with a Range request, not with oras-go's full GET.
func TestPlanContentReadsFromOffset(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var ranges []string
	next := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rg := r.Header.Get("Range"); rg != "" {
			mu.Lock()
			ranges = append(ranges, rg)
			mu.Unlock()
			r.Header.Del("Range") // go-containerregistry's registry refuses open ranges: it answers whole
		}
		next.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	regs, err := registry.New(registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	mirrortest.PushTags(ctx, t, regs, host+"/team/app", "1.0")
	img, err := config.ParseReference(host + "/team/app:1.0")
	if err != nil {
		t.Fatal(err)
	}
	ip, err := (&plan.Planner{Registries: regs, Retry: mirrortest.Retry}).Plan(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	rf, ok := ip.Content.(engine.RangeFetcher)
	if !ok {
		t.Fatalf("content %T of a registry plan cannot read from an offset", ip.Content)
	}
	cfg := ip.Root.Blobs[0]
	whole, err := plan.FetchManifest(ctx, ip.Content, cfg) // read whole, checked against its digest
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rf.FetchFrom(ctx, cfg, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rest, err := io.ReadAll(rc)
	if err != nil || string(rest) != string(whole[10:]) {
		t.Errorf("from offset 10: %q, %v; want %q", rest, err, whole[10:])
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ranges) != 1 || ranges[0] != "bytes=10-" {
		t.Errorf("Range requests %q, want one bytes=10-", ranges)
	}
}
