package plan_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
)

// lockedBuffer is a bytes.Buffer a logger may write to from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// The referrers API of a repository is probed once, whatever the number of its images, and the
// probe logged at debug level with the repository and its answer; a Planner without a logger plans
// the same, logging nothing.
func TestPlannerProbesReferrersOncePerRepository(t *testing.T) {
	ctx := context.Background()
	host, regs, _ := mirrortest.StartPagingRegistry(t, 100)
	mirrortest.PushTags(ctx, t, regs, host+"/team/app", "1", "2")
	var imgs []config.Image
	for _, ref := range []string{host + "/team/app:1", host + "/team/app:2"} {
		img, err := config.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	var out lockedBuffer
	log := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, p := range []*plan.Planner{
		{Registries: regs, Retry: mirrortest.Retry, Referrers: config.Referrers{Enabled: true, All: true}, Log: log},
		{Registries: regs, Retry: mirrortest.Retry, Referrers: config.Referrers{Enabled: true, All: true}},
	} {
		for _, img := range imgs {
			ip, err := p.Plan(ctx, img)
			if err != nil || ip.Source != img.String() {
				t.Fatalf("%s (logger %v): %v", img, p.Log != nil, err)
			}
		}
	}
	var probes []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out.b.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == "referrers API probed" {
			probes = append(probes, rec)
		}
	}
	if len(probes) != 1 || probes[0]["level"] != "DEBUG" || probes[0]["repository"] != host+"/team/app" || probes[0]["api"] != false { // go-containerregistry's registry has no referrers API
		t.Errorf("probes logged %v; want one, at debug, naming %s/team/app and api false", probes, host)
	}
}
