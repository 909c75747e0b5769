package engine_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
)

func at(t *testing.T, events []string, store string, n *plan.Node) int {
	t.Helper()
	i := mirrortest.IndexOf(events, "manifest "+store+" "+n.Desc.Digest.String())
	if i < 0 {
		t.Fatalf("manifest %s never pushed to %s; events:\n%s", n.Desc.Digest, store, strings.Join(events, "\n"))
	}
	return i
}

func TestCopyOrder(t *testing.T) {
	_, plans := mirrortest.SamplePlans(t)
	tgt := mirrortest.NewFakeTarget()
	rep, err := engine.Copy(context.Background(), plans, tgt, engine.CopyOptions{Retry: mirrortest.Retry, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	ev := tgt.Events
	if last, first := mirrortest.LastIndexOf(ev, "blob "), mirrortest.IndexOf(ev, "manifest "); last > first {
		t.Errorf("blob written at %d, after the first manifest at %d:\n%s", last, first, strings.Join(ev, "\n"))
	}
	for _, p := range plans {
		store := "site/" + p.Image.Repository
		for _, n := range p.Nodes() {
			for _, c := range n.Children {
				if at(t, ev, store, c) > at(t, ev, store, n) {
					t.Errorf("index %s pushed before its child %s", n.Desc.Digest, c.Desc.Digest)
				}
			}
		}
		for _, r := range p.Referrers {
			subject := slices.IndexFunc(p.Nodes(), func(n *plan.Node) bool { return n.Desc.Digest == r.Referrer.Subject })
			if at(t, ev, store, r) < at(t, ev, store, p.Nodes()[subject]) {
				t.Errorf("referrer %s pushed before its subject %s", r.Desc.Digest, r.Referrer.Subject)
			}
		}
		lastManifest := mirrortest.LastIndexOf(ev, "manifest "+store)
		if len(p.Referrers) > 0 {
			if a := mirrortest.IndexOf(ev, "attach "+store); a < lastManifest {
				t.Errorf("referrers of %s attached at %d, before its last manifest at %d", p.Source, a, lastManifest)
			}
		}
		if first := mirrortest.IndexOf(ev, "tag "+store); first < lastManifest || first < mirrortest.IndexOf(ev, "attach "+store) {
			t.Errorf("%s tagged at %d, before its last manifest (%d) or its referrers index:\n%s", p.Source, first, lastManifest, strings.Join(ev, "\n"))
		}
	}
	if rep.Tags != 3 || rep.Verified != 5+1 || rep.Blobs.Pushed != 12 || rep.ReferrerIndexes != 1 {
		t.Errorf("report: %d tags, %d verified, %d blobs pushed, %d indexes; want 3, 6, 12, 1", rep.Tags, rep.Verified, rep.Blobs.Pushed, rep.ReferrerIndexes)
	}
	for _, ir := range rep.Images {
		if ir.Status != "pushed" {
			t.Errorf("%s: %s %s", ir.Source, ir.Status, ir.Error)
		}
	}
	// Again: everything is there, nothing is written.
	before := len(tgt.Events)
	rep, err = engine.Copy(context.Background(), plans, tgt, engine.CopyOptions{Retry: mirrortest.Retry})
	if err != nil || len(tgt.Events) != before || rep.Images[0].Status != "up-to-date" {
		t.Errorf("second copy: err %v, %d more writes, status %s", err, len(tgt.Events)-before, rep.Images[0].Status)
	}
}

func TestCopyFailedBlobFailsOnlyItsImages(t *testing.T) {
	_, plans := mirrortest.SamplePlans(t)
	tgt := mirrortest.NewFakeTarget()
	tgt.FailBlob = plans[1].Root.Blobs[1].Digest // a layer of team/api only
	rep, err := engine.Copy(context.Background(), plans, tgt, engine.CopyOptions{Retry: mirrortest.Retry})
	if err == nil || !strings.Contains(err.Error(), "team/api") || strings.Contains(err.Error(), "team/app") {
		t.Errorf("error: %v", err)
	}
	if app, api := rep.Images[0], rep.Images[1]; app.Status != "pushed" || api.Status != "failed" || !strings.Contains(api.Error, tgt.FailBlob.String()) {
		t.Errorf("statuses: app %s, api %s (%s)", app.Status, api.Status, api.Error)
	}
	if i := mirrortest.IndexOf(tgt.Events, "manifest site/team/api"); i >= 0 {
		t.Errorf("a manifest of the failed image was pushed: %s", tgt.Events[i])
	}
	if i := mirrortest.IndexOf(tgt.Events, "tag site/team/api"); i >= 0 {
		t.Errorf("the failed image was tagged: %s", tgt.Events[i])
	}
	if rep.Blobs.Failed != 1 {
		t.Errorf("%d blobs failed, want 1", rep.Blobs.Failed)
	}
}

func TestCopyResumesPartialBlob(t *testing.T) {
	src, plans := mirrortest.SamplePlans(t)
	plans = plans[1:]
	layer := plans[0].Root.Blobs[1] // 3000 bytes
	tgt := mirrortest.NewFakeTarget()
	tgt.Partial[layer.Digest] = src.Blobs[layer.Digest][:2000]
	rep, err := engine.Copy(context.Background(), plans, tgt, engine.CopyOptions{Retry: mirrortest.Retry})
	if err != nil {
		t.Fatal(err)
	}
	var want int64 = 1000 // the rest of the layer
	for _, b := range plans[0].Root.Blobs {
		if b.Digest != layer.Digest {
			want += b.Size
		}
	}
	if rep.Resumed != 1 || rep.BytesFetched != want {
		t.Errorf("resumed %d, fetched %d bytes; want 1 and %d", rep.Resumed, rep.BytesFetched, want)
	}
	if src.Served != want {
		t.Errorf("the source served %d blob bytes, want %d", src.Served, want)
	}
}

func TestCopyStopsOnAlteredSourceBlob(t *testing.T) {
	src, plans := mirrortest.SamplePlans(t)
	src.Alter = plans[0].Root.Children[1].Blobs[1].Digest // a layer of the arm64 image of team/app
	tgt := mirrortest.NewFakeTarget()
	rep, err := engine.Copy(context.Background(), plans, tgt, engine.CopyOptions{Retry: mirrortest.Retry, Concurrency: 1})
	var ce *archive.CheckError
	if !errors.As(err, &ce) || ce.Digest != src.Alter || !slices.Equal(ce.Images, []string{plans[0].Source}) {
		t.Fatalf("error: %v", err)
	}
	for _, e := range tgt.Events {
		if !strings.HasPrefix(e, "blob ") {
			t.Errorf("written after an altered blob: %s", e)
		}
	}
	for _, ir := range rep.Images {
		if ir.Status != "failed" {
			t.Errorf("%s: %s, want failed (the whole run stops)", ir.Source, ir.Status)
		}
	}
}
