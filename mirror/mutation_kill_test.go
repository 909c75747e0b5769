package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/memory"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/registry"
	"airlock.dev/airlock/verify"
)

// Tests written from an honest mutation run of the files load, rollback, preflight, verifyflow and
// referrers_catalog (issue 20): each asserts a value or a message that a LIVED or NOT COVERED mutant
// changed.

// startKeptRegistry starts go-containerregistry's in-process registry (it has the referrers API).
func startKeptRegistry(t *testing.T) (string, *registry.Registries) {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	regs, err := registry.New(registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(srv.URL, "http://"), regs
}

// loadOnRegistry loads dir into the registry at host (under mirror/), reading the catalogs kept there.
func loadOnRegistry(t *testing.T, dir, host string, regs *registry.Registries, o LoadOptions) (*LoadResult, []string, error) {
	t.Helper()
	var warned []string
	o.Regs, o.Publish.To, o.Publish.Retry = regs, host+"/mirror", mirrortest.Retry
	o.Warn = func(s string) { warned = append(warned, s) }
	res, err := Load(context.Background(), dir, o)
	return res, warned, err
}

// TestLoadReadsKeptCatalogsOnRegistry: the record a rollback is found in, read from a real registry.
// A first load finds nothing kept (the catalog repository does not exist yet: no error). A newer
// archive signed by the pinned key, kept, sets team/api:2.0; an unsigned one, newer still, kept with
// no signature, sets team/app:1.0. The older archive is then refused team/api:2.0 alone, naming the
// newer signed catalog; team/app:1.0 loads, since an unsigned kept catalog is no one's word.
func TestLoadReadsKeptCatalogsOnRegistry(t *testing.T) {
	keys := t.TempDir()
	transfer, transferPub := stationKey(t, keys, "transfer")
	host, regs := startKeptRegistry(t)
	t0 := time.Now().UTC().Truncate(time.Second)
	at := func(d time.Duration) func(*archive.Catalog) {
		return func(c *archive.Catalog) { c.Created = t0.Add(d) }
	}
	_, plans := mirrortest.SamplePlans(t)
	older, olderCat, olderDesc := writeTestArchive(t, plans, at(0), transfer)

	src2 := &mirrortest.FakeSource{Blobs: map[digest.Digest][]byte{}}
	api2 := mirrortest.Plan(t, src2, "registry.example.com/team/api:2.0", mirrortest.ImageNode(t, src2, "team/api", 3001, 11))
	newer, _, newerDesc := writeTestArchive(t, []*plan.ImagePlan{api2}, at(time.Hour), transfer)
	src3 := &mirrortest.FakeSource{Blobs: map[digest.Digest][]byte{}}
	app3 := mirrortest.Plan(t, src3, "registry.example.com/team/app:1.0", mirrortest.ImageNode(t, src3, "team/app", 4001, 12))
	unsigned, _, unsignedDesc := writeTestArchive(t, []*plan.ImagePlan{app3}, at(2*time.Hour))

	pinned := verify.Anchors{ArchiveKeys: []string{transferPub}}
	// Nothing kept yet: the catalog repository is not there, which is no error.
	res, warned, err := loadOnRegistry(t, newer, host, regs, LoadOptions{Anchors: pinned, KeepCatalog: true})
	if err != nil || len(res.Refused) != 0 || len(warned) != 0 {
		t.Fatalf("first load: %v, refused %q, warned %q", err, res.Refused, warned)
	}
	if want := host + "/mirror/" + plan.CatalogRepository + ":" + plan.CatalogTag(t0.Add(time.Hour), newerDesc.Digest); res.KeptAt != want || res.KeptSigs != 1 {
		t.Fatalf("kept at %q with %d signatures, want %s with 1", res.KeptAt, res.KeptSigs, want)
	}
	res, _, err = loadOnRegistry(t, unsigned, host, regs, LoadOptions{Anchors: verify.Anchors{Insecure: true}, KeepCatalog: true})
	if err != nil || res.KeptSigs != 0 {
		t.Fatalf("unsigned load: %v, kept %d signatures", err, res.KeptSigs)
	}

	// Two manifests under tags a kept catalog would have: one of exactly the size limit (read, and
	// unsigned: left out silently), one a byte over (not read: left out with a warning); and the
	// latter again under a tag no kept catalog has (not looked at).
	pushPadded := func(size int, tags ...string) ocispec.Descriptor {
		head := `{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageManifest + `","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[],"annotations":{"pad":"`
		b := []byte(head + strings.Repeat("x", size-len(head)-len(`"}}`)) + `"}}`)
		d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(b), Size: int64(len(b))}
		for _, tag := range tags {
			putManifest(t, host, "mirror/"+plan.CatalogRepository, tag, d.MediaType, b)
		}
		return d
	}
	pushPadded(archive.MaxManifestSize, "20260101T000000Z")
	over := pushPadded(archive.MaxManifestSize+1, "20260101T000001Z", "latest")
	wantWarned := []string{"load: kept catalog " + host + "/mirror/" + plan.CatalogRepository + ":20260101T000001Z not used to find rollbacks: " +
		over.Digest.String() + " is 4194305 bytes, over the 4194304-byte limit"}

	o := LoadOptions{Anchors: pinned}
	warned = nil
	ro := o.withRegistry(host, regs)
	ro.Warn = func(s string) { warned = append(warned, s) }
	kept, err := ro.readKept(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(warned, wantWarned) {
		t.Errorf("warned %q\nwant %q", warned, wantWarned)
	}
	if len(kept) != 1 || kept[0].Digest != newerDesc.Digest || !kept[0].Created.Equal(t0.Add(time.Hour)) ||
		len(kept[0].Tags) != 1 || kept[0].Tags[host+"/mirror/team/api:2.0"] != api2.Root.Desc.Digest {
		t.Fatalf("kept catalogs %+v; want only %s (the unsigned %s is no one's word), setting team/api:2.0 to %s", kept, newerDesc.Digest, unsignedDesc.Digest, api2.Root.Desc.Digest)
	}

	res, warned, err = loadOnRegistry(t, older, host, regs, o)
	if err != nil {
		t.Fatal(err)
	}
	want := plans[1].Source + " (" + plans[1].Root.Desc.Digest.String() + "): rollback refused: " + host + "/mirror/team/api:2.0 was set to " +
		api2.Root.Desc.Digest.String() + " by catalog " + newerDesc.Digest.String() + " (created " + t0.Add(time.Hour).Format(time.RFC3339) +
		"), newer than this archive's catalog " + olderDesc.Digest.String() + " (created " + olderCat.Created.Format(time.RFC3339) + ")"
	if len(res.Refused) != 1 || !strings.HasPrefix(res.Refused[0], want) {
		t.Errorf("refused %q\nwant %q", res.Refused, want)
	}
	if len(res.Report.Images) != 1 || res.Report.Images[0].Source != plans[0].Source || res.Report.Images[0].Status != "pushed" || !slices.Equal(warned, wantWarned) {
		t.Errorf("loaded %+v, warned %q; want %s alone", res.Report.Images, warned, plans[0].Source)
	}
}

// withRegistry is o set to load into the registry at host.
func (o LoadOptions) withRegistry(host string, regs *registry.Registries) *LoadOptions {
	o.Regs, o.Publish.To, o.Publish.Retry = regs, host+"/mirror", mirrortest.Retry
	return &o
}

// TestFetchJSONLimit: a kept catalog's manifest of exactly the limit is read; one byte over is refused
// before it is fetched, the sizes named.
func TestFetchJSONLimit(t *testing.T) {
	ctx := context.Background()
	store := memory.New()
	b := []byte(`{"schemaVersion":2}`)
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if err := store.Push(ctx, desc, strings.NewReader(string(b))); err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := fetchJSON(ctx, store, desc, int64(len(b)), &m); err != nil || m.SchemaVersion != 2 {
		t.Errorf("at the limit: %v, schemaVersion %d", err, m.SchemaVersion)
	}
	err := fetchJSON(ctx, store, desc, int64(len(b))-1, &m)
	if want := desc.Digest.String() + " is 19 bytes, over the 18-byte limit"; err == nil || err.Error() != want {
		t.Errorf("one byte over: %v, want %q", err, want)
	}
}

// TestNoRollbackWithoutRecord: with a Target and no Kept, there is no record to read, and every plan
// goes on; a record that cannot be read stops the load, naming where it was read.
func TestNoRollbackWithoutRecord(t *testing.T) {
	_, plans := mirrortest.SamplePlans(t)
	cat := &archive.Catalog{Created: time.Now()}
	o := &LoadOptions{Publish: PublishOptions{Target: mirrortest.NewFakeTarget()}}
	pass, refused, err := o.noRollback(context.Background(), plans, cat, ocispec.Descriptor{})
	if err != nil || len(pass) != 2 || refused != nil {
		t.Errorf("no record: %d passed, refused %q, %v", len(pass), refused, err)
	}
	o.Publish.To = loadTo + "/"
	o.Kept = func(context.Context) ([]KeptCatalog, error) { return nil, errors.New("registry down") }
	_, _, err = o.noRollback(context.Background(), plans, cat, ocispec.Descriptor{})
	if want := "read the catalogs kept at " + loadTo + "/" + plan.CatalogRepository + " (the record a rollback is found in): registry down"; err == nil || err.Error() != want {
		t.Errorf("unreadable record: %v, want %q", err, want)
	}
}

// TestRollbackPicksNewest: of two kept catalogs newer than the archive's that set the tag, the newest
// is named; a catalog created at the same second as the archive's is not newer; the archive's own
// catalog, kept before, is not a rollback of itself; an image without a tag is never one.
func TestRollbackPicksNewest(t *testing.T) {
	_, plans := mirrortest.SamplePlans(t)
	p := plans[1]
	cat := &archive.Catalog{Created: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	catDesc := ocispec.Descriptor{Digest: digest.FromString("this catalog")}
	ref := loadTo + "/team/api:2.0"
	keptAt := func(name string, d time.Duration, set string) KeptCatalog {
		return KeptCatalog{Digest: digest.FromString(name), Created: cat.Created.Add(d), Tags: map[string]digest.Digest{ref: digest.FromString(set)}}
	}
	o := &LoadOptions{Publish: PublishOptions{To: loadTo}}
	for _, tc := range []struct {
		name string
		kept []KeptCatalog
		want string // the catalog named, "" for none
	}{
		{"the newest of two", []KeptCatalog{keptAt("a", time.Hour, "x"), keptAt("b", 2*time.Hour, "y"), keptAt("c", 30*time.Minute, "z")}, "b"},
		{"the newest first", []KeptCatalog{keptAt("b", 2*time.Hour, "y"), keptAt("a", time.Hour, "x")}, "b"},
		{"created the same second", []KeptCatalog{keptAt("same", 0, "x")}, ""},
		{"one second newer", []KeptCatalog{keptAt("later", time.Second, "x")}, "later"},
		{"the archive's own catalog", []KeptCatalog{{Digest: catDesc.Digest, Created: cat.Created.Add(time.Hour), Tags: map[string]digest.Digest{ref: digest.FromString("x")}}}, ""},
		{"another tag", []KeptCatalog{{Digest: digest.FromString("other"), Created: cat.Created.Add(time.Hour), Tags: map[string]digest.Digest{ref + "1": digest.FromString("x")}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			why, err := o.rollback(p, tc.kept, cat, catDesc)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if why != "" {
					t.Errorf("refused: %s", why)
				}
				return
			}
			if !strings.Contains(why, "by catalog "+digest.FromString(tc.want).String()+" ") {
				t.Errorf("got %q, want catalog %s named", why, tc.want)
			}
		})
	}
	untagged := *p
	untagged.Image.Tag = ""
	if why, err := o.rollback(&untagged, []KeptCatalog{keptAt("a", time.Hour, "x")}, cat, catDesc); why != "" || err != nil {
		t.Errorf("untagged: %q, %v", why, err)
	}
}

// TestVerifyTargetArchive: verify of a directory archive hashes every byte (a damaged layer is
// named), refuses an archive no pinned key signed as a failed check, and verifies each image; a
// registry target needs the archive or image set that names its images.
func TestVerifyTargetArchive(t *testing.T) {
	ctx := context.Background()
	keys := t.TempDir()
	transfer, transferPub := stationKey(t, keys, "transfer")
	_, plans := mirrortest.SamplePlans(t)
	signed, _, _ := writeTestArchive(t, plans, nil, transfer)
	unsigned, _, _ := writeTestArchive(t, plans, nil)
	damaged, _, _ := writeTestArchive(t, plans, nil, transfer)
	layer := plans[1].Root.Blobs[1]
	if err := os.WriteFile(filepath.Join(damaged, "blobs", "sha256", layer.Digest.Encoded()), []byte(strings.Repeat("x", int(layer.Size))), 0o644); err != nil {
		t.Fatal(err)
	}
	pinned := verify.Anchors{ArchiveKeys: []string{transferPub}}

	results, trust, err := VerifyTarget(ctx, signed, VerifyOptions{Anchors: pinned})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 || results[0].Source != plans[0].Source || results[1].Source != plans[1].Source || results[1].Digest != plans[1].Root.Desc.Digest {
		t.Errorf("results %+v", results)
	}
	if trust == nil || !strings.HasPrefix(trust.Source, "archive signed by transfer.pub") {
		t.Errorf("trust %+v", trust)
	}

	_, _, err = VerifyTarget(ctx, unsigned, VerifyOptions{Anchors: pinned})
	if !errors.Is(err, plan.ErrCheckFailed) || !strings.Contains(err.Error(), "is not signed") {
		t.Errorf("unsigned: %v, want a failed check: not signed", err)
	}
	_, _, err = VerifyTarget(ctx, damaged, VerifyOptions{Anchors: pinned})
	if err == nil || !strings.Contains(err.Error(), layer.Digest.String()) {
		t.Errorf("damaged layer: %v, want %s named", err, layer.Digest)
	}
	var warned []string
	if _, _, err = VerifyTarget(ctx, unsigned, VerifyOptions{Anchors: verify.Anchors{Insecure: true}, Warn: func(s string) { warned = append(warned, s) }}); err != nil {
		t.Errorf("insecure: %v", err)
	}
	if !slices.Equal(warned, []string{verify.InsecureWarning}) {
		t.Errorf("insecure: warned %q, want the insecure warning", warned)
	}

	_, _, err = VerifyTarget(ctx, "site.example:5000/mirror", VerifyOptions{Anchors: pinned})
	if want := "verify site.example:5000/mirror: name the images with --archive ARCHIVE or -c IMAGESET"; err == nil || err.Error() != want {
		t.Errorf("registry without images named: %v, want %q", err, want)
	}
	if _, _, err = VerifyTarget(ctx, filepath.Join(t.TempDir(), "missing"), VerifyOptions{}); err == nil {
		t.Errorf("a missing archive verified")
	}
}

// TestVerifyTargetRegistry: a registry target whose images an archive or an image set names is
// verified there; a registry that cannot be reached, or an image missing from it, fails.
func TestVerifyTargetRegistry(t *testing.T) {
	ctx := context.Background()
	transfer, transferPub := stationKey(t, t.TempDir(), "transfer")
	host, regs := startKeptRegistry(t)
	_, plans := mirrortest.SamplePlans(t)
	dir, _, _ := writeTestArchive(t, plans, nil, transfer)
	pinned := verify.Anchors{ArchiveKeys: []string{transferPub}}
	if _, _, err := loadOnRegistry(t, dir, host, regs, LoadOptions{Anchors: pinned}); err != nil {
		t.Fatal(err)
	}
	target := host + "/mirror"
	results, _, err := VerifyTarget(ctx, target, VerifyOptions{Anchors: pinned, Archive: dir, Registries: func() (*registry.Registries, error) { return regs, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 || results[0].Digest != plans[0].Root.Desc.Digest || results[1].Digest != plans[1].Root.Desc.Digest {
		t.Errorf("results %+v", results)
	}
	_, _, err = VerifyTarget(ctx, target, VerifyOptions{Anchors: pinned, Archive: dir, Registries: func() (*registry.Registries, error) { return nil, errors.New("no client") }})
	if err == nil || err.Error() != "no client" {
		t.Errorf("no client: %v", err)
	}
	_, _, err = VerifyTarget(ctx, host+"/elsewhere", VerifyOptions{Anchors: pinned, Archive: dir, Registries: func() (*registry.Registries, error) { return regs, nil }})
	if err == nil {
		t.Errorf("images missing from the registry verified")
	}

	set := filepath.Join(t.TempDir(), "imageset.yaml")
	if err := os.WriteFile(set, []byte("apiVersion: airlock.dev/v1alpha1\nkind: ImageSet\nimages:\n  - ref: registry.example.com/team/api:2.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	results, trust, err := VerifyTarget(ctx, target, VerifyOptions{Anchors: verify.Anchors{Insecure: true}, ImageSet: set, Registries: func() (*registry.Registries, error) { return regs, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].Digest != plans[1].Root.Desc.Digest || trust == nil {
		t.Errorf("image set: results %+v, trust %v", results, trust)
	}
	if _, _, err := VerifyTarget(ctx, target, VerifyOptions{ImageSet: filepath.Join(t.TempDir(), "none.yaml")}); err == nil {
		t.Errorf("a missing image set verified")
	}
}

// putManifest PUTs b as a manifest at host/repo:ref with a plain request: the registry client refuses
// to push one over the size limit.
func putManifest(t *testing.T, host, repo, ref, mediaType string, b []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, "http://"+host+"/v2/"+repo+"/manifests/"+ref, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT %s:%s: %s", repo, ref, resp.Status)
	}
}

// TestReadKeptSignatureSizeLimit: a kept catalog's signature is read when its manifest and its bundle
// are each exactly the size limit; a signature manifest one byte over is not read, and a catalog with
// only that signature is no one's word.
func TestReadKeptSignatureSizeLimit(t *testing.T) {
	ctx := context.Background()
	transfer, transferPub := stationKey(t, t.TempDir(), "transfer")
	host, regs := startKeptRegistry(t)
	t0 := time.Now().UTC().Truncate(time.Second)
	at := func(d time.Duration) func(*archive.Catalog) {
		return func(c *archive.Catalog) { c.Created = t0.Add(d) }
	}
	src := &mirrortest.FakeSource{Blobs: map[digest.Digest][]byte{}}
	api := mirrortest.Plan(t, src, "registry.example.com/team/api:2.0", mirrortest.ImageNode(t, src, "team/api", 3001, 11))
	app := mirrortest.Plan(t, src, "registry.example.com/team/app:1.0", mirrortest.ImageNode(t, src, "team/app", 4001, 12))
	atLimit, _, atLimitDesc := writeTestArchive(t, []*plan.ImagePlan{api}, at(time.Hour), transfer)
	over, _, overDesc := writeTestArchive(t, []*plan.ImagePlan{app}, at(2*time.Hour), transfer)
	repo, err := regs.Repository(host + "/mirror/" + plan.CatalogRepository)
	if err != nil {
		t.Fatal(err)
	}
	// Each kept with no signature (nothing pinned checked one), then given its signature, padded.
	attach := func(dir string, catDigest digest.Digest, manifestSize, bundleSize int) {
		if _, _, err := loadOnRegistry(t, dir, host, regs, LoadOptions{Anchors: verify.Anchors{Insecure: true}, KeepCatalog: true}); err != nil {
			t.Fatal(err)
		}
		r, err := archive.Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		sigs, err := r.CatalogSignatures(ctx, catDigest)
		if err != nil || len(sigs) != 1 {
			t.Fatalf("%d signatures: %v", len(sigs), err)
		}
		mb, err := archive.ReadVerified(ctx, r, sigs[0].Manifest, archive.MaxManifestSize)
		if err != nil {
			t.Fatal(err)
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(mb, &m); err != nil {
			t.Fatal(err)
		}
		bundle := sigs[0].Bundle
		if bundleSize > 0 {
			bundle = append([]byte("{"+strings.Repeat(" ", bundleSize-len(bundle))), bundle[1:]...)
		}
		bd := ocispec.Descriptor{MediaType: m.Layers[0].MediaType, Digest: digest.FromBytes(bundle), Size: int64(len(bundle))}
		if err := repo.Push(ctx, bd, bytes.NewReader(bundle)); err != nil {
			t.Fatal(err)
		}
		m.Layers[0] = bd
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		m.Annotations["pad"] = ""
		b, _ := json.Marshal(m)
		m.Annotations["pad"] = strings.Repeat("x", manifestSize-len(b))
		b, _ = json.Marshal(m)
		if len(b) != manifestSize || len(bundle) != max(bundleSize, len(sigs[0].Bundle)) {
			t.Fatalf("padded to %d and %d bytes", len(b), len(bundle))
		}
		putManifest(t, host, "mirror/"+plan.CatalogRepository, digest.FromBytes(b).String(), ocispec.MediaTypeImageManifest, b)
		// This registry has no referrers API: list it in the tag schema, as the client would have.
		idx, _ := json.Marshal(ocispec.Index{Versioned: m.Versioned, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{
			{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: m.ArtifactType, Digest: digest.FromBytes(b), Size: int64(len(b))}}})
		putManifest(t, host, "mirror/"+plan.CatalogRepository, "sha256-"+catDigest.Encoded(), ocispec.MediaTypeImageIndex, idx)
	}
	attach(atLimit, atLimitDesc.Digest, archive.MaxManifestSize, archive.MaxManifestSize)
	attach(over, overDesc.Digest, archive.MaxManifestSize+1, 0)

	var warned []string
	o := (&LoadOptions{Anchors: verify.Anchors{ArchiveKeys: []string{transferPub}}}).withRegistry(host, regs)
	o.Warn = func(s string) { warned = append(warned, s) }
	kept, err := o.readKept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != 1 || kept[0].Digest != atLimitDesc.Digest || kept[0].Tags[host+"/mirror/team/api:2.0"] != api.Root.Desc.Digest || len(warned) != 0 {
		t.Errorf("kept %+v, warned %q; want %s alone (signature and bundle at the limit), not %s (signature a byte over)", kept, warned, atLimitDesc.Digest, overDesc.Digest)
	}
}

// TestLoadDeltaNeedsRegistry: a delta archive (its catalog names a base) is read over its base on the
// registry, so it cannot load into any other target: a failed check, the base catalog named, nothing
// written.
func TestLoadDeltaNeedsRegistry(t *testing.T) {
	_, plans := mirrortest.SamplePlans(t)
	base := digest.FromString("base catalog")
	dir, _, _ := writeTestArchive(t, plans, func(c *archive.Catalog) { c.Base = base })
	tgt, _, err := loadInto(t, dir, LoadOptions{Anchors: verify.Anchors{Insecure: true}})
	if want := "delta archive (base catalog " + base.String() + "): delta archives load only into a registry"; !errors.Is(err, plan.ErrCheckFailed) || err.Error() != want {
		t.Errorf("got %v, want a failed check %q", err, want)
	}
	if len(tgt.Events) != 0 {
		t.Errorf("written: %v", tgt.Events)
	}
}

// TestLoadKeepFails: the images are in, but the catalog could not be kept (a blob of it refused): a
// failed check saying so, naming the catalog's push (its source, the repository, the blob), and no
// place it was kept at.
func TestLoadKeepFails(t *testing.T) {
	ctx := context.Background()
	transfer, transferPub := stationKey(t, t.TempDir(), "transfer")
	_, plans := mirrortest.SamplePlans(t)
	dir, cat, catDesc := writeTestArchive(t, plans, nil, transfer)
	r, err := archive.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := archive.ReadVerified(ctx, r, catDesc, archive.MaxManifestSize)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil || len(m.Layers) == 0 {
		t.Fatalf("catalog manifest: %v", err)
	}
	tgt := mirrortest.NewFakeTarget()
	tgt.FailBlob = m.Layers[0].Digest
	res, err := Load(ctx, dir, LoadOptions{Anchors: verify.Anchors{ArchiveKeys: []string{transferPub}}, KeepCatalog: true,
		Publish: PublishOptions{To: loadTo, Retry: mirrortest.Retry, Target: tgt}})
	want := "the images were loaded, but keeping the catalog at " + plan.CatalogRepository + " failed: airlock catalog " + plan.CatalogTag(cat.Created, catDesc.Digest) +
		" -> site/" + plan.CatalogRepository + ":" + plan.CatalogTag(cat.Created, catDesc.Digest) + ": blob " + tgt.FailBlob.String() + " could not be pushed"
	if !errors.Is(err, plan.ErrCheckFailed) || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v\nwant a failed check %q", err, want)
	}
	if res == nil || res.KeptAt != "" || len(res.Report.Images) != 2 || res.Report.Images[0].Status != "pushed" {
		t.Errorf("result %+v", res)
	}
}
