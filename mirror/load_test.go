package mirror

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/verify"
)

// writeTestArchive saves plans as a directory archive whose catalog alter may change, signed by signers.
func writeTestArchive(t *testing.T, plans []*plan.ImagePlan, alter func(*archive.Catalog), signers ...*verify.SigningKey) (string, *archive.Catalog, ocispec.Descriptor) {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "archive")
	l, err := archive.CreateLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Copy(ctx, plans, &engine.LayoutTarget{Layout: l}, engine.CopyOptions{Retry: mirrortest.Retry}); err != nil {
		t.Fatal(err)
	}
	cat := catalogOf(plans, "test")
	if alter != nil {
		alter(cat)
	}
	catDesc, err := l.WriteCatalog(ctx, cat)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range signers {
		b, err := s.SignDigest(catDesc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.AttachCatalogSignature(ctx, catDesc, b, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	return dir, cat, catDesc
}

const loadTo = "site.example:5000/mirror"

func loadInto(t *testing.T, dir string, o LoadOptions) (*mirrortest.FakeTarget, *LoadResult, error) {
	t.Helper()
	tgt := mirrortest.NewFakeTarget()
	o.Publish.Target, o.Publish.To, o.Publish.Retry = tgt, loadTo, mirrortest.Retry
	res, err := Load(context.Background(), dir, o)
	return tgt, res, err
}

// TestLoadWritesNothingUnverified: load's order, against a target that records every write: an
// archive that fails any check before the push (no valid signature by the pinned key, another key's
// signature, a damaged blob, images that fail verification) writes nothing at all; an honest signed
// archive writes its images, then keeps its catalog with the signature that verified.
func TestLoadWritesNothingUnverified(t *testing.T) {
	keys := t.TempDir()
	transfer, transferPub := stationKey(t, keys, "transfer")
	attacker, _ := stationKey(t, keys, "attacker")
	_, releasePub := stationKey(t, keys, "release")
	_, plans := mirrortest.SamplePlans(t)
	signed, _, catDesc := writeTestArchive(t, plans, nil, transfer)
	unsigned, _, _ := writeTestArchive(t, plans, nil)
	forged, _, _ := writeTestArchive(t, plans, nil, attacker)
	damaged, _, _ := writeTestArchive(t, plans, nil, transfer)
	layer := plans[1].Root.Blobs[1].Digest
	if err := os.WriteFile(filepath.Join(damaged, "blobs", "sha256", layer.Encoded()), []byte(strings.Repeat("x", int(plans[1].Root.Blobs[1].Size))), 0o644); err != nil {
		t.Fatal(err)
	}
	pinned := verify.Anchors{ArchiveKeys: []string{transferPub}}

	for _, tc := range []struct {
		name string
		dir  string
		o    LoadOptions
		want string
	}{
		{"unsigned, archive key pinned", unsigned, LoadOptions{Anchors: pinned}, "is not signed"},
		{"another key's signature", forged, LoadOptions{Anchors: pinned}, "unknown signer"},
		{"a damaged layer, archive key pinned", damaged, LoadOptions{Anchors: pinned}, layer.String()},
		{"a damaged layer, nothing pinned", damaged, LoadOptions{}, layer.String()},
		{"images signed by no pinned key", signed, LoadOptions{Anchors: verify.Anchors{Keys: []string{releasePub}}}, "nothing loaded: 2 image(s) refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tgt, _, err := loadInto(t, tc.dir, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
			if len(tgt.Events) != 0 {
				t.Errorf("written before the check failed:\n  %s", strings.Join(tgt.Events, "\n  "))
			}
		})
	}

	tgt, res, err := loadInto(t, signed, LoadOptions{Anchors: pinned, KeepCatalog: true})
	if err != nil {
		t.Fatal(err)
	}
	tag := plan.CatalogTag(res.Catalog.Created, catDesc.Digest)
	if res.KeptAt != "site/"+plan.CatalogRepository+":"+tag || res.KeptSigs != 1 || tgt.Stores["site/"+plan.CatalogRepository].Tags[tag] != catDesc.Digest {
		t.Errorf("catalog kept at %q with %d signatures; want %s:%s with 1", res.KeptAt, res.KeptSigs, plan.CatalogRepository, tag)
	}
	last := mirrortest.LastIndexOf(tgt.Events, "tag site/team/")
	if first := mirrortest.IndexOf(tgt.Events, "manifest site/"+plan.CatalogRepository); first < last {
		t.Errorf("the catalog was kept before the images were tagged:\n  %s", strings.Join(tgt.Events, "\n  "))
	}
	if !strings.HasPrefix(res.Trust.Source, "archive signed by transfer.pub") {
		t.Errorf("trust %q", res.Trust.Source)
	}
}

// TestLoadKeepsOnlyVerifiedSignatures: with image trust alone pinned, no catalog signature was checked
// against a pinned key, so none is kept or pushed.
func TestLoadKeepsOnlyVerifiedSignatures(t *testing.T) {
	transfer, _ := stationKey(t, t.TempDir(), "transfer")
	_, plans := mirrortest.SamplePlans(t)
	dir, _, _ := writeTestArchive(t, plans, nil, transfer)
	r, err := archive.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	cat, catDesc, _ := r.Catalog(context.Background())
	sigs, err := r.CatalogSignatures(context.Background(), catDesc.Digest)
	r.Close()
	if err != nil || len(sigs) != 1 {
		t.Fatalf("%d signatures: %v", len(sigs), err)
	}
	tgt, res, err := loadInto(t, dir, LoadOptions{Anchors: verify.Anchors{Insecure: true}, KeepCatalog: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.KeptSigs != 0 || slices.ContainsFunc(tgt.Events, func(e string) bool { return strings.Contains(e, sigs[0].Manifest.Digest.String()) }) {
		t.Errorf("an unverified catalog signature was kept (%d):\n  %s", res.KeptSigs, strings.Join(tgt.Events, "\n  "))
	}
	if tgt.Stores["site/"+plan.CatalogRepository].Tags[plan.CatalogTag(cat.Created, catDesc.Digest)] != catDesc.Digest {
		t.Errorf("the catalog itself was not kept")
	}
}

// TestLoadUnsignedCatalogTargets: a catalog's per-image target decides where an image lands only when
// a pinned archive key signed it; otherwise the site's mapping (--to and the source path) does.
func TestLoadUnsignedCatalogTargets(t *testing.T) {
	keys := t.TempDir()
	transfer, transferPub := stationKey(t, keys, "transfer")
	_, plans := mirrortest.SamplePlans(t)
	retarget := func(c *archive.Catalog) { c.Images[1].Target = "team/app" }
	unsigned, _, _ := writeTestArchive(t, plans, retarget)
	signed, _, _ := writeTestArchive(t, plans, retarget, transfer)
	for _, tc := range []struct {
		dir  string
		a    verify.Anchors
		want string
	}{
		{unsigned, verify.Anchors{Insecure: true}, loadTo + "/team/api"},
		{signed, verify.Anchors{ArchiveKeys: []string{transferPub}}, loadTo + "/team/app"},
	} {
		_, res, err := loadInto(t, tc.dir, LoadOptions{Anchors: tc.a, Publish: PublishOptions{DryRun: true}})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Report.Images[1].Repository; got != tc.want {
			t.Errorf("archive key pinned %v: %s lands at %s, want %s", len(tc.a.ArchiveKeys) > 0, res.Report.Images[1].Source, got, tc.want)
		}
	}
}

// TestLoadRefusesRollback: a tag that a kept signed catalog, newer than the archive's, set to another
// digest is not moved back: that image is refused naming both catalogs and their times, the others
// load; --allow-older loads it.
func TestLoadRefusesRollback(t *testing.T) {
	transfer, transferPub := stationKey(t, t.TempDir(), "transfer")
	_, plans := mirrortest.SamplePlans(t)
	dir, cat, catDesc := writeTestArchive(t, plans, nil, transfer)
	newer := KeptCatalog{Digest: digest.FromString("newer catalog"), Created: cat.Created.Add(time.Hour),
		Tags: map[string]digest.Digest{loadTo + "/team/app:1.0": digest.FromString("the fixed image")}}
	older := KeptCatalog{Digest: digest.FromString("older catalog"), Created: cat.Created.Add(-time.Hour),
		Tags: map[string]digest.Digest{loadTo + "/team/api:2.0": digest.FromString("an old image")}}
	kept := func(context.Context) ([]KeptCatalog, error) { return []KeptCatalog{newer, older}, nil }
	o := LoadOptions{Anchors: verify.Anchors{ArchiveKeys: []string{transferPub}}, Kept: kept}

	tgt, res, err := loadInto(t, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	want := "registry.example.com/team/app:1.0 (" + plans[0].Root.Desc.Digest.String() + "): rollback refused: " + loadTo + "/team/app:1.0 was set to " +
		digest.FromString("the fixed image").String() + " by catalog " + newer.Digest.String() + " (created " + newer.Created.UTC().Format(time.RFC3339) +
		"), newer than this archive's catalog " + catDesc.Digest.String() + " (created " + cat.Created.UTC().Format(time.RFC3339) + ")"
	if len(res.Refused) != 1 || !strings.HasPrefix(res.Refused[0], want) || !strings.Contains(res.Refused[0], "--allow-older") {
		t.Errorf("refused %q\nwant %q", res.Refused, want)
	}
	if len(res.Report.Images) != 1 || res.Report.Images[0].Source != plans[1].Source || tgt.Stores["site/team/app"] != nil {
		t.Errorf("the rolled-back image was written, or the other one not: %+v\n  %s", res.Report.Images, strings.Join(tgt.Events, "\n  "))
	}
	// The same digest the newer catalog set is no rollback; --allow-older loads it anyway.
	same := newer
	same.Tags = map[string]digest.Digest{loadTo + "/team/app:1.0": plans[0].Root.Desc.Digest}
	o.Kept = func(context.Context) ([]KeptCatalog, error) { return []KeptCatalog{same}, nil }
	if _, res, err := loadInto(t, dir, o); err != nil || len(res.Refused) != 0 {
		t.Errorf("the tag the newer catalog set to the same digest: %v, refused %q", err, res.Refused)
	}
	o.Kept, o.AllowOlder = kept, true
	if _, res, err := loadInto(t, dir, o); err != nil || len(res.Refused) != 0 || len(res.Report.Images) != 2 {
		t.Errorf("--allow-older: %v, refused %q", err, res.Refused)
	}
	// Every image refused: nothing loaded, a failed check.
	o.AllowOlder = false
	o.Kept = func(context.Context) ([]KeptCatalog, error) {
		n := newer
		n.Tags = map[string]digest.Digest{loadTo + "/team/app:1.0": digest.FromString("x"), loadTo + "/team/api:2.0": digest.FromString("y")}
		return []KeptCatalog{n}, nil
	}
	tgt, _, err = loadInto(t, dir, o)
	if !errors.Is(err, plan.ErrCheckFailed) || !strings.Contains(err.Error(), "nothing loaded: 2 image(s) refused") || len(tgt.Events) != 0 {
		t.Errorf("all rolled back: %v, %d writes", err, len(tgt.Events))
	}
}

// TestLoadPushesOnlyVerifiedImages: with an image key pinned, the image signed by it is loaded and the
// unsigned one is refused, with nothing of it written to the target.
func TestLoadPushesOnlyVerifiedImages(t *testing.T) {
	release, releasePub := stationKey(t, t.TempDir(), "release")
	src, plans := mirrortest.SamplePlans(t)
	app, api := plans[0], plans[1]
	app.Referrers = append(app.Referrers, bundleSignature(t, src, "team/app", app.Root, release))
	dir, _, _ := writeTestArchive(t, plans, nil)
	tgt, res, err := loadInto(t, dir, LoadOptions{Anchors: verify.Anchors{Keys: []string{releasePub}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Refused) != 1 || !strings.HasPrefix(res.Refused[0], "verification failed: "+api.Source) {
		t.Errorf("refused %q, want %s alone", res.Refused, api.Source)
	}
	if len(res.Report.Images) != 1 || res.Report.Images[0].Source != app.Source || res.Report.Images[0].Status != "pushed" {
		t.Errorf("loaded %+v, want %s alone", res.Report.Images, app.Source)
	}
	if tgt.Stores["site/team/api"] != nil || !slices.ContainsFunc(tgt.Events, func(e string) bool { return strings.HasPrefix(e, "tag site/team/app 1.0") }) {
		t.Errorf("writes:\n  %s", strings.Join(tgt.Events, "\n  "))
	}
	if !strings.Contains(res.Trust.Source, "release.pub") {
		t.Errorf("trust %q", res.Trust.Source)
	}
}

// TestRollbackComparesCatalogDigests: a flattened image (its tag names its one platform manifest) is
// compared with the kept catalogs by the image digest both catalogs record, so loading it again after
// a newer catalog that set the same image is no rollback; another image still is.
func TestRollbackComparesCatalogDigests(t *testing.T) {
	_, plans := mirrortest.SamplePlans(t)
	app := plans[0]
	cat := &archive.Catalog{Created: time.Unix(1000, 0), Images: []archive.Image{{Source: app.Source, Digest: app.Root.Desc.Digest}}}
	flat := *app
	flat.Root = app.Root.Children[0] // as --sparse-index=flatten leaves it
	o := &LoadOptions{Publish: PublishOptions{To: loadTo}}
	newer := func(d digest.Digest) []KeptCatalog {
		return []KeptCatalog{{Digest: digest.FromString("newer"), Created: time.Unix(2000, 0), Tags: map[string]digest.Digest{loadTo + "/team/app:1.0": d}}}
	}
	if why, err := o.rollback(&flat, newer(app.Root.Desc.Digest), cat, ocispec.Descriptor{Digest: digest.FromString("this")}); err != nil || why != "" {
		t.Errorf("the same image, flattened: %q, %v; want no rollback", why, err)
	}
	if why, _ := o.rollback(&flat, newer(digest.FromString("another image")), cat, ocispec.Descriptor{Digest: digest.FromString("this")}); !strings.Contains(why, "rollback refused") || !strings.Contains(why, app.Root.Desc.Digest.String()) {
		t.Errorf("another image set by the newer catalog: %q", why)
	}
}
