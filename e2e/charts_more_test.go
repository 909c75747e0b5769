package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/oci"
	"sigs.k8s.io/yaml"

	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
	"airlock.dev/airlock/e2e/internal/tools"
)

// More e2e tests of issue 19's charts entries (docs/helm-charts.md section 7), with the fixtures of
// charts_test.go.

// aliasedReason is how a reason names an image of postgres-lite, which app aliases db
// (docs/helm-charts.md section 4.2).
const aliasedReason = "app/db (chart postgres-lite 12.1.0, alias db)"

// appImagesAliased is appImages with the reasons of db and backup naming the chart behind the alias.
func appImagesAliased() []chartImage {
	var out []chartImage
	for _, img := range appImages {
		reasons := slices.Clone(img.reasons)
		if img.repo == "team/db" || img.repo == "team/backup" {
			reasons = append(reasons, aliasedReason)
		}
		out = append(out, chartImage{img.repo, img.tag, reasons})
	}
	return out
}

// schemaReferrers returns the manifests the referrers tag schema index (sha256-HEX) of subject lists
// in host/repo, for a registry without the referrers API (distribution), or nil when there is none.
func schemaReferrers(t *testing.T, host, repo string, subject digest.Digest) []ocispec.Descriptor {
	t.Helper()
	tag := subject.Algorithm().String() + "-" + subject.Encoded()
	if status, _, _ := get(t.Context(), t, http.MethodHead, host, "/v2/"+repo+"/manifests/"+tag); status != http.StatusOK {
		return nil
	}
	var idx ocispec.Index
	manifest(t.Context(), t, host, repo, tag, &idx)
	return idx.Manifests
}

