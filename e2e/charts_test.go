package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/oci"
	"sigs.k8s.io/yaml"

	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/tools"
	"airlock.dev/airlock/sitefiles"
)

// The e2e charts (issue 19, docs/helm-charts.md section 7) live in testdata/charts: app, with the
// subcharts postgres-lite (aliased db) and cache (condition cache.enabled, false by default) in
// app/charts. Every image is "{{ .Values.global.registry }}/team/...", so the ImageSet's values set
// the source registry; the operand image is named only by app's helm.sh/images annotation, whose
// host (registry.invalid) chartSources replaces.

// chartVersions are the versions of app the HTTP chart repository serves, packaged with helm package
// --version from the one source.
var chartVersions = []string{"1.3.0", "1.4.2", "1.5.0-rc.1", "2.0.0"}

// chartRange picks 1.4.2 of chartVersions: 2.0.0 is above it, 1.5.0-rc.1 a prerelease, 1.3.0 below.
const chartRange = ">=1.4.0 <2.0.0"

// chartImage is one image the app chart runs, with the reason airlock must give for it.
type chartImage struct {
	repo, tag string
	// reasons are stable substrings of the reason (docs/helm-charts.md sections 4.2, 4.4, 4.5): the
	// chart or subchart that runs it, then the template, kind and container list, or the annotation.
	reasons []string
}

// appImages are the images app 1.4.2 runs with image.tag 1.0 and cache disabled: from the rendered
// objects (init, app; db and backup of the subchart postgres-lite aliased db: TestChartsAliasedSubchart
// checks their reasons name the chart behind the alias) and from Chart.yaml's helm.sh/images (operand).
var appImages = []chartImage{
	{"team/init", "1.0", []string{"app 1.4.2", "app/templates/deployment.yaml", "Deployment", "initContainers[0]"}},
	{"team/app", "1.0", []string{"app 1.4.2", "app/templates/deployment.yaml", "Deployment", "containers[0]"}},
	{"team/db", "16", []string{"app/db", "app/charts/db/templates/statefulset.yaml", "StatefulSet", "containers[0]"}},
	{"team/backup", "1.0", []string{"app/db", "app/charts/db/templates/cronjob.yaml", "CronJob", "containers[0]"}},
	{"team/operand", "1.0", []string{"app 1.4.2", "Chart.yaml", "helm.sh/images", "operand"}},
}

// cacheImage is the image of the cache subchart, rendered only with includeDisabled.
var cacheImage = chartImage{"team/cache", "7", []string{"app/cache", "app/charts/cache/templates/deployment.yaml", "Deployment", "included by includeDisabled"}}

func (c chartImage) ref(host string) string { return host + "/" + c.repo + ":" + c.tag }

// helmCLI runs the real Helm CLI (v4.3.2, scripts/install-tools.sh) with every home of its own
// under the test's temporary directory, so the machine's repositories, caches and registry logins
// are never read or written.
type helmCLI struct {
	path string
	env  []string
}

// newHelm returns the helm of .tools/bin (or PATH); the test skips without it, and fails with CI=true.
func newHelm(t *testing.T) *helmCLI {
	t.Helper()
	p := tools.Path(t, "helm")
	home := t.TempDir()
	return &helmCLI{path: p, env: []string{
		"HELM_CACHE_HOME=" + filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME=" + filepath.Join(home, "config"),
		"HELM_DATA_HOME=" + filepath.Join(home, "data"),
		"HELM_REGISTRY_CONFIG=" + filepath.Join(home, "registry", "config.json"),
		"DOCKER_CONFIG=" + filepath.Join(home, "docker"),
	}}
}

// run runs helm with args (and extra environment variables) and returns its combined output.
func (h *helmCLI) run(ctx context.Context, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, h.path, args...)
	cmd.Env = append(append(os.Environ(), h.env...), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// must runs helm and fails the test unless it exits 0.
func (h *helmCLI) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := h.run(t.Context(), nil, args...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// chartSources copies testdata/charts into a new directory, with the source registry's host in
// app's helm.sh/images annotation, and returns the directory of app.
func chartSources(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	err := filepath.WalkDir("testdata/charts", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("testdata/charts", p)
		to := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rel == filepath.Join("app", "Chart.yaml") {
			b = bytes.ReplaceAll(b, []byte("registry.invalid"), []byte(src))
		}
		return os.WriteFile(to, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "app")
}

// packageChart runs helm package on chart with the given version into dir and returns the .tgz's path.
func (h *helmCLI) packageChart(t *testing.T, chart, version, dir string, extra ...string) string {
	t.Helper()
	h.must(t, append([]string{"package", chart, "--version", version, "-d", dir}, extra...)...)
	p := filepath.Join(dir, "app-"+version+".tgz")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("helm package wrote no %s: %v", p, err)
	}
	return p
}

// requestLog records the requests a test HTTP server answered, as "METHOD PATH STATUS".
type requestLog struct {
	mu   sync.Mutex
	reqs []string
}

func (l *requestLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, s)
}

// count returns how many requests were "GET path" (any status).
func (l *requestLog) count(path string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.reqs {
		if strings.HasPrefix(r, "GET "+path+" ") {
			n++
		}
	}
	return n
}

func (l *requestLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.reqs, "\n")
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// chartRepo serves dir, a directory helm repo index wrote, on 127.0.0.1 under /stable/ until the
// test ends, and returns the repository URL (without a trailing slash: airlock adds it, as helm's
// ResolveReferenceURL does) and the log of the requests served.
func chartRepo(t *testing.T, dir string) (string, *requestLog) {
	t.Helper()
	log := &requestLog{}
	files := http.StripPrefix("/stable", http.FileServer(http.Dir(dir)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		files.ServeHTTP(sw, r)
		log.add(fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, sw.status))
	}))
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("chart repository at %s, want 127.0.0.1", srv.URL)
	}
	return srv.URL + "/stable", log
}

