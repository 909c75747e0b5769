package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
)

// A first copy counts each blob and the manifest as pushed, with their bytes; a second copy of the
// same image into the store that now holds it all (asked one by one) pushes nothing and counts each
// as skipped, with its bytes.
func TestCopyCountsWhatItPushesAndSkips(t *testing.T) {
	_, plans := mirrortest.SamplePlans(t)
	ip := plans[1] // team/api:2.0, a config and two layers
	var bytes int64
	for _, b := range ip.Root.Blobs {
		bytes += b.Size
	}
	tgt := mirrortest.NewFakeTarget()
	opts := engine.CopyOptions{Retry: mirrortest.Retry}
	rep, err := engine.Copy(context.Background(), []*plan.ImagePlan{ip}, tgt, opts)
	if err != nil || rep.Blobs.Pushed != 3 || rep.Blobs.Skipped != 0 || rep.Blobs.BytesPushed != bytes {
		t.Fatalf("first copy: %+v, %v; want 3 blobs, %d bytes pushed", rep.Blobs, err, bytes)
	}
	if m := rep.Manifests; m.Pushed != 1 || m.BytesPushed != ip.Root.Desc.Size || m.Skipped != 0 {
		t.Errorf("first copy: manifests %+v; want 1 (%d bytes) pushed", m, ip.Root.Desc.Size)
	}
	rep, err = engine.Copy(context.Background(), []*plan.ImagePlan{ip}, tgt, opts)
	if err != nil || rep.Blobs.Pushed != 0 || rep.Blobs.Skipped != 3 || rep.Blobs.BytesSkipped != bytes || rep.Blobs.BytesPushed != 0 {
		t.Errorf("second copy: %+v, %v; want 3 blobs, %d bytes skipped, none pushed", rep.Blobs, err, bytes)
	}
	if m := rep.Manifests; m.Skipped != 1 || m.BytesSkipped != ip.Root.Desc.Size || m.Pushed != 0 {
		t.Errorf("second copy: manifests %+v; want 1 (%d bytes) skipped, none pushed", m, ip.Root.Desc.Size)
	}

	// team/app:1.0: an index, its two platform manifests and two referrers, pushed by digest (the
	// count of pushManifest), then each found there.
	ip = plans[0]
	n, size := len(ip.Nodes()), int64(0)
	for _, m := range ip.Nodes() {
		size += m.Desc.Size
	}
	rep, err = engine.Copy(context.Background(), []*plan.ImagePlan{ip}, tgt, opts)
	if m := rep.Manifests; err != nil || m.Pushed != n || m.BytesPushed != size || m.Skipped != 0 {
		t.Errorf("first copy of an index: manifests %+v, %v; want %d (%d bytes) pushed", m, err, n, size)
	}
	rep, err = engine.Copy(context.Background(), []*plan.ImagePlan{ip}, tgt, opts)
	if m := rep.Manifests; err != nil || m.Skipped != n || m.BytesSkipped != size || m.Pushed != 0 {
		t.Errorf("second copy of an index: manifests %+v, %v; want %d (%d bytes) skipped", m, err, n, size)
	}
}

// logBuffer collects a JSON logger's records, from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records returns the records whose message is msg.
func (l *logBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// A blob the store refuses is logged as an error naming it, its store and the reason; blobs stopped
// because a source blob was altered are not (the run says why it stopped, once).
func TestCopyLogsAFailedBlob(t *testing.T) {
	_, plans := mirrortest.SamplePlans(t)
	ip := plans[1]
	refused := ip.Root.Blobs[1]
	var out logBuffer
	tgt := mirrortest.NewFakeTarget()
	tgt.FailBlob = refused.Digest
	opts := engine.CopyOptions{Retry: mirrortest.Retry, Concurrency: 1, Log: slog.New(slog.NewJSONHandler(&out, nil))}
	if _, err := engine.Copy(context.Background(), []*plan.ImagePlan{ip}, tgt, opts); err == nil || !strings.Contains(err.Error(), "quota exceeded") {
		t.Fatalf("copy: %v; want the refusal", err)
	}
	recs := out.records(t, "blob failed")
	if len(recs) != 1 || recs[0]["level"] != "ERROR" || recs[0]["digest"] != refused.Digest.String() || recs[0]["target"] != "site/team/api" ||
		!strings.Contains(recs[0]["err"].(string), "quota exceeded") {
		t.Errorf("logged %v; want one error naming %s in site/team/api and the refusal", recs, refused.Digest)
	}

	src, plans := mirrortest.SamplePlans(t)
	src.Alter = plans[1].Root.Blobs[1].Digest
	var altered logBuffer
	opts.Log = slog.New(slog.NewJSONHandler(&altered, nil))
	if _, err := engine.Copy(context.Background(), plans[1:], mirrortest.NewFakeTarget(), opts); err == nil {
		t.Fatal("copy of an altered blob: no error")
	}
	if recs := altered.records(t, "blob failed"); len(recs) != 0 {
		t.Errorf("an altered source blob logged %v as failed blobs; want none", recs)
	}
}
