package plan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"

	"airlock.dev/airlock/charts"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/registry"
	"airlock.dev/airlock/vocab"
)

// chartRepo serves charts/testdata/charts/app packed as app-1.4.2.tgz with an index.yaml giving
// indexDigest (the real sha256 when empty), and returns the repository URL.
func chartRepo(t *testing.T, indexDigest string) (string, []byte) {
	t.Helper()
	ch, err := loader.LoadDir("../../charts/testdata/charts/app")
	if err != nil {
		t.Fatal(err)
	}
	file, err := chartutil.Save(ch, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tgz, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if indexDigest == "" {
		sum := sha256.Sum256(tgz)
		indexDigest = hex.EncodeToString(sum[:])
	}
	index := fmt.Sprintf(`apiVersion: v1
entries:
  app:
  - apiVersion: v2
    name: app
    version: 1.4.2
    kubeVersion: '>=1.28.0-0'
    created: "2026-01-02T03:04:05Z"
    digest: "%s"
    urls: [app-1.4.2.tgz]
  - apiVersion: v2
    name: app
    version: 2.0.0
    digest: "%s"
    urls: [app-2.0.0.tgz]
`, indexDigest, indexDigest)
	mux := http.NewServeMux()
	mux.HandleFunc("/stable/index.yaml", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, index) })
	mux.HandleFunc("/stable/app-1.4.2.tgz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(tgz) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/stable", tgz
}