// chartFixture is a source registry holding every image the charts name, the chart sources, and
// helm to package and push them.
type chartFixture struct {
	src   string // source registry host:port
	helm  *helmCLI
	chart string // the app chart's directory
	// digests are the source digests of every image the charts name, by reference.
	digests map[string]digest.Digest
}

// newChartFixture pushes every image the charts name (appImages and cacheImage) to src.
func newChartFixture(t *testing.T, src string) *chartFixture {
	t.Helper()
	f := &chartFixture{src: src, helm: newHelm(t), digests: map[string]digest.Digest{}}
	f.chart = chartSources(t, src)
	for _, img := range append(slices.Clone(appImages), cacheImage) {
		f.digests[img.ref(src)] = pushTagged(t.Context(), t, src, img.repo, img.tag)[img.tag]
	}
	return f
}

// httpRepo packages each version of app into a new directory, indexes it with helm repo index
// (relative URLs), serves it and returns the directory, the repository URL and its request log.
func (f *chartFixture) httpRepo(t *testing.T, versions ...string) (string, string, *requestLog) {
	t.Helper()
	dir := t.TempDir()
	for _, v := range versions {
		f.helm.packageChart(t, f.chart, v, dir)
	}
	f.helm.must(t, "repo", "index", dir)
	url, log := chartRepo(t, dir)
	return dir, url, log
}

// chartEntry is one entry of the ImageSet's charts.
type chartEntry struct {
	repo, name, ref, version string
	// registry is values.global.registry; tag, when not empty, is values.image.tag.
	registry, tag string
	// extra lines of the entry, indented by four spaces.
	extra []string
}

