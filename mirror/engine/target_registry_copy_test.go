package engine_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"airlock.dev/airlock/mirror"
	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
)

// TestCopyIntoRegistry: the sample images copied into a registry (go-containerregistry's, which has
// no referrers API: the tag schema is used) land whole, each under its tag, the signatures attached; the diff then finds
// them all; a run again writes nothing. An image with a layer over the probe size makes the target
// ask how the registry takes blobs first.
func TestCopyIntoRegistry(t *testing.T) {
	ctx := context.Background()
	host, regs, _ := mirrortest.StartPagingRegistry(t, 100)
	src, plans := mirrortest.SamplePlans(t)
	big := mirrortest.Plan(t, src, "registry.example.com/team/big:3.0", mirrortest.ImageNode(t, src, "team/big", engine.ProbeSize+10, 100))
	plans = append(plans, big)
	to := host + "/mirror"
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tgt := &engine.RegistryTarget{Regs: regs, To: to, Retry: mirrortest.Retry, Log: log}
	rep, err := engine.Copy(ctx, plans, tgt, engine.CopyOptions{Retry: mirrortest.Retry, Preflight: true, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	for i, ir := range rep.Images {
		if ir.Status != "pushed" || ir.Error != "" {
			t.Errorf("image %d %s: %s %q", i, ir.Source, ir.Status, ir.Error)
		}
	}
	if rep.Images[0].ReferrersBy != "tag-schema" || rep.ReferrerIndexes == 0 {
		t.Errorf("referrers attached by %q (%d indexes), want tag-schema indexes", rep.Images[0].ReferrersBy, rep.ReferrerIndexes)
	}
	if rep.Tags < 3 || rep.Verified == 0 {
		t.Errorf("report %+v: want the three tags written and manifests read back", rep)
	}
	if v := tgt.Monolithic(); v == 0 {
		t.Error("the registry was not asked how it takes blobs, with a blob over the probe size")
	}

	entries, err := mirror.DiffRegistry(ctx, plans, regs, to, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Status != mirror.DiffOK || len(e.Missing) != 0 {
			t.Errorf("after the copy, %s: %s, missing %q", e.Source, e.Status, e.Missing)
		}
	}
	// The cosign-tag signature is under its tag too.
	repo, err := regs.Repository(to + "/team/app")
	if err != nil {
		t.Fatal(err)
	}
	sigAmd := plans[0].Referrers[1]
	if d, err := repo.Resolve(ctx, sigAmd.Referrer.Tag); err != nil || d.Digest != sigAmd.Desc.Digest {
		t.Errorf("cosign tag %s: %v, %v; want %s", sigAmd.Referrer.Tag, d.Digest, err, sigAmd.Desc.Digest)
	}

	// A run again: up to date, nothing written.
	rep, err = engine.Copy(ctx, plans, &engine.RegistryTarget{Regs: regs, To: to, Retry: mirrortest.Retry}, engine.CopyOptions{Retry: mirrortest.Retry, Preflight: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, ir := range rep.Images {
		if ir.Status != "up-to-date" {
			t.Errorf("run again, image %d %s: %s %q", i, ir.Source, ir.Status, ir.Error)
		}
	}
	if rep.Blobs.Pushed != 0 || rep.Manifests.Pushed != 0 || rep.Tags != 0 {
		t.Errorf("run again wrote: %+v", rep)
	}

	// Another repository of the same registry (a per-image target).
	moved := *plans[1]
	moved.Image.Target = "other/api"
	rep, err = engine.Copy(ctx, []*plan.ImagePlan{&moved}, &engine.RegistryTarget{Regs: regs, To: to, Retry: mirrortest.Retry}, engine.CopyOptions{Retry: mirrortest.Retry})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Images[0].Status != "pushed" || rep.Images[0].Target != to+"/other/api:2.0" {
		t.Errorf("into another repository: %s to %s", rep.Images[0].Status, rep.Images[0].Target)
	}
	if entries, err := mirror.DiffRegistry(ctx, []*plan.ImagePlan{&moved}, regs, to, false); err != nil || entries[0].Status != mirror.DiffOK {
		t.Errorf("diff of the per-image target: %+v, %v", entries, err)
	}
}

// TestCopyIntoRegistryMountsShared: an image going to two repositories of one registry in one run
// sends each blob once: the second repository mounts it from the first (or, where the registry
// declines, uploads it); both land whole.
func TestCopyIntoRegistryMountsShared(t *testing.T) {
	ctx := context.Background()
	host, regs, _ := mirrortest.StartPagingRegistry(t, 100)
	_, plans := mirrortest.SamplePlans(t)
	api := plans[1]
	other := *api
	other.Image.Target = "other/api"
	to := host + "/mirror"
	rep, err := engine.Copy(ctx, []*plan.ImagePlan{api, &other}, &engine.RegistryTarget{Regs: regs, To: to, Retry: mirrortest.Retry}, engine.CopyOptions{Retry: mirrortest.Retry, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	blobs := len(api.Root.Blobs)
	if rep.Blobs.Mounted+rep.Blobs.Pushed != 2*blobs || rep.Blobs.Pushed < blobs {
		t.Errorf("blobs %+v: want %d pushed and the other %d mounted or pushed", rep.Blobs, blobs, blobs)
	}
	entries, err := mirror.DiffRegistry(ctx, []*plan.ImagePlan{api, &other}, regs, to, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Status != mirror.DiffOK {
			t.Errorf("%s: %s, missing %q", e.Target, e.Status, e.Missing)
		}
	}
}