func chartImageSet(t *testing.T, repo, values string) *config.ImageSet {
	t.Helper()
	yml := fmt.Sprintf("apiVersion: airlock.dev/v1alpha1\nkind: ImageSet\ncharts:\n  - repo: %s\n    name: app\n    version: '<2.0.0'\n%s", repo, values)
	dir := t.TempDir()
	set, err := config.Parse(filepath.Join(dir, "imageset.yaml"), []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func chartPlanner(t *testing.T) *Planner {
	t.Helper()
	regs, err := registry.New(registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &Planner{Registries: regs}
}

// TestPlanChartsHTTP: a charts entry picks 1.4.2 (2.0.0 is outside the range), makes the artifact
// helm push would, named after the repository URL, and adds every image the chart runs with why.
func TestPlanChartsHTTP(t *testing.T) {
	repo, tgz := chartRepo(t, "")
	set := chartImageSet(t, repo, "    values: {image: {tag: '1.0'}, replicas: 1.10}\n    kubeVersion: 1.31.0\n")
	cs := planCharts(context.Background(), set, chartPlanner(t), PlanOptions{Log: discard()})
	if len(cs.problems) > 0 {
		t.Fatal(cs.problems[0].Reason)
	}
	rep := cs.reports[0]
	if w := rep.Warnings; len(w) != 1 || !strings.HasPrefix(w[0], "charts[0].values.replicas: 1.10 is 1.1 to Helm") {
		t.Errorf("warnings %q, want the unquoted 1.10 named by its field", w)
	}
	if rep.Charts[0].Provenance {
		t.Errorf("provenance recorded for a chart whose repository serves no .prov")
	}
	if rep.Listed != 2 || len(rep.Charts) != 1 || len(cs.plans) != 1 {
		t.Fatalf("listed %d, charts %d, plans %d; want 2, 1, 1", rep.Listed, len(rep.Charts), len(cs.plans))
	}
	var decisions []string
	for _, d := range rep.Versions {
		decisions = append(decisions, d.String())
	}
	if got := strings.Join(decisions, "; "); !strings.Contains(got, "2.0.0 dropped: semver <2.0.0") || !strings.Contains(got, "1.4.2 picked") {
		t.Errorf("decisions %q", got)
	}
	p := cs.plans[0]
	host := strings.TrimPrefix(strings.TrimSuffix(repo, "/stable"), "http://")
	if want := host + "/stable/app:1.4.2"; p.Source != want || !p.Made {
		t.Errorf("plan %s (made %v), want %s made", p.Source, p.Made, want)
	}
	art, err := charts.NewArtifact(tgz, nil, mustTime(t, "2026-01-02T03:04:05Z"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Root.Desc.Digest != art.Desc.Digest || rep.Charts[0].Digest != art.Desc.Digest {
		t.Errorf("artifact %s, catalog %s; helm push's would be %s", p.Root.Desc.Digest, rep.Charts[0].Digest, art.Desc.Digest)
	}
	found := map[string]string{}
	for _, img := range rep.Charts[0].Images {
		found[img.Source] = strings.Join(img.Reasons, "; ")
	}
	for _, want := range []string{"src.example/team/init:1.0", "src.example/team/app:1.0", "src.example/team/operand:1.0"} {
		if found[want] == "" {
			t.Errorf("image %s not found with a reason; found %v", want, found)
		}
	}
	if !strings.Contains(found["src.example/team/init:1.0"], "initContainers[0]") {
		t.Errorf("init reason %q", found["src.example/team/init:1.0"])
	}
	if len(cs.images) != len(found) {
		t.Errorf("%d images joined the set, the catalog names %d", len(cs.images), len(found))
	}
	if s := strings.Join(rep.Charts[0].Skipped, ","); !strings.Contains(s, "cache.enabled") {
		t.Errorf("skipped %q, want the cache subchart with its condition", s)
	}
}

// TestPlanChartsRefused: a chart whose bytes are not what index.yaml says is a failed check; a chart
// that needs a value names the ImageSet field that sets it; one whose kubeVersion excludes the
// cluster's names charts[0].kubeVersion.
func TestPlanChartsRefused(t *testing.T) {
	for _, tc := range []struct {
		name, indexDigest, values, want string
		check                           bool
	}{
		{"digest", strings.Repeat("0", 64), "    values: {image: {tag: '1.0'}}\n", "index.yaml says " + strings.Repeat("0", 64), true},
		{"required", "", "", "set charts[0].values.image.tag in the ImageSet", false},
		{"kubeVersion", "", "    values: {image: {tag: '1.0'}}\n    kubeVersion: 1.27.0\n", "set charts[0].kubeVersion", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo, _ := chartRepo(t, tc.indexDigest)
			cs := planCharts(context.Background(), chartImageSet(t, repo, tc.values), chartPlanner(t), PlanOptions{Log: discard()})
			if len(cs.problems) != 1 {
				t.Fatalf("%d problems, want 1", len(cs.problems))
			}
			p := cs.problems[0]
			if !strings.Contains(p.Reason, tc.want) || !strings.Contains(p.Reason, "charts[0]") {
				t.Errorf("reason %q, want %q", p.Reason, tc.want)
			}
			if errors.Is(p.Err, ErrCheckFailed) != tc.check {
				t.Errorf("failed check %v, want %v", errors.Is(p.Err, ErrCheckFailed), tc.check)
			}
			if len(cs.images) != 0 {
				t.Errorf("%d images joined the set from a chart that was refused", len(cs.images))
			}
		})
	}
}

func TestChartLayerRefusesNonCharts(t *testing.T) {
	img := config.Image{Registry: "r.example", Repository: "x", Tag: "1"}
	_, err := chartLayer(img, []byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json"},"layers":[]}`))
	if err == nil || !strings.Contains(err.Error(), "is not a Helm chart") {
		t.Errorf("got %v", err)
	}
	_, err = chartLayer(img, []byte(`{"schemaVersion":2,"config":{"mediaType":"`+vocab.HelmConfigMediaType+`"},"layers":[]}`))
	if err == nil || !strings.Contains(err.Error(), "no chart content layer") {
		t.Errorf("got %v", err)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestPlanChartsBlocked: a blocked rule that matches a chart keeps it out with its rule, and the
// images it runs with it: the chart is not fetched or rendered.
func TestPlanChartsBlocked(t *testing.T) {
	repo, _ := chartRepo(t, "")
	set := chartImageSet(t, repo, "    values: {image: {tag: '1.0'}}\nblocked: ['/stable/app:1\\.4\\.2$']\n")
	cs := planCharts(context.Background(), set, chartPlanner(t), PlanOptions{Log: discard()})
	if len(cs.problems) > 0 {
		t.Fatal(cs.problems[0].Reason)
	}
	if len(cs.blocked) != 1 || !strings.HasSuffix(cs.blocked[0].Source, "/stable/app:1.4.2") || cs.blocked[0].Rule != `/stable/app:1\.4\.2$` {
		t.Fatalf("blocked %+v, want the chart with its rule", cs.blocked)
	}
	if len(cs.plans) != 0 || len(cs.images) != 0 {
		t.Errorf("%d plans and %d images from a blocked chart", len(cs.plans), len(cs.images))
	}
	if d := cs.reports[0].Versions; len(d) != 2 || d[1].String() != `1.4.2 dropped: blocked /stable/app:1\.4\.2$` {
		t.Errorf("decisions %v, want 1.4.2 dropped by the blocked rule", d)
	}
}

// TestPlanChartsBlockedImage: an image a chart runs that a blocked rule keeps out is marked blocked
// under the chart, and the blocked entry names the chart.
func TestPlanChartsBlockedImage(t *testing.T) {
	repo, _ := chartRepo(t, "")
	set := chartImageSet(t, repo, "    values: {image: {tag: '1.0'}}\n")
	cs := planCharts(context.Background(), set, chartPlanner(t), PlanOptions{Log: discard()})
	if by := cs.markBlocked("src.example/team/backup:1.0", "team/backup"); len(by) != 1 || by[0] != "app 1.4.2" {
		t.Errorf("blocked image run by %v, want [app 1.4.2]", by)
	}
	for _, img := range cs.reports[0].Charts[0].Images {
		if want := map[bool]string{true: "team/backup"}[img.Source == "src.example/team/backup:1.0"]; img.Blocked != want {
			t.Errorf("%s blocked %q, want %q", img.Source, img.Blocked, want)
		}
	}
}

// TestPlanChartsIndexReadOnce: two entries of one repository read its index.yaml once, and each
// reports what it found.
func TestPlanChartsIndexReadOnce(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	set := chartImageSet(t, srv.URL, "  - repo: "+srv.URL+"\n    name: other\n")
	cs := planCharts(context.Background(), set, chartPlanner(t), PlanOptions{Log: discard()})
	if n := hits.Load(); n != 1 {
		t.Errorf("index.yaml read %d times, want 1", n)
	}
	if len(cs.problems) != 2 || !strings.Contains(cs.problems[1].Reason, "charts[1]") || !strings.Contains(cs.problems[1].Reason, "404") {
		t.Errorf("problems %+v, want one per entry naming the 404", cs.problems)
	}
}

// TestChartSourceNames: a chart is named after its repository URL; a host that would read as a Docker
// Hub namespace is refused, naming what it would read as.
func TestChartSourceNames(t *testing.T) {
	for _, tc := range []struct{ repo, version, want, err string }{
		{"https://charts.example.com/stable/", "1.4.2+build.1", "charts.example.com/stable/app:1.4.2_build.1", ""},
		{"http://127.0.0.1:8080", "1.0.0", "127.0.0.1:8080/app:1.0.0", ""},
		{"http://Charts.Example.com:8443/a/b", "2.0.0", "charts.example.com:8443/a/b/app:2.0.0", ""},
		{"http://chartmuseum/", "1.0.0", "", "reads as docker.io/chartmuseum/app:1.0.0"},
	} {
		img, err := ChartSource(config.Chart{Repo: tc.repo, Name: "app"}, tc.version)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: got %v, want an error with %q", tc.repo, err, tc.err)
		case tc.err == "" && (err != nil || img.String() != tc.want):
			t.Errorf("%s: got %s, %v; want %s", tc.repo, img.String(), err, tc.want)
		}
	}
}

// TestPlanChartsPinnedDigest: an entry that pins the chart's digest passes when the chart is that one
// and is a failed check when it is not; an entry that picks no version warns about nothing.
func TestPlanChartsPinnedDigest(t *testing.T) {
	repo, tgz := chartRepo(t, "")
	sum := sha256.Sum256(tgz)
	good := hex.EncodeToString(sum[:])
	for _, tc := range []struct {
		pin  string
		fail bool
	}{{good, false}, {"sha256:" + good, false}, {strings.Repeat("1", 64), true}} {
		set := chartImageSet(t, repo, "    values: {image: {tag: '1.0'}}\n")
		set.Charts[0].Version, set.Charts[0].Digest = "1.4.2", tc.pin
		cs := planCharts(context.Background(), set, chartPlanner(t), PlanOptions{Log: discard()})
		switch {
		case tc.fail && (len(cs.problems) != 1 || !errors.Is(cs.problems[0].Err, ErrCheckFailed) || !strings.Contains(cs.problems[0].Reason, "charts[].digest pins")):
			t.Errorf("pin %s: problems %+v, want a failed check naming the pin", tc.pin, cs.problems)
		case !tc.fail && (len(cs.problems) != 0 || len(cs.plans) != 1):
			t.Errorf("pin %s: problems %+v, %d plans; want the chart", tc.pin, cs.problems, len(cs.plans))
		}
	}
	set := chartImageSet(t, repo, "    values: {replicas: 1.10}\n")
	set.Charts[0].Version = ">=9.0.0"
	cs := planCharts(context.Background(), set, chartPlanner(t), PlanOptions{Log: discard()})
	if len(cs.reports[0].Charts) != 0 || len(cs.reports[0].Warnings) != 0 {
		t.Errorf("no version picked: charts %+v, warnings %q; want neither", cs.reports[0].Charts, cs.reports[0].Warnings)
	}
}