// yaml writes the entry as an item of charts:.
func (e chartEntry) yaml() string {
	var b strings.Builder
	if e.ref != "" {
		fmt.Fprintf(&b, "  - ref: %s\n", e.ref)
	} else {
		fmt.Fprintf(&b, "  - repo: %s\n    name: %s\n", e.repo, e.name)
	}
	if e.version != "" {
		fmt.Fprintf(&b, "    version: '%s'\n", e.version)
	}
	fmt.Fprintf(&b, "    values:\n      global:\n        registry: '%s'\n", e.registry)
	if e.tag != "" {
		fmt.Fprintf(&b, "      image:\n        tag: '%s'\n", e.tag)
	}
	for _, l := range e.extra {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	return b.String()
}

// writeChartSet writes an ImageSet with the given charts entries alone into dir.
func writeChartSet(t *testing.T, dir string, entries ...chartEntry) string {
	t.Helper()
	body := "charts:\n"
	for _, e := range entries {
		body += e.yaml()
	}
	return writeImageSet(t, dir, body)
}

// appEntry is the entry the tests start from: app from url, chartRange, image.tag 1.0.
func (f *chartFixture) appEntry(url string) chartEntry {
	return chartEntry{repo: url, name: "app", version: chartRange, registry: f.src, tag: "1.0"}
}

// valuesFile writes the values of e as a values file for helm template -f.
func valuesFile(t *testing.T, e chartEntry) string {
	t.Helper()
	v := map[string]any{"global": map[string]any{"registry": e.registry}}
	if e.tag != "" {
		v["image"] = map[string]any{"tag": e.tag}
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// refsIn returns which of refs occur in s.
func refsIn(s string, refs []string) []string {
	var out []string
	for _, r := range refs {
		if strings.Contains(s, r) {
			out = append(out, r)
		}
	}
	return out
}

// reasonBlock returns the lines of out from the first line naming ref up to (not including) the
// next line naming another of all, at most 8 lines: the image's entry with its reasons, whatever the
// exact layout.
func reasonBlock(out, ref string, all []string) string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if !strings.Contains(l, ref) {
			continue
		}
		block := []string{l}
		for _, next := range lines[i+1 : min(len(lines), i+8)] {
			if others := refsIn(next, all); len(others) > 0 && !slices.Equal(others, []string{ref}) {
				break
			}
			if strings.TrimSpace(next) == "" {
				break
			}
			block = append(block, next)
		}
		return strings.Join(block, "\n")
	}
	return ""
}

// checkImageReasons checks out names each image with each of its reasons.
func checkImageReasons(t *testing.T, out, host string, imgs []chartImage) {
	t.Helper()
	var all []string
	for _, img := range append(slices.Clone(appImages), cacheImage) {
		all = append(all, img.ref(host))
	}
	for _, img := range imgs {
		block := reasonBlock(out, img.ref(host), all)
		if block == "" {
			t.Errorf("the output does not name %s:\n%s", img.ref(host), out)
			continue
		}
		for _, want := range img.reasons {
			if !strings.Contains(block, want) {
				t.Errorf("%s: its reason lacks %q:\n%s", img.ref(host), want, block)
			}
		}
	}
}

// jsonObjects returns every JSON object (map) in v, depth first.
func jsonObjects(v any) []map[string]any {
	var out []map[string]any
	switch x := v.(type) {
	case map[string]any:
		out = append(out, x)
		for _, y := range x {
			out = append(out, jsonObjects(y)...)
		}
	case []any:
		for _, y := range x {
			out = append(out, jsonObjects(y)...)
		}
	case []map[string]any:
		for _, y := range x {
			out = append(out, jsonObjects(y)...)
		}
	}
	return out
}

// jsonText is v marshalled, for substring checks.
func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// hasString reports whether one of m's own values is the string s.
func hasString(m map[string]any, s string) bool {
	for _, v := range m {
		if v == s {
			return true
		}
	}
	return false
}

// checkChartsJSON checks the charts part of a --format json report holds the same facts as the text:
// each version decided with its rule, each image with its reasons (in one object naming no other
// image), and cache skipped for its condition.
func checkChartsJSON(t *testing.T, stdout, host string) {
	t.Helper()
	var rep map[string]any
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("--format json: %v\n%s", err, stdout)
	}
	charts, ok := rep["charts"]
	if !ok || jsonText(charts) == "[]" || jsonText(charts) == "null" {
		t.Fatalf("--format json has no charts:\n%s", stdout)
	}
	objs := jsonObjects(charts)
	for _, d := range []struct {
		version string
		picked  bool
		rule    string
	}{{"2.0.0", false, "semver"}, {"1.5.0-rc.1", false, "semver"}, {"1.4.2", true, "semver"}, {"1.3.0", false, "semver"}} {
		found := false
		for _, m := range objs {
			if !hasString(m, d.version) {
				continue
			}
			if p, ok := m["picked"].(bool); ok {
				found = true
				if p != d.picked || !strings.Contains(jsonText(m), d.rule) {
					t.Errorf("JSON decision for %s: %s, want picked=%v with rule %s", d.version, jsonText(m), d.picked, d.rule)
				}
			}
		}
		if !found {
			t.Errorf("JSON charts has no decision (an object with \"picked\") for version %s:\n%s", d.version, jsonText(charts))
		}
	}
	checkImagesJSON(t, "--format json", charts, host, appImages)
	text := jsonText(charts)
	if strings.Contains(text, cacheImage.ref(host)) {
		t.Errorf("JSON charts names %s, which only the disabled cache subchart runs", cacheImage.ref(host))
	}
	if !strings.Contains(text, "cache.enabled") {
		t.Errorf("JSON charts does not say cache was skipped by its condition cache.enabled:\n%s", text)
	}
}

// checkImagesJSON checks that charts, the charts part of a JSON report or catalog, names each of imgs
// in an object that names no other image and holds each of its reasons.
func checkImagesJSON(t *testing.T, what string, charts any, host string, imgs []chartImage) {
	t.Helper()
	var all []string
	for _, img := range append(slices.Clone(appImages), cacheImage) {
		all = append(all, img.ref(host))
	}
	for _, img := range imgs {
		found := false
		for _, m := range jsonObjects(charts) {
			s := jsonText(m)
			if len(refsIn(s, all)) != 1 || !strings.Contains(s, img.ref(host)) {
				continue
			}
			ok := true
			for _, r := range img.reasons {
				// "initContainers[0]" may be a field and an index in JSON.
				ok = ok && (strings.Contains(s, r) || strings.HasSuffix(r, "[0]") && strings.Contains(s, `"`+strings.TrimSuffix(r, "[0]")+`"`))
			}
			found = found || ok
		}
		if !found {
			t.Errorf("%s: the charts have no object naming %s alone with its reasons %q:\n%s", what, img.ref(host), img.reasons, jsonText(charts))
		}
	}
}