// TestChartsOCIKeepsSignature: app 1.4.2 pushed with helm push and its manifest signed with the real
// cosign CLI (a bundle, stored as a referrer under the tag schema: distribution has no referrers API)
// is saved by its oci:// reference and loaded: the chart keeps its manifest digest, its signature
// travels (in the catalog as a referrer of the chart's digest, and at the site), and airlock verify
// passes for the chart with the signing key, on the archive and on the site registry; with another
// key it fails, naming the chart.
func TestChartsOCIKeepsSignature(t *testing.T) {
	ctx := t.Context()
	src := registries.StartDistribution(ctx, t)
	f := newChartFixture(t, src)
	tgz := f.helm.packageChart(t, f.chart, "1.4.2", t.TempDir())
	f.helm.must(t, "push", tgz, "oci://"+src+"/charts", "--plain-http")
	pushed := manifest(ctx, t, src, "charts/app", "1.4.2", &ocispec.Manifest{})

	// The chart and every image it runs are signed by one key, so verify passes for all of them;
	// other.pub signed nothing.
	work := t.TempDir()
	cosign := &seed.Cosign{Path: tools.Path(t, "cosign"), Home: t.TempDir()}
	key, pub, err := cosign.GenerateKeyPair(ctx, filepath.Join(work, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	_, otherPub, err := cosign.GenerateKeyPair(ctx, filepath.Join(work, "other"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cosign.Sign(ctx, key, src+"/charts/app@"+pushed.String()); err != nil {
		t.Fatal(err)
	}
	for _, img := range appImages {
		if err := cosign.Sign(ctx, key, src+"/"+img.repo+"@"+f.digests[img.ref(src)].String()); err != nil {
			t.Fatal(err)
		}
	}
	sigs := schemaReferrers(t, src, "charts/app", pushed)
	if len(sigs) != 1 {
		t.Fatalf("cosign sign left %d referrers of the chart %s at the source, want 1: %v", len(sigs), pushed, sigs)
	}
	sig := sigs[0].Digest

	entry := chartEntry{ref: "oci://" + src + "/charts/app:1.4.2", registry: src, tag: "1.0"}
	set := writeChartSet(t, work, entry)
	arch := filepath.Join(work, "archive")
	mustRun(ctx, t, "save", "-c", set, "-o", arch)
	chartRef := src + "/charts/app:1.4.2"

	// The catalog: the chart among the images at the pushed digest, its signature a referrer of it.
	cat := readCatalog(ctx, t, arch)
	found := false
	for _, img := range cat.Images {
		if img.Source == chartRef {
			found = true
			if img.Digest != pushed {
				t.Errorf("the catalog has the chart %s at %s, helm push made %s", chartRef, img.Digest, pushed)
			}
		}
	}
	if !found {
		t.Errorf("the catalog's images do not name the chart %s: %s", chartRef, jsonText(cat.Images))
	}
	found = false
	for _, r := range cat.Referrers {
		if r.Subject == pushed {
			found = found || r.Digest == sig
			if r.Digest == sig && r.Kind != "signature" {
				t.Errorf("the catalog records cosign's signature %s of the chart as %q, want signature", sig, r.Kind)
			}
		}
	}
	if !found {
		t.Errorf("the catalog has no referrer %s (cosign's signature) of the chart %s: %s", sig, pushed, jsonText(cat.Referrers))
	}
	tgzDigest := "sha256:" + sha256File(t, tgz)
	if charts := catalogCharts(ctx, t, arch); len(charts) != 1 || charts[0]["digest"] != pushed.String() || charts[0]["source"] != chartRef || charts[0]["chartDigest"] != tgzDigest {
		t.Errorf("the catalog's charts: %s, want %s at %s, chartDigest %s (the pushed .tgz)", jsonText(charts), chartRef, pushed, tgzDigest)
	}

	// At the site: the same manifest digest, and the signature, listed for it under the tag schema.
	site := registries.StartDistribution(ctx, t)
	to := site + "/mirror"
	mustRun(ctx, t, "load", arch, "--to", to)
	if got := manifest(ctx, t, site, "mirror/charts/app", "1.4.2", &ocispec.Manifest{}); got != pushed {
		t.Errorf("the chart at the site is %s, helm push made %s", got, pushed)
	}
	var m ocispec.Manifest
	manifest(ctx, t, site, "mirror/charts/app", sig.String(), &m)
	if m.Subject == nil || m.Subject.Digest != pushed {
		t.Errorf("the signature %s at the site has subject %v, want the chart %s", sig, m.Subject, pushed)
	}
	if !slices.Contains(digests(schemaReferrers(t, site, "mirror/charts/app", pushed)), sig) {
		t.Errorf("the site does not list the signature %s as a referrer of the chart %s (tag schema)", sig, pushed)
	}

	// verify with the signing key: the archive, then the site registry, the chart among the results.
	checkChartVerified := func(what string, res result) {
		t.Helper()
		v := verifyJSON(t, res)
		if res.code != 0 || !v.Passed {
			t.Errorf("%s: exit %d, passed %v\n%s\n%s", what, res.code, v.Passed, res.stdout, res.stderr)
		}
		ok := false
		for _, r := range v.Results {
			if r.Source == chartRef {
				for _, s := range r.Signatures {
					ok = ok || s.Valid
				}
				if !r.Passed {
					t.Errorf("%s: the chart %s failed: %v", what, chartRef, r.Failures)
				}
			}
		}
		if !ok {
			t.Errorf("%s: no valid signature of the chart %s in the results:\n%s", what, chartRef, res.stdout)
		}
		if len(v.Results) != len(appImages)+1 {
			t.Errorf("%s: %d results, want %d (the chart and its images)", what, len(v.Results), len(appImages)+1)
		}
	}
	checkChartVerified("verify ARCHIVE --key cosign.pub", run(ctx, t, "verify", arch, "--key", pub, "--format", "json"))
	checkChartVerified("verify SITE --archive ARCHIVE --key cosign.pub", run(ctx, t, "verify", to, "--archive", arch, "--key", pub, "--format", "json"))

	// With a key that signed nothing, the chart fails, named.
	for _, args := range [][]string{{"verify", arch, "--key", otherPub}, {"verify", to, "--archive", arch, "--key", otherPub}} {
		res := run(ctx, t, args...)
		if res.code != 1 || !strings.Contains(res.stdout, "FAIL  "+chartRef) {
			t.Errorf("%v: exit %d, want 1 naming FAIL  %s\n%s\n%s", args, res.code, chartRef, res.stdout, res.stderr)
		}
	}
}

// TestChartsInspect: inspect of an archive saved from app 1.4.2 shows its charts section: the chart,
// its version and artifact digest, each image it runs with its reasons (the init container, the
// helm.sh/images annotation, the aliased subchart named by the chart behind the alias), and the
// cache subchart skipped for its condition; --format json has the same facts under charts.
func TestChartsInspect(t *testing.T) {
	ctx := t.Context()
	f := newChartFixture(t, registries.StartGGCR(t))
	_, url, _ := f.httpRepo(t, "1.4.2")
	work := t.TempDir()
	arch := filepath.Join(work, "archive")
	mustRun(ctx, t, "save", "-c", writeChartSet(t, work, f.appEntry(url)), "-o", arch)
	store, err := oci.NewFromFS(ctx, os.DirFS(arch))
	if err != nil {
		t.Fatal(err)
	}
	chartSource := strings.TrimPrefix(url, "http://") + "/app:1.4.2"
	artifact, err := store.Resolve(ctx, chartSource)
	if err != nil {
		t.Fatalf("the archive has no %s: %v", chartSource, err)
	}

	out := mustRun(ctx, t, "inspect", arch).stdout
	_, section, ok := strings.Cut(out, "\ncharts (1, each with the images it runs and why):\n")
	if !ok {
		t.Fatalf("inspect has no charts section for one chart:\n%s", out)
	}
	for _, want := range []string{
		"from " + url + " app\n",
		"app 1.4.2 -> " + chartSource + " (" + artifact.Digest.String() + ")",
		"skipped app/cache (condition cache.enabled = false)",
	} {
		if !strings.Contains(section, want) {
			t.Errorf("inspect's charts section lacks %q:\n%s", want, section)
		}
	}
	checkImageReasons(t, section, f.src, appImagesAliased())
	if strings.Contains(out, cacheImage.ref(f.src)) {
		t.Errorf("inspect names %s, which only the disabled cache subchart runs:\n%s", cacheImage.ref(f.src), out)
	}

	var rep struct {
		Charts []map[string]any `json:"charts"`
	}
	res := mustRun(ctx, t, "inspect", arch, "--format", "json")
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("inspect --format json: %v\n%s", err, res.stdout)
	}
	if len(rep.Charts) != 1 {
		t.Fatalf("inspect --format json has %d charts, want 1:\n%s", len(rep.Charts), res.stdout)
	}
	c := rep.Charts[0]
	if c["entry"] != url+" app" || c["name"] != "app" || c["version"] != "1.4.2" || c["source"] != chartSource || c["digest"] != artifact.Digest.String() {
		t.Errorf("inspect --format json: chart %s, want app 1.4.2 from %q at %s, %s", jsonText(c), url+" app", chartSource, artifact.Digest)
	}
	checkImagesJSON(t, "inspect --format json", rep.Charts, f.src, appImagesAliased())
	if skipped := jsonText(c["skipped"]); !strings.Contains(skipped, "app/cache") || !strings.Contains(skipped, "cache.enabled") {
		t.Errorf("inspect --format json: skipped %s, want app/cache with its condition cache.enabled", skipped)
	}
	if strings.Contains(res.stdout, cacheImage.ref(f.src)) {
		t.Errorf("inspect --format json names %s, which only the disabled cache subchart runs", cacheImage.ref(f.src))
	}
}

// blockedJSON returns the blocked list of a save --format json report, each entry by its source.
func blockedJSON(t *testing.T, stdout string) map[string]map[string]any {
	t.Helper()
	var rep struct {
		Blocked []map[string]any `json:"blocked"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("--format json: %v\n%s", err, stdout)
	}
	out := map[string]map[string]any{}
	for _, b := range rep.Blocked {
		src, _ := b["source"].(string)
		out[src] = b
	}
	return out
}

// lineWith returns the first line of out that contains s, or "".
func lineWith(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// TestChartsBlocked: blocked: ['team/backup'] keeps out the backup image that app's CronJob (of the
// aliased subchart) runs: the dry run reports it blocked with its rule, in text and in JSON, and
// save writes the other images but not it. A rule matching the chart's own source name keeps the
// chart out, unfetched, and with it every image it runs.
func TestChartsBlocked(t *testing.T) {
	ctx := t.Context()
	f := newChartFixture(t, registries.StartGGCR(t))
	_, url, log := f.httpRepo(t, "1.4.2")
	backup := f.src + "/team/backup:1.0"
	chartSource := strings.TrimPrefix(url, "http://") + "/app:1.4.2"

	t.Run("image", func(t *testing.T) {
		work := t.TempDir()
		set := writeImageSet(t, work, "charts:\n"+f.appEntry(url).yaml()+"blocked:\n  - 'team/backup'\n")
		res := mustRun(ctx, t, "save", "-c", set, "--dry-run")
		line := lineWith(res.stdout, "blocked:   "+backup+" ")
		if want := "blocked:   " + backup + " (rule team/backup"; !strings.HasPrefix(line, want) {
			t.Errorf("the dry run lacks %q:\n%s", want, res.stdout)
		}
		// docs/helm-charts.md section 1: "A blocked image is reported blocked, with its rule and its
		// chart."
		if !strings.Contains(line, chartSource) && !strings.Contains(line, "app 1.4.2") {
			t.Errorf("the dry run reports %s blocked without naming its chart (app 1.4.2, %s): %q", backup, chartSource, line)
		}
		res = mustRun(ctx, t, "save", "-c", set, "--dry-run", "--format", "json")
		b := blockedJSON(t, res.stdout)
		if len(b) != 1 || b[backup]["rule"] != "team/backup" {
			t.Errorf("the dry run's JSON blocked %v, want only %s by team/backup", b, backup)
		}
		if e := jsonText(b[backup]); !strings.Contains(e, chartSource) && !strings.Contains(e, "app 1.4.2") {
			t.Errorf("the dry run's JSON reports %s blocked without naming its chart (app 1.4.2, %s): %s", backup, chartSource, e)
		}

		arch := filepath.Join(work, "archive")
		mustRun(ctx, t, "save", "-c", set, "-o", arch)
		store, err := oci.NewFromFS(ctx, os.DirFS(arch))
		if err != nil {
			t.Fatal(err)
		}
		for _, img := range appImages {
			ref := img.ref(f.src)
			d, err := store.Resolve(ctx, ref)
			switch {
			case ref == backup && err == nil:
				t.Errorf("the archive has %s, which team/backup blocks", ref)
			case ref != backup && (err != nil || d.Digest != f.digests[ref]):
				t.Errorf("the archive has %s at %v (%v), want %s", ref, d.Digest, err, f.digests[ref])
			}
		}
		cat := readCatalog(ctx, t, arch)
		if len(cat.Blocked) != 1 || cat.Blocked[0].Source != backup || cat.Blocked[0].Rule != "team/backup" {
			t.Errorf("the catalog's blocked list %s, want %s by team/backup", jsonText(cat.Blocked), backup)
		}
		for _, img := range cat.Images {
			if img.Source == backup {
				t.Errorf("the catalog's images name %s, which team/backup blocks", backup)
			}
		}
	})

	t.Run("chart", func(t *testing.T) {
		const rule = `/app:1\.4\.2$`
		work := t.TempDir()
		// The cache image, which app does not run with cache disabled, gives save something to write.
		cache := cacheImage.ref(f.src)
		set := writeImageSet(t, work, "images:\n  - ref: "+cache+"\ncharts:\n"+f.appEntry(url).yaml()+"blocked:\n  - '"+rule+"'\n")
		fetched := log.count("/stable/app-1.4.2.tgz")
		res := run(ctx, t, "save", "-c", set, "--dry-run")
		if want := "blocked:   " + chartSource + " (rule " + rule + ")"; res.code != 0 || !strings.Contains(res.stdout, want) {
			t.Errorf("the dry run: exit %d, want 0 with %q\n%s\n%s", res.code, want, res.stdout, res.stderr)
		}
		for _, img := range appImages {
			if strings.Contains(res.stdout, img.ref(f.src)) {
				t.Errorf("the dry run names %s, which only the blocked chart runs:\n%s", img.ref(f.src), res.stdout)
			}
		}
		res = run(ctx, t, "save", "-c", set, "--dry-run", "--format", "json")
		if b := blockedJSON(t, res.stdout); len(b) != 1 || b[chartSource]["rule"] != rule {
			t.Errorf("the dry run's JSON blocked %v, want only %s by %s", b, chartSource, rule)
		}
		for _, img := range appImages {
			if strings.Contains(res.stdout, img.ref(f.src)) {
				t.Errorf("the dry run's JSON names %s, which only the blocked chart runs:\n%s", img.ref(f.src), res.stdout)
			}
		}

		// save writes the cache image alone; the catalog names the chart blocked, with its rule.
		arch := filepath.Join(work, "archive")
		mustRun(ctx, t, "save", "-c", set, "-o", arch)
		if got := catalogDigests(t, arch); len(got) != 1 || got[cache] != f.digests[cache] {
			t.Errorf("the archive holds %v, want only %s at %s", got, cache, f.digests[cache])
		}
		cat := readCatalog(ctx, t, arch)
		if len(cat.Blocked) != 1 || cat.Blocked[0].Source != chartSource || cat.Blocked[0].Rule != rule {
			t.Errorf("the catalog's blocked list %s, want %s by %s", jsonText(cat.Blocked), chartSource, rule)
		}
		if len(cat.Charts) != 0 {
			t.Errorf("the catalog names the blocked chart among its charts: %s", jsonText(cat.Charts))
		}
		if n := log.count("/stable/app-1.4.2.tgz") - fetched; n != 0 {
			t.Errorf("the dry runs and save fetched the blocked chart %d times\n%s", n, log)
		}
	})
}

// pinnedSet is the part of a pinned image set the tests read.
type pinnedSet struct {
	Images []struct {
		Ref string `json:"ref"`
	} `json:"images"`
	Charts []map[string]any `json:"charts"`
}

// catalogDigests returns the catalog's images of the archive at path, as REPOSITORY:TAG -> digest
// (a pinned image's source also has its digest).
func catalogDigests(t *testing.T, path string) map[string]digest.Digest {
	t.Helper()
	out := map[string]digest.Digest{}
	for _, img := range readCatalog(t.Context(), t, path).Images {
		out[img.Repository+":"+img.Tag] = img.Digest
	}
	return out
}

// TestChartsPinned: save --pin-out of app from an HTTP chart repository writes the chart pinned (its
// exact version, index digest and findImages: false) and the images it runs pinned by digest under
// images; a save from the pinned file moves exactly the same manifests, fetching index.yaml and the
// .tgz again (to check the chart's digest) but rendering nothing: the catalog names the chart with no
// images of its own.
func TestChartsPinned(t *testing.T) {
	ctx := t.Context()
	f := newChartFixture(t, registries.StartGGCR(t))
	repoDir, url, log := f.httpRepo(t, chartVersions...)
	work := t.TempDir()
	first := filepath.Join(work, "first")
	pinned := filepath.Join(work, "pinned.yaml")
	mustRun(ctx, t, "save", "-c", writeChartSet(t, work, f.appEntry(url)), "-o", first, "--pin-out", pinned)

	b, err := os.ReadFile(pinned)
	if err != nil {
		t.Fatal(err)
	}
	var p pinnedSet
	if err := yaml.Unmarshal(b, &p); err != nil {
		t.Fatalf("%s: %v\n%s", pinned, err, b)
	}
	wantChart := map[string]any{"repo": url, "name": "app", "version": "1.4.2", "digest": "sha256:" + indexDigest(t, repoDir, "1.4.2"), "findImages": false}
	if len(p.Charts) != 1 || jsonText(p.Charts[0]) != jsonText(wantChart) {
		t.Errorf("the pinned file's charts %s, want only %s\n%s", jsonText(p.Charts), jsonText(wantChart), b)
	}
	var refs, wantRefs []string
	for _, img := range p.Images {
		refs = append(refs, img.Ref)
	}
	for _, img := range appImages {
		wantRefs = append(wantRefs, img.ref(f.src)+"@"+f.digests[img.ref(f.src)].String())
	}
	slices.Sort(refs)
	slices.Sort(wantRefs)
	if !slices.Equal(refs, wantRefs) {
		t.Errorf("the pinned file's images %v, want %v\n%s", refs, wantRefs, b)
	}

	index, tgz := log.count("/stable/index.yaml"), log.count("/stable/app-1.4.2.tgz")
	second := filepath.Join(t.TempDir(), "second")
	res := run(ctx, t, "save", "-c", pinned, "-o", second)
	if res.code != 0 {
		t.Fatalf("save -c pinned.yaml: exit %d\nstderr:\n%s\nstdout:\n%s\npinned.yaml:\n%s", res.code, res.stderr, res.stdout, b)
	}
	if got, want := catalogDigests(t, second), catalogDigests(t, first); jsonText(got) != jsonText(want) {
		t.Errorf("the save from the pinned file moved %v, the first save %v", got, want)
	}
	if n := log.count("/stable/index.yaml") - index; n != 1 {
		t.Errorf("the save from the pinned file fetched index.yaml %d times, want once\n%s", n, log)
	}
	if n := log.count("/stable/app-1.4.2.tgz") - tgz; n != 1 {
		t.Errorf("the save from the pinned file fetched app-1.4.2.tgz %d times, want once\n%s", n, log)
	}
	charts := catalogCharts(ctx, t, second)
	firstCharts := catalogCharts(ctx, t, first)
	if len(charts) != 1 || charts[0]["version"] != "1.4.2" || charts[0]["digest"] != firstCharts[0]["digest"] || charts[0]["images"] != nil {
		t.Errorf("the catalog of the save from the pinned file has charts %s, want app 1.4.2 at %v with no images (findImages: false)", jsonText(charts), firstCharts[0]["digest"])
	}
	if fmt.Sprint(charts[0]["chartDigest"]) != "sha256:"+indexDigest(t, repoDir, "1.4.2") {
		t.Errorf("the catalog of the save from the pinned file gives chartDigest %v, index.yaml sha256:%s", charts[0]["chartDigest"], indexDigest(t, repoDir, "1.4.2"))
	}
}
