package engine_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/opencontainers/go-digest"

	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/registry"
)

// TestRegistryTargetAsksUploadsOnARunAgain: an image of small blobs only, copied with the preflight.
// Onto a target that does not hold it (its tag not found) the registry is not asked how it takes
// blobs: no POST of the empty blob, each blob's exists-check the POST that starts its upload. Copied
// again, its tag is found before the first blob: the registry is asked, once (the empty blob POSTed
// with ?digest=), and then, taking blobs in one request, gets nothing else POSTed. Kills
// target_registry.go FetchTagged's `err == nil && !s.t.blobsBegun.Load()` negated to `err != nil`.
func TestRegistryTargetAsksUploadsOnARunAgain(t *testing.T) {
	ctx := context.Background()
	host, _, rec := mirrortest.StartRecordingRegistry(t)
	_, plans := mirrortest.SamplePlans(t)
	api := plans[1] // a config and a layer, both under the probe size
	for _, b := range api.Root.Blobs {
		if b.Size > engine.ProbeSize {
			t.Fatalf("blob %s is %d bytes, over the probe size", b.Digest, b.Size)
		}
	}
	askEmpty := "digest=" + url.QueryEscape(digest.FromBytes(nil).String())
	for run, want := range []struct {
		status     string
		asked      int // POSTs of the empty blob
		otherPOSTs int
	}{{"pushed", 0, len(api.Root.Blobs)}, {"up-to-date", 1, 0}} {
		// A client of its own each run: the answer is kept per host for the life of a client.
		regs, err := registry.New(registry.Options{})
		if err != nil {
			t.Fatal(err)
		}
		tgt := &engine.RegistryTarget{Regs: regs, To: host + "/mirror", Retry: mirrortest.Retry}
		rep, err := engine.Copy(ctx, []*plan.ImagePlan{api}, tgt, engine.CopyOptions{Retry: mirrortest.Retry, Preflight: true})
		if err != nil {
			t.Fatalf("run %d: %v", run+1, err)
		}
		if rep.Images[0].Status != want.status {
			t.Errorf("run %d: %s, want %s", run+1, rep.Images[0].Status, want.status)
		}
		posts := mirrortest.Matching(rec.Requests(), http.MethodPost, "/v2/mirror/team/api/blobs/uploads/")
		asked := mirrortest.Matching(posts, http.MethodPost, askEmpty)
		if len(asked) != want.asked || len(posts)-len(asked) != want.otherPOSTs {
			t.Errorf("run %d: POSTs %q; want %d of the empty blob (the question) and %d others", run+1, posts, want.asked, want.otherPOSTs)
		}
	}
}