// catalogCharts returns the charts of the archive's catalog at path, as JSON values, and fails the
// test when it has none.
func catalogCharts(ctx context.Context, t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := json.Marshal(readCatalog(ctx, t, path))
	if err != nil {
		t.Fatal(err)
	}
	var cat struct {
		Charts []map[string]any `json:"charts"`
	}
	if err := json.Unmarshal(b, &cat); err != nil {
		t.Fatal(err)
	}
	if len(cat.Charts) == 0 {
		t.Fatalf("the catalog of %s has no charts:\n%s", path, b)
	}
	return cat.Charts
}

// TestChartsDryRunVersionsAndReasons: save --dry-run of app from an HTTP chart repository with the
// range '>=1.4.0 <2.0.0' lists each version with the rule that decided it, as for repositories:
// entries, then each image app 1.4.2 runs with its reason (the template, kind and container list, or
// the helm.sh/images annotation), and the cache subchart skipped for its condition; --format json
// says the same under "charts". The cache image is not in the plan.
func TestChartsDryRunVersionsAndReasons(t *testing.T) {
	ctx := t.Context()
	f := newChartFixture(t, registries.StartGGCR(t))
	_, url, log := f.httpRepo(t, chartVersions...)
	set := writeChartSet(t, t.TempDir(), f.appEntry(url))

	res := mustRun(ctx, t, "save", "-c", set, "--dry-run")
	for _, want := range []string{
		"2.0.0 dropped: semver " + chartRange,
		"1.5.0-rc.1 dropped: semver",
		"1.4.2 picked: semver " + chartRange,
		"1.3.0 dropped: semver",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("dry run lacks %q:\n%s", want, res.stdout)
		}
	}
	checkImageReasons(t, res.stdout, f.src, appImages)
	if !strings.Contains(res.stdout, "app/cache") || !strings.Contains(res.stdout, "cache.enabled = false") {
		t.Errorf("dry run does not report app/cache skipped (condition cache.enabled = false):\n%s", res.stdout)
	}
	if strings.Contains(res.stdout, cacheImage.ref(f.src)) {
		t.Errorf("dry run names %s, which only the disabled cache subchart runs:\n%s", cacheImage.ref(f.src), res.stdout)
	}
	for _, v := range []string{"1.3.0", "1.5.0-rc.1", "2.0.0"} {
		if n := log.count("/stable/app-" + v + ".tgz"); n != 0 {
			t.Errorf("the dry run fetched app %s, which the range drops (%d times)\n%s", v, n, log)
		}
	}

	res = mustRun(ctx, t, "save", "-c", set, "--dry-run", "--format", "json")
	checkChartsJSON(t, res.stdout, f.src)
}

