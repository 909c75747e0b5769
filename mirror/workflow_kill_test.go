package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/registry"
	"airlock.dev/airlock/verify"
)

// Tests written from the mutants of save, signcheck, verifyflow and publish that a mutation run left
// LIVED (issue 20): each asserts a value, a message, a file or a request that one of them changed.

// pushPlatformIndex pushes to the registry repository name an index of two platform manifests, each
// with a config and a layer of its own, under tag; it returns the index and the platform manifests.
func pushPlatformIndex(ctx context.Context, t *testing.T, regs *registry.Registries, name, tag string) (ocispec.Descriptor, []ocispec.Descriptor) {
	t.Helper()
	repo, err := regs.Repository(name)
	if err != nil {
		t.Fatal(err)
	}
	push := func(mt string, b []byte, ref string) ocispec.Descriptor {
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
		if ref != "" {
			err = repo.PushReference(ctx, d, bytes.NewReader(b), ref)
		} else {
			err = repo.Push(ctx, d, bytes.NewReader(b))
		}
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	var children []ocispec.Descriptor
	for _, arch := range []string{"amd64", "arm64"} {
		cfg := push(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"`+arch+`","os":"linux","rootfs":{"type":"layers"}}`), "")
		layer := push(ocispec.MediaTypeImageLayer, []byte("the layer of "+arch), "")
		mb, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}})
		m := push(ocispec.MediaTypeImageManifest, mb, "")
		m.Platform = &ocispec.Platform{OS: "linux", Architecture: arch}
		children = append(children, m)
	}
	ib, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: children})
	return push(ocispec.MediaTypeImageIndex, ib, tag), children
}

// indexImageSet starts a recording registry holding host/team/app:1.0 (a platform index) and returns
// an image set naming it, the platform manifests and a directory to write into.
func indexImageSet(t *testing.T, set ...func(*mirrortest.RecordingRegistry)) (*config.ImageSet, *registry.Registries, *mirrortest.RecordingRegistry, []ocispec.Descriptor, string) {
	t.Helper()
	host, regs, rec := mirrortest.StartRecordingRegistry(t, set...)
	_, children := pushPlatformIndex(context.Background(), t, regs, host+"/team/app", "1.0")
	img, err := config.ParseReference(host + "/team/app:1.0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rec.Requests()
	return &config.ImageSet{Path: filepath.Join(dir, "imageset.yaml"), Dir: dir, Images: []config.Image{img}}, regs, rec, children, dir
}

// TestSaveConcurrencyOne: Concurrency 1 moves one blob at a time (the source registry never has two
// blob GETs open at once); 0 means 8, and the four blobs are then fetched together. Kills save.go:122
// `opts.Concurrency < 1` mutated to `<= 1` and to `>= 1` (both make 1 into 8).
func TestSaveConcurrencyOne(t *testing.T) {
	blobGET := func(r *http.Request) bool {
		return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/")
	}
	for _, concurrency := range []int{1, 0} {
		set, regs, rec, _, dir := indexImageSet(t, func(r *mirrortest.RecordingRegistry) { r.Hold, r.HoldFor = blobGET, 150*time.Millisecond })
		if _, err := Save(context.Background(), set, regs, SaveOptions{Output: filepath.Join(dir, "out"), Retry: mirrortest.Retry, Concurrency: concurrency}); err != nil {
			t.Fatal(err)
		}
		got := rec.MaxHeld()
		if concurrency == 1 && got != 1 {
			t.Errorf("concurrency 1: %d blob GETs open at once, want 1", got)
		}
		if concurrency == 0 && got < 2 {
			t.Errorf("concurrency 0 (that is 8): %d blob GET open at once, want the four blobs fetched together", got)
		}
	}
}

// TestSaveAgainReadsManifestsFromTheDirectory: a second save into the same directory reads the
// platform manifests the first one stored there: the registry is asked for the tag alone, and for no
// manifest by digest. Kills save.go:130 (the Local source set only for an empty output).
func TestSaveAgainReadsManifestsFromTheDirectory(t *testing.T) {
	ctx := context.Background()
	set, regs, rec, children, dir := indexImageSet(t)
	out := filepath.Join(dir, "out")
	for run := range 2 {
		sum, err := Save(ctx, set, regs, SaveOptions{Output: out, Retry: mirrortest.Retry})
		if err != nil {
			t.Fatalf("save %d: %v", run+1, err)
		}
		if len(sum.Images) != 1 || len(sum.Images[0].Platforms) != 2 {
			t.Fatalf("save %d: images %+v, want the index and its two platforms", run+1, sum.Images)
		}
		requests := rec.Requests()
		for _, c := range children {
			byDigest := mirrortest.Matching(requests, http.MethodGet, "/manifests/"+c.Digest.String())
			if want := 1 - run; len(byDigest) != want {
				t.Errorf("save %d: %d GETs of platform manifest %s, want %d; requests %q", run+1, len(byDigest), c.Digest, want, requests)
			}
		}
		if run == 1 && !slices.Equal(requests, []string{"GET /v2/team/app/manifests/1.0"}) {
			t.Errorf("save again asked the registry %q, want the tag alone", requests)
		}
	}
}

// TestSaveDryRunNothingToPin: a dry run whose every image the blocked list keeps out reports which
// rule blocked it and succeeds; with PinOut there is nothing to pin: no file is written and none is
// reported (a pinned image set of no image cannot be written). Kills save.go:172 `len(sp.Plans) > 0`
// mutated to `>= 0`.
func TestSaveDryRunNothingToPin(t *testing.T) {
	set, regs, _ := saveSetup(t)
	set.BlockedRules = []*regexp.Regexp{regexp.MustCompile("team/app")}
	pin := filepath.Join(set.Dir, "pinned.yaml")
	sum, err := Save(context.Background(), set, regs, SaveOptions{Output: filepath.Join(set.Dir, "out"), Retry: mirrortest.Retry, DryRun: true, PinOut: pin})
	if err != nil {
		t.Fatalf("dry run, every image blocked, with --pin-out: %v", err)
	}
	if len(sum.Images) != 0 || len(sum.Blocked) != 1 || sum.Blocked[0].Rule != "team/app" || sum.PinnedTo != "" {
		t.Errorf("summary: images %+v, blocked %+v, pinned to %q; want the one image blocked by team/app, nothing pinned", sum.Images, sum.Blocked, sum.PinnedTo)
	}
	if _, err := os.Stat(pin); !os.IsNotExist(err) {
		t.Errorf("%s written (%v)", pin, err)
	}
}

// TestSaveTarFinishFails: a tar save whose volume cannot be put in place (a directory, not empty,
// already sits at its name) fails, naming the volume, and lists no volume. Kills save.go:238 (the
// error of TarTarget.Finish dropped).
func TestSaveTarFinishFails(t *testing.T) {
	set, regs, dir := saveSetup(t)
	out := filepath.Join(dir, "a.tar")
	if err := os.MkdirAll(filepath.Join(out, "in-the-way"), 0o755); err != nil {
		t.Fatal(err)
	}
	sum, err := Save(context.Background(), set, regs, SaveOptions{Output: out, Retry: mirrortest.Retry})
	if err == nil || !strings.Contains(err.Error(), out) {
		t.Fatalf("save onto a directory named %s: summary %+v, error %v; want an error naming it", out, sum, err)
	}
	if sum != nil {
		t.Errorf("a failed save returned a summary: %+v", sum)
	}
	if _, err := os.Stat(out + archive.ChecksumSuffix); !os.IsNotExist(err) {
		t.Errorf("the volume list was written (%v)", err)
	}
}

// TestStoreTrustKeepsSameNamedKeysInOrder: two keys of the same file name (in two directories) are
// stored in the order the ImageSet lists them: the sort by name is stable. Kills save.go:405 `<`
// mutated to `<=`, which swaps equal names.
func TestStoreTrustKeepsSameNamedKeysInOrder(t *testing.T) {
	l, err := archive.CreateLayout(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	key := func(data string) trustFile {
		return trustFile{name: "release.pub", mediaType: archive.KeyMediaType, data: []byte(data)}
	}
	tr, err := storeTrust(context.Background(), l, []trustFile{key("team one"), {name: "a.pub", mediaType: archive.KeyMediaType, data: []byte("a")}, key("team two")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range tr.Keys {
		got = append(got, k.Name+" "+k.Digest.String())
	}
	want := []string{"a.pub " + digest.FromString("a").String(), "release.pub " + digest.FromString("team one").String(), "release.pub " + digest.FromString("team two").String()}
	if !slices.Equal(got, want) {
		t.Errorf("keys %q\nwant %q", got, want)
	}
}

// TestMergeDigestsSortsTheUnion: the union is sorted, each digest once. (save.go:419 `<` to `<=` is
// equivalent: the digests sorted are the keys of a map, so no two are equal, and the sort compares
// no element with itself.)
func TestMergeDigestsSortsTheUnion(t *testing.T) {
	var a, b []digest.Digest
	for i := range 50 {
		d := digest.FromString(strings.Repeat("x", i))
		a = append(a, d)
		if i%3 == 0 {
			b = append(b, d, digest.FromString(strings.Repeat("y", i+1)))
		}
	}
	got := mergeDigests(a, b)
	if len(got) != 50+17 || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Errorf("merged %d digests, sorted %v; want 67, sorted, each once", len(got), slices.IsSorted(got))
	}
}

// TestCheckForSigningDelta: a delta archive (its catalog names a base) lacks the manifests of an image
// its base holds: the station lists that image in InBase and does not verify it (it is not read back,
// and does not fail); the image the delta holds is verified. Kills signcheck.go:81 `err == nil &&
// !held` negated.
func TestCheckForSigningDelta(t *testing.T) {
	ctx := context.Background()
	release, releasePub := stationKey(t, t.TempDir(), "release")
	src, plans := mirrortest.SamplePlans(t)
	app, api := plans[0], plans[1]
	app.Referrers = append(app.Referrers, bundleSignature(t, src, "team/app", app.Root, release))
	inBase := map[digest.Digest]bool{}
	for _, n := range api.Nodes() {
		inBase[n.Desc.Digest] = true
		for _, b := range n.Blobs {
			inBase[b.Digest] = true
		}
	}
	dir := filepath.Join(t.TempDir(), "delta")
	l, err := archive.CreateLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Copy(ctx, plans, &engine.LayoutTarget{Layout: l}, engine.CopyOptions{Retry: mirrortest.Retry, Skip: func(d ocispec.Descriptor) bool { return inBase[d.Digest] }}); err != nil {
		t.Fatal(err)
	}
	cat := catalogOf(plans, "test")
	cat.Base = digest.FromString("the base catalog")
	if _, err := l.WriteCatalog(ctx, cat); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	station, err := (&verify.Anchors{Keys: []string{releasePub}}).Site()
	if err != nil {
		t.Fatal(err)
	}
	c, err := CheckForSigning(ctx, dir, station)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.InBase) != 1 || c.InBase[0].Source != api.Source || c.InBase[0].Digest != api.Root.Desc.Digest {
		t.Errorf("in the base: %+v, want %s alone", c.InBase, api.Source)
	}
	if len(c.Results) != 1 || c.Results[0].Source != app.Source || !c.Results[0].Passed || !c.Passed() {
		t.Errorf("results %+v, want %s alone, passed", c.Results, app.Source)
	}
}

// pathPolicy writes a policy whose first rule matches the sample images' paths under another host,
// and whose second matches everything, both requiring the key release.pub.
func pathPolicy(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "policy.yaml")
	pol := "apiVersion: airlock.dev/v1alpha1\nkind: Policy\nrules:\n" +
		"  - name: by path\n    match: [elsewhere.example/team/**]\n    signers: [{key: release.pub}]\n" +
		"  - name: catch-all\n    match: [\"**\"]\n    signers: [{key: release.pub}]\n"
	if err := os.WriteFile(p, []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestVerifyArchiveUnsignedNamesRule: verifying an archive, the names in a catalog no pinned archive
// key signed choose no rule by their host: the rule is the first matching the path under any host
// ("by path"); with the archive key pinned (the catalog signed), the names are the archive's word and
// the rule is chosen with the host ("catch-all"). Kills verifyflow.go:67 `len(o.Anchors.ArchiveKeys)
// == 0` negated.
func TestVerifyArchiveUnsignedNamesRule(t *testing.T) {
	ctx := context.Background()
	keys := t.TempDir()
	transfer, transferPub := stationKey(t, keys, "transfer")
	_, releasePub := stationKey(t, keys, "release")
	policy := pathPolicy(t, keys)
	_, plans := mirrortest.SamplePlans(t)
	dir, _, _ := writeTestArchive(t, plans, nil, transfer)
	for _, tc := range []struct {
		name    string
		anchors verify.Anchors
		rule    string
	}{
		{"no archive key", verify.Anchors{Keys: []string{releasePub}, Policy: policy}, "by path"},
		{"archive key pinned", verify.Anchors{ArchiveKeys: []string{transferPub}, Keys: []string{releasePub}, Policy: policy}, "catch-all"},
	} {
		results, _, err := VerifyTarget(ctx, dir, VerifyOptions{Anchors: tc.anchors})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(results) != 2 {
			t.Fatalf("%s: results %+v", tc.name, results)
		}
		for _, r := range results {
			if r.Rule != tc.rule {
				t.Errorf("%s: %s checked by rule %q, want %q", tc.name, r.Source, r.Rule, tc.rule)
			}
		}
	}
}

// TestVerifyRegistryTargetOnlyWhenSigned: an archive whose catalog sends team/api to moved/api, signed
// by the pinned archive key, is loaded; verify of the registry with that archive finds team/api at
// moved/api. Without a pinned archive key the catalog's target decides nothing: the site's mapping
// looks for it at team/api, where it is not. Kills verifyflow.go:133 `len(o.Anchors.ArchiveKeys) == 0`
// negated.
func TestVerifyRegistryTargetOnlyWhenSigned(t *testing.T) {
	ctx := context.Background()
	keys := t.TempDir()
	transfer, transferPub := stationKey(t, keys, "transfer")
	_, releasePub := stationKey(t, keys, "release")
	host, regs := startKeptRegistry(t)
	_, plans := mirrortest.SamplePlans(t)
	dir, _, _ := writeTestArchive(t, plans, func(c *archive.Catalog) { c.Images[1].Target = "moved/api" }, transfer)
	pinned := verify.Anchors{ArchiveKeys: []string{transferPub}}
	res, _, err := loadOnRegistry(t, dir, host, regs, LoadOptions{Anchors: pinned})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Report.Images) != 2 || res.Report.Images[1].Target != host+"/mirror/moved/api:2.0" {
		t.Fatalf("loaded %+v, want team/api at moved/api", res.Report.Images)
	}
	target := host + "/mirror"
	clients := func() (*registry.Registries, error) { return regs, nil }
	results, _, err := VerifyTarget(ctx, target, VerifyOptions{Anchors: pinned, Archive: dir, Registries: clients})
	if err != nil {
		t.Fatalf("archive key pinned: %v", err)
	}
	if len(results) != 2 || results[1].Digest != plans[1].Root.Desc.Digest {
		t.Errorf("archive key pinned: results %+v", results)
	}
	_, _, err = VerifyTarget(ctx, target, VerifyOptions{Anchors: verify.Anchors{Keys: []string{releasePub}}, Archive: dir, Registries: clients})
	if err == nil || !strings.Contains(err.Error(), target+"/team/api") {
		t.Errorf("no archive key: %v, want team/api looked for at %s/team/api, where it is not", err, target)
	}
}

// TestIsCatalog: the catalog alone is the catalog; with another plan, or another target or registry,
// it is not. Kills publish.go:64, each comparison negated.
func TestIsCatalog(t *testing.T) {
	catalog := func(registry, target string) *plan.ImagePlan {
		return &plan.ImagePlan{Image: config.Image{Registry: registry, Repository: plan.CatalogRepository, Tag: "t", Target: target}}
	}
	_, plans := mirrortest.SamplePlans(t)
	for _, tc := range []struct {
		name  string
		plans []*plan.ImagePlan
		want  bool
	}{
		{"the catalog alone", []*plan.ImagePlan{catalog("airlock", plan.CatalogRepository)}, true},
		{"the catalog and an image", []*plan.ImagePlan{catalog("airlock", plan.CatalogRepository), plans[0]}, false},
		{"another target", []*plan.ImagePlan{catalog("airlock", "team/app")}, false},
		{"another registry", []*plan.ImagePlan{catalog("registry.example.com", plan.CatalogRepository)}, false},
		{"an image", plans[1:], false},
		{"nothing", nil, false},
	} {
		if got := isCatalog(tc.plans); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestPublishCatalogWithoutPreflight: publishing an image asks the registry where its tag points before
// the first blob (the preflight); publishing the catalog alone does not (its tag is its own, new).
func TestPublishCatalogWithoutPreflight(t *testing.T) {
	ctx := context.Background()
	_, plans := mirrortest.SamplePlans(t)
	dir, cat, catDesc := writeTestArchive(t, plans, nil)
	r, err := archive.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cp, err := plan.CatalogPlan(ctx, r, cat, catDesc, nil)
	if err != nil {
		t.Fatal(err)
	}
	host, regs, rec := mirrortest.StartRecordingRegistry(t)
	for _, tc := range []struct {
		ip        *plan.ImagePlan
		preflight bool
	}{{plans[1], true}, {cp, false}} {
		if _, err := Publish(ctx, []*plan.ImagePlan{tc.ip}, regs, PublishOptions{To: host + "/mirror", Retry: mirrortest.Retry}); err != nil {
			t.Fatalf("%s: %v", tc.ip.Source, err)
		}
		requests := rec.Requests()
		first := slices.IndexFunc(requests, func(q string) bool { return strings.Contains(q, "/blobs/") })
		tagRead := slices.Index(requests, "GET /v2/mirror/"+engineRepo(tc.ip)+"/manifests/"+tc.ip.Image.Tag)
		if asked := tagRead >= 0 && tagRead < first; asked != tc.preflight {
			t.Errorf("%s: tag read before the first blob %v, want %v; requests %q", tc.ip.Source, asked, tc.preflight, requests)
		}
	}
}

// engineRepo is the repository path an image lands at under the prefix.
func engineRepo(ip *plan.ImagePlan) string {
	if ip.Image.Target != "" {
		return ip.Image.Target
	}
	return ip.Image.Repository
}