// TestChartsSaveLoadHelmPull: app 1.4.2, saved from an HTTP chart repository and loaded into a site
// registry, is an OCI chart helm pull takes, with the bytes of the repository's .tgz; helm template
// of the pulled chart (same values, the site's Kubernetes version) names only images that load put
// at the site, under the mapping it wrote. The repository served index.yaml and the picked .tgz once
// each, and no other version.
func TestChartsSaveLoadHelmPull(t *testing.T) {
	ctx := t.Context()
	f := newChartFixture(t, registries.StartGGCR(t))
	repoDir, url, log := f.httpRepo(t, chartVersions...)
	site := registries.StartDistribution(ctx, t)
	work := t.TempDir()
	entry := f.appEntry(url)
	set := writeChartSet(t, work, entry)
	arch := filepath.Join(work, "archive")

	mustRun(ctx, t, "save", "-c", set, "-o", arch)
	if n := log.count("/stable/index.yaml"); n != 1 {
		t.Errorf("save fetched index.yaml %d times, want once\n%s", n, log)
	}
	if n := log.count("/stable/app-1.4.2.tgz"); n != 1 {
		t.Errorf("save fetched app-1.4.2.tgz %d times, want once\n%s", n, log)
	}
	for _, v := range []string{"1.3.0", "1.5.0-rc.1", "2.0.0"} {
		if n := log.count("/stable/app-" + v + ".tgz"); n != 0 {
			t.Errorf("save fetched app %s, which the range drops\n%s", v, log)
		}
	}
	// The archive holds the chart under its source name, HOST:PORT/URLPATH/NAME:VERSION, and each
	// image, but not the image of the disabled cache subchart.
	chartSource := strings.TrimPrefix(url, "http://") + "/app:1.4.2"
	store, err := oci.NewFromFS(ctx, os.DirFS(arch))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Resolve(ctx, chartSource); err != nil {
		t.Errorf("the archive has no %s: %v", chartSource, err)
	}
	for _, img := range appImages {
		if d, err := store.Resolve(ctx, img.ref(f.src)); err != nil || d.Digest != f.digests[img.ref(f.src)] {
			t.Errorf("the archive has %s at %v (%v), want %s", img.ref(f.src), d.Digest, err, f.digests[img.ref(f.src)])
		}
	}
	if _, err := store.Resolve(ctx, cacheImage.ref(f.src)); err == nil {
		t.Errorf("the archive has %s, which only the disabled cache subchart runs", cacheImage.ref(f.src))
	}
	// The catalog names the chart, its artifact, the .tgz's digest (index.yaml's), and each image
	// with its reasons.
	charts := catalogCharts(ctx, t, arch)
	checkImagesJSON(t, "catalog", charts, f.src, appImages)
	artifact, _ := store.Resolve(ctx, chartSource)
	if len(charts) != 1 || charts[0]["source"] != chartSource || charts[0]["version"] != "1.4.2" ||
		charts[0]["digest"] != artifact.Digest.String() || charts[0]["chartDigest"] != "sha256:"+indexDigest(t, repoDir, "1.4.2") {
		t.Errorf("catalog charts: %s\nwant app 1.4.2 at %s, its artifact %s, chartDigest sha256:%s", jsonText(charts), chartSource, artifact.Digest, indexDigest(t, repoDir, "1.4.2"))
	}

	siteFiles := filepath.Join(work, "site-files")
	to := site + "/mirror"
	mustRun(ctx, t, "load", arch, "--to", to, "--site-files", siteFiles)
	mapping, err := sitefiles.ReadMapping(siteFiles)
	if err != nil {
		t.Fatal(err)
	}
	chartTarget := to + "/stable/app"
	if m, ok := mapped(mapping, chartSource); !ok || m.Target != chartTarget {
		t.Errorf("mapping.txt maps %s to %+v (%v), want %s", chartSource, m, ok, chartTarget)
	}

	// helm pull from the site gets the repository's .tgz byte for byte.
	pulled := t.TempDir()
	f.helm.must(t, "pull", "oci://"+chartTarget, "--version", "1.4.2", "--plain-http", "-d", pulled)
	got, err := os.ReadFile(filepath.Join(pulled, "app-1.4.2.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(repoDir, "app-1.4.2.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("helm pull from the site gave %d bytes (sha256 %x), the repository serves %d (sha256 %x)", len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}

	// What the pulled chart runs at the site is there: every image helm template renders, and the
	// image its helm.sh/images annotation names, is mapped to a manifest present at the site.
	tgz := filepath.Join(pulled, "app-1.4.2.tgz")
	rendered := renderedImages(t, f.helm.must(t, "template", "release", tgz, "-f", valuesFile(t, entry), "--kube-version", "1.31.0"))
	annotated := annotatedImages(t, f.helm.must(t, "show", "chart", tgz))
	runs := append(rendered, annotated...)
	slices.Sort(runs)
	var wantRuns []string
	for _, img := range appImages {
		wantRuns = append(wantRuns, img.ref(f.src))
	}
	slices.Sort(wantRuns)
	if !slices.Equal(runs, wantRuns) {
		t.Errorf("the pulled chart runs %v, want %v", runs, wantRuns)
	}
	for _, ref := range runs {
		m, ok := mapped(mapping, ref)
		if !ok {
			t.Errorf("%s, which the pulled chart runs, is not in mapping.txt", ref)
			continue
		}
		if m.Digest != f.digests[ref] {
			t.Errorf("mapping.txt maps %s to %s, the source has %s", ref, m.Digest, f.digests[ref])
		}
		path, ok := strings.CutPrefix(m.Target, site+"/")
		if !ok {
			t.Errorf("mapping.txt maps %s to %s, not at the site %s", ref, m.Target, site)
			continue
		}
		if status, _, _ := get(ctx, t, http.MethodHead, site, "/v2/"+path+"/manifests/"+m.Digest.String()); status != http.StatusOK {
			t.Errorf("%s: %s@%s is not at the site (HEAD status %d)", ref, m.Target, m.Digest, status)
		}
	}
	if _, ok := mapped(mapping, cacheImage.ref(f.src)); ok {
		t.Errorf("mapping.txt names %s, which only the disabled cache subchart runs", cacheImage.ref(f.src))
	}
}

// mapped returns the mapping of the source reference ref.
func mapped(ms []sitefiles.Mapping, ref string) (sitefiles.Mapping, bool) {
	for _, m := range ms {
		if m.Source == ref || (m.Tag != "" && m.SourceRepository+":"+m.Tag == ref) {
			return m, true
		}
	}
	return sitefiles.Mapping{}, false
}

// renderedImages returns, sorted and distinct, the images of every container, init container and
// ephemeral container in helm template's output.
func renderedImages(t *testing.T, out string) []string {
	t.Helper()
	var images []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, y := range x {
				if k == "containers" || k == "initContainers" || k == "ephemeralContainers" {
					list, _ := y.([]any)
					for _, c := range list {
						if m, ok := c.(map[string]any); ok {
							if img, ok := m["image"].(string); ok {
								images = append(images, img)
							}
						}
					}
				}
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	for _, doc := range strings.Split(out, "\n---") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("helm template output: %v\n%s", err, doc)
		}
		walk(obj)
	}
	slices.Sort(images)
	return slices.Compact(images)
}

// annotatedImages returns the images of the helm.sh/images annotation of helm show chart's output.
func annotatedImages(t *testing.T, chartYAML string) []string {
	t.Helper()
	var meta struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := yaml.Unmarshal([]byte(chartYAML), &meta); err != nil {
		t.Fatalf("helm show chart: %v\n%s", err, chartYAML)
	}
	var list []struct{ Name, Image string }
	if err := yaml.Unmarshal([]byte(meta.Annotations["helm.sh/images"]), &list); err != nil || len(list) == 0 {
		t.Fatalf("helm.sh/images of the pulled chart: %v\n%s", err, chartYAML)
	}
	var out []string
	for _, e := range list {
		out = append(out, e.Image)
	}
	return out
}

// checkNothingWritten fails unless dir is absent or empty.
func checkNothingWritten(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("a refused save wrote %s: %v", dir, names)
	}
}

// TestChartsRequiredValue: without values.image.tag, which app's deployment requires, save is
// refused naming the value and the ImageSet field to set, and writes nothing. The exit status is 2,
// a problem with the input (README: 1 is kept for a failed check, such as a digest that does not
// match).
func TestChartsRequiredValue(t *testing.T) {
	ctx := t.Context()
	f := newChartFixture(t, registries.StartGGCR(t))
	_, url, _ := f.httpRepo(t, "1.4.2")
	work := t.TempDir()
	entry := f.appEntry(url)
	entry.tag = ""
	set := writeChartSet(t, work, entry)
	out := filepath.Join(work, "archive")
	res := run(ctx, t, "save", "-c", set, "-o", out)
	if res.code != 2 {
		t.Errorf("save without image.tag: exit %d, want 2\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	// docs/helm-charts.md section 4.3: helm's location (line 25 of testdata's deployment.yaml), the
	// author's message, and the value path as the ImageSet field to set.
	for _, want := range []string{"app/templates/deployment.yaml:25", "image.tag is required", "charts[0].values.image.tag"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("save without image.tag: stderr lacks %q:\n%s", want, res.stderr)
		}
	}
	checkNothingWritten(t, out)
}

// TestChartsKubeVersion: app requires Kubernetes >=1.28.0-0; with kubeVersion 1.27.0 save is refused
// naming the chart's range and the field, with 1.31.0 it passes.
func TestChartsKubeVersion(t *testing.T) {
	ctx := t.Context()
	f := newChartFixture(t, registries.StartGGCR(t))
	_, url, _ := f.httpRepo(t, "1.4.2")

	old := f.appEntry(url)
	old.extra = []string{"kubeVersion: 1.27.0"}
	work := t.TempDir()
	out := filepath.Join(work, "archive")
	res := run(ctx, t, "save", "-c", writeChartSet(t, work, old), "-o", out)
	// The design gives no exit status for this refusal (docs/helm-charts.md section 4.3): not 0.
	if res.code == 0 {
		t.Errorf("kubeVersion 1.27.0: exit 0, want refused\n%s\n%s", res.stdout, res.stderr)
	}
	for _, want := range []string{">=1.28.0-0", "charts[0].kubeVersion", "1.27.0"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("kubeVersion 1.27.0: stderr lacks %q:\n%s", want, res.stderr)
		}
	}
	checkNothingWritten(t, out)

	current := f.appEntry(url)
	current.extra = []string{"kubeVersion: 1.31.0"}
	work = t.TempDir()
	arch := filepath.Join(work, "archive")
	mustRun(ctx, t, "save", "-c", writeChartSet(t, work, current), "-o", arch)
	charts := catalogCharts(ctx, t, arch)
	if len(charts) != 1 || charts[0]["kubeVersion"] != "1.31.0" {
		t.Errorf("kubeVersion 1.31.0: the catalog's charts %s, want app recorded as rendered for 1.31.0", jsonText(charts))
	}
	checkImagesJSON(t, "catalog", charts, f.src, appImages)
}

// TestChartsDisabledSubchart: includeDisabled: [cache] renders the cache subchart its condition
// disables, so its image is in the plan, with that reason, and in the archive.
func TestChartsDisabledSubchart(t *testing.T) {
	ctx := t.Context()
	f := newChartFixture(t, registries.StartGGCR(t))
	_, url, _ := f.httpRepo(t, "1.4.2")
	entry := f.appEntry(url)
	entry.extra = []string{"includeDisabled: [cache]"}
	work := t.TempDir()
	set := writeChartSet(t, work, entry)

	res := mustRun(ctx, t, "save", "-c", set, "--dry-run")
	checkImageReasons(t, res.stdout, f.src, append(slices.Clone(appImages), cacheImage))

	arch := filepath.Join(work, "archive")
	mustRun(ctx, t, "save", "-c", set, "-o", arch)
	store, err := oci.NewFromFS(ctx, os.DirFS(arch))
	if err != nil {
		t.Fatal(err)
	}
	ref := cacheImage.ref(f.src)
	if d, err := store.Resolve(ctx, ref); err != nil || d.Digest != f.digests[ref] {
		t.Errorf("the archive has %s at %v (%v), want %s", ref, d.Digest, err, f.digests[ref])
	}
}

// TestChartsAliasedSubchart: the images of postgres-lite, which app aliases db, are found in its
// StatefulSet and in its CronJob, and their reasons name the subchart by its path under the alias
// (app/db), by the chart behind the alias (postgres-lite 12.1.0, docs/helm-charts.md section 4.2:
// "app/db (chart postgres-lite 12.1.0, alias db)"), and the template by its aliased path.
func TestChartsAliasedSubchart(t *testing.T) {
	ctx := t.Context()
	f := newChartFixture(t, registries.StartGGCR(t))
	_, url, _ := f.httpRepo(t, "1.4.2")
	res := mustRun(ctx, t, "save", "-c", writeChartSet(t, t.TempDir(), f.appEntry(url)), "--dry-run")
	var aliased []chartImage
	for _, img := range appImages {
		if img.repo == "team/db" || img.repo == "team/backup" {
			aliased = append(aliased, chartImage{img.repo, img.tag, append(slices.Clone(img.reasons), "postgres-lite", "12.1.0")})
		}
	}
	checkImageReasons(t, res.stdout, f.src, aliased)
}

// TestChartsDigestMismatchRefused: app-1.4.2.tgz re-packed after helm repo index no longer has the
// digest index.yaml gives (helm itself would install it: it never checks); save refuses it naming both
// digests and writes nothing.
func TestChartsDigestMismatchRefused(t *testing.T) {
	ctx := t.Context()
	f := newChartFixture(t, registries.StartGGCR(t))
	repoDir, url, _ := f.httpRepo(t, "1.4.2")
	indexed := sha256File(t, filepath.Join(repoDir, "app-1.4.2.tgz"))
	f.helm.packageChart(t, f.chart, "1.4.2", repoDir, "--app-version", "1.0-tampered")
	served := sha256File(t, filepath.Join(repoDir, "app-1.4.2.tgz"))
	if served == indexed {
		t.Fatalf("re-packing did not change app-1.4.2.tgz (sha256 %s)", served)
	}
	if idx := indexDigest(t, repoDir, "1.4.2"); idx != indexed {
		t.Fatalf("index.yaml gives %s for 1.4.2, the indexed .tgz is %s", idx, indexed)
	}

	work := t.TempDir()
	out := filepath.Join(work, "archive")
	res := run(ctx, t, "save", "-c", writeChartSet(t, work, f.appEntry(url)), "-o", out)
	if res.code != 1 {
		t.Errorf("save of a chart whose digest does not match index.yaml: exit %d, want 1\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{served, indexed, "index.yaml"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q (the served chart's sha256 is %s, index.yaml says %s):\n%s", want, served, indexed, res.stderr)
		}
	}
	checkNothingWritten(t, out)
}

// sha256File returns the hex sha256 of the file at p.
func sha256File(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// helmIndex is the part of index.yaml the tests read and edit.
type helmIndex struct {
	APIVersion string                      `json:"apiVersion"`
	Entries    map[string][]map[string]any `json:"entries"`
	Generated  string                      `json:"generated"`
}

func readHelmIndex(t *testing.T, dir string) helmIndex {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "index.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var idx helmIndex
	if err := yaml.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	return idx
}

// indexDigest returns the digest index.yaml in dir gives for app's version.
func indexDigest(t *testing.T, dir, version string) string {
	t.Helper()
	for _, e := range readHelmIndex(t, dir).Entries["app"] {
		if e["version"] == version {
			d, _ := e["digest"].(string)
			return strings.TrimPrefix(d, "sha256:")
		}
	}
	t.Fatalf("index.yaml in %s has no app %s", dir, version)
	return ""
}

// setIndexCreated sets the created time of app's version in index.yaml in dir.
func setIndexCreated(t *testing.T, dir, version, created string) {
	t.Helper()
	idx := readHelmIndex(t, dir)
	found := false
	for _, e := range idx.Entries["app"] {
		if e["version"] == version {
			e["created"] = created
			found = true
		}
	}
	if !found {
		t.Fatalf("index.yaml in %s has no app %s", dir, version)
	}
	b, err := yaml.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestChartsOCI: app 1.4.2 pushed with helm push to the source registry, named by ref: oci://, is
// saved and loaded with its manifest digest unchanged, and the images it runs are at the site.
func TestChartsOCI(t *testing.T) {
	ctx := t.Context()
	src := registries.StartDistribution(ctx, t)
	f := newChartFixture(t, src)
	tgz := f.helm.packageChart(t, f.chart, "1.4.2", t.TempDir())
	f.helm.must(t, "push", tgz, "oci://"+src+"/charts", "--plain-http")
	var m ocispec.Manifest
	pushed := manifest(ctx, t, src, "charts/app", "1.4.2", &m)
	if m.Config.MediaType != "application/vnd.cncf.helm.config.v1+json" {
		t.Fatalf("helm push wrote a manifest whose config is %s", m.Config.MediaType)
	}

	site := registries.StartDistribution(ctx, t)
	work := t.TempDir()
	entry := chartEntry{ref: "oci://" + src + "/charts/app:1.4.2", registry: src, tag: "1.0"}
	set := writeChartSet(t, work, entry)
	res := mustRun(ctx, t, "save", "-c", set, "--dry-run")
	checkImageReasons(t, res.stdout, src, appImages)

	arch := filepath.Join(work, "archive")
	mustRun(ctx, t, "save", "-c", set, "-o", arch)
	siteFiles := filepath.Join(work, "site-files")
	to := site + "/mirror"
	mustRun(ctx, t, "load", arch, "--to", to, "--site-files", siteFiles)
	if got := manifest(ctx, t, site, "mirror/charts/app", "1.4.2", &ocispec.Manifest{}); got != pushed {
		t.Errorf("the chart at the site is %s, helm push made %s", got, pushed)
	}
	mapping, err := sitefiles.ReadMapping(siteFiles)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range appImages {
		ref := img.ref(src)
		mp, ok := mapped(mapping, ref)
		if !ok || mp.Digest != f.digests[ref] {
			t.Errorf("mapping.txt maps %s to %+v (%v), want digest %s", ref, mp, ok, f.digests[ref])
			continue
		}
		path, _ := strings.CutPrefix(mp.Target, site+"/")
		if status, _, _ := get(ctx, t, http.MethodHead, site, "/v2/"+path+"/manifests/"+mp.Digest.String()); status != http.StatusOK {
			t.Errorf("%s: %s@%s is not at the site (HEAD status %d)", ref, mp.Target, mp.Digest, status)
		}
	}
	f.helm.must(t, "pull", "oci://"+to+"/charts/app", "--version", "1.4.2", "--plain-http", "-d", t.TempDir())
}

// TestChartsMatchHelmPush: the artifact airlock builds for app 1.4.2 from an HTTP repository whose
// index.yaml says it was created at T is byte for byte the one `helm push` makes of the same .tgz
// whose mtime is T, in UTC (helm push takes the file's mtime in local time for
// org.opencontainers.image.created).
func TestChartsMatchHelmPush(t *testing.T) {
	ctx := t.Context()
	src := registries.StartDistribution(ctx, t)
	f := newChartFixture(t, src)
	const created = "2026-01-02T03:04:05Z"
	when, err := time.Parse(time.RFC3339, created)
	if err != nil {
		t.Fatal(err)
	}
	repoDir := t.TempDir()
	tgz := f.helm.packageChart(t, f.chart, "1.4.2", repoDir)
	if err := os.Chtimes(tgz, when, when); err != nil { // touch -d 2026-01-02T03:04:05Z
		t.Fatal(err)
	}
	if out, err := f.helm.run(ctx, []string{"TZ=UTC"}, "push", tgz, "oci://"+src+"/pushed", "--plain-http"); err != nil {
		t.Fatalf("helm push: %v\n%s", err, out)
	}
	var pushedManifest ocispec.Manifest
	pushed := manifest(ctx, t, src, "pushed/app", "1.4.2", &pushedManifest)
	if got := pushedManifest.Annotations[ocispec.AnnotationCreated]; got != created {
		t.Fatalf("helm push wrote created %q, want %q (TZ=UTC, mtime %s)", got, created, created)
	}
	f.helm.must(t, "repo", "index", repoDir)
	setIndexCreated(t, repoDir, "1.4.2", created)
	url, _ := chartRepo(t, repoDir)

	entry := f.appEntry(url)
	entry.version = "1.4.2"
	work := t.TempDir()
	arch := filepath.Join(work, "archive")
	mustRun(ctx, t, "save", "-c", writeChartSet(t, work, entry), "-o", arch)
	store, err := oci.NewFromFS(ctx, os.DirFS(arch))
	if err != nil {
		t.Fatal(err)
	}
	chartSource := strings.TrimPrefix(url, "http://") + "/app:1.4.2"
	d, err := store.Resolve(ctx, chartSource)
	if err != nil {
		t.Fatalf("the archive has no %s: %v", chartSource, err)
	}
	if d.Digest != pushed {
		_, _, want := get(ctx, t, http.MethodGet, src, "/v2/pushed/app/manifests/"+pushed.String())
		got, _ := os.ReadFile(filepath.Join(arch, "blobs", d.Digest.Algorithm().String(), d.Digest.Encoded()))
		t.Errorf("airlock's chart artifact is %s, helm push made %s\nairlock:   %s\nhelm push: %s", d.Digest, pushed, got, want)
	}
}
