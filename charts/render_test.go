package charts

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
)

// renderPackDir packs a chart source directory into .tgz bytes, as `helm package` does.
func renderPackDir(t *testing.T, dir string) []byte {
	t.Helper()
	ch, err := loader.LoadDir(dir)
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
	return tgz
}

// renderPackFiles writes a chart's files (path in the chart → content) and packs them.
func renderPackFiles(t *testing.T, files map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, "chart", filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return renderPackDir(t, filepath.Join(dir, "chart"))
}

// renderReasons is each image's reasons as Reason.String prints them.
func renderReasons(r *Rendered) map[string][]string {
	out := map[string][]string{}
	for _, img := range r.Images {
		for _, reason := range img.Reasons {
			out[img.Ref] = append(out[img.Ref], reason.String())
		}
	}
	return out
}

func renderApp(t *testing.T, o RenderOptions) (*Rendered, error) {
	t.Helper()
	return Render(context.Background(), renderPackDir(t, "testdata/charts/app"), o)
}

var appTag = []byte("image:\n  tag: '1.0'\n")

// appReasons is every image of testdata/charts/app with the tag set and the cache disabled.
var appReasons = map[string][]string{
	"src.example/team/app:1.0":     {"app 1.4.2: app/templates/deployment.yaml Deployment/release-app containers[0] (app)"},
	"src.example/team/backup:1.0":  {"app/db (chart postgres-lite 12.1.0, alias db): app/charts/db/templates/cronjob.yaml CronJob/release-backup containers[0] (backup)"},
	"src.example/team/db:16":       {"app/db (chart postgres-lite 12.1.0, alias db): app/charts/db/templates/statefulset.yaml StatefulSet/release-db containers[0] (postgres)"},
	"src.example/team/init:1.0":    {"app 1.4.2: app/templates/deployment.yaml Deployment/release-app initContainers[0] (init)"},
	"src.example/team/operand:1.0": {"app 1.4.2: Chart.yaml helm.sh/images (name operand)"},
	"src.example/team/probe:1.0":   {"app 1.4.2: app/templates/tests/test-connection.yaml Pod/release-app-test containers[0] (probe), hook"},
}

func TestRenderAppImagesAndReasons(t *testing.T) {
	r, err := renderApp(t, RenderOptions{Values: [][]byte{appTag}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "app" || r.Version != "1.4.2" || r.KubeVersion != DefaultKubeVersion {
		t.Errorf("got %s %s kube %s", r.Name, r.Version, r.KubeVersion)
	}
	if got := renderReasons(r); !reflect.DeepEqual(got, appReasons) {
		t.Errorf("images:\n got %q\nwant %q", got, appReasons)
	}
	for i := 1; i < len(r.Images); i++ {
		if r.Images[i-1].Ref >= r.Images[i].Ref {
			t.Errorf("images not sorted: %s before %s", r.Images[i-1].Ref, r.Images[i].Ref)
		}
	}
	want := []Subchart{
		{Path: "app/db", Chart: "postgres-lite", Version: "12.1.0", Alias: "db", Enabled: true},
		{Path: "app/cache", Chart: "cache", Version: "1.0.0", SkippedBy: "condition cache.enabled = false"},
	}
	if !reflect.DeepEqual(r.Subcharts, want) {
		t.Errorf("subcharts:\n got %+v\nwant %+v", r.Subcharts, want)
	}
	again, err := renderApp(t, RenderOptions{Values: [][]byte{appTag}})
	if err != nil || !reflect.DeepEqual(again, r) {
		t.Errorf("second render differs (%v)", err)
	}
}

func TestRenderValuesMergedInOrder(t *testing.T) {
	r, err := renderApp(t, RenderOptions{Values: [][]byte{
		[]byte("image: {tag: '0.9', repository: src.example/other/app}\ncache: {enabled: true}\n"),
		[]byte("image: {tag: '0.8'}\n---\nimage: {tag: '1.1'}\n"), // documents of one file merge too
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := renderReasons(r)
	if _, ok := got["src.example/other/app:1.1"]; !ok {
		t.Errorf("want src.example/other/app:1.1, got %q", got)
	}
	// enabled by the values: found without includeDisabled, reported enabled
	if want := []string{"app/cache 1.0.0: app/charts/cache/templates/deployment.yaml Deployment/release-cache containers[0] (cache)"}; !reflect.DeepEqual(got["src.example/team/cache:7"], want) {
		t.Errorf("cache: got %q, want %q", got["src.example/team/cache:7"], want)
	}
	if want := []string{"app/cache 1.0.0: Chart.yaml artifacthub.io/images (name exporter)"}; !reflect.DeepEqual(got["src.example/team/cache-exporter:0.9"], want) {
		t.Errorf("cache exporter: got %q, want %q", got["src.example/team/cache-exporter:0.9"], want)
	}
	if c := r.Subcharts[1]; !c.Enabled || c.SkippedBy != "" {
		t.Errorf("cache: %+v", c)
	}
	if _, err := renderApp(t, RenderOptions{Values: [][]byte{[]byte("image: [")}}); err == nil || !strings.Contains(err.Error(), "values document 1") {
		t.Errorf("bad values: %v", err)
	}
}

func TestRenderIncludeDisabled(t *testing.T) {
	cache := []string{"app/cache 1.0.0: app/charts/cache/templates/deployment.yaml Deployment/release-cache containers[0] (cache), included by includeDisabled"}
	exporter := []string{"app/cache 1.0.0: Chart.yaml artifacthub.io/images (name exporter), included by includeDisabled"}
	for _, o := range []RenderOptions{
		{IncludeDisabled: []string{"cache"}},
		{IncludeDisabled: []string{"app/cache"}},
		{IncludeAllDisabled: true},
	} {
		o.Values = [][]byte{appTag}
		r, err := renderApp(t, o)
		if err != nil {
			t.Fatal(err)
		}
		got := renderReasons(r)
		if !reflect.DeepEqual(got["src.example/team/cache:7"], cache) || !reflect.DeepEqual(got["src.example/team/cache-exporter:0.9"], exporter) {
			t.Errorf("include %v all %t: got %q", o.IncludeDisabled, o.IncludeAllDisabled, got)
		}
		// what the first render found keeps its reasons, without IncludedBy
		if !reflect.DeepEqual(got["src.example/team/init:1.0"], appReasons["src.example/team/init:1.0"]) || len(got) != len(appReasons)+2 {
			t.Errorf("include %v all %t: got %q", o.IncludeDisabled, o.IncludeAllDisabled, got)
		}
		if c := r.Subcharts[1]; c.Enabled || c.SkippedBy != "condition cache.enabled = false" {
			t.Errorf("include %v all %t: cache %+v", o.IncludeDisabled, o.IncludeAllDisabled, c)
		}
	}
	_, err := renderApp(t, RenderOptions{Values: [][]byte{appTag}, IncludeDisabled: []string{"redis"}})
	if err == nil || !strings.Contains(err.Error(), `includeDisabled names "redis", which is not one of its subcharts (app/db, app/cache)`) {
		t.Errorf("unknown subchart: %v", err)
	}
}

func TestRenderRequiredValueMissing(t *testing.T) {
	_, err := renderApp(t, RenderOptions{})
	var re *RenderError
	if !errors.As(err, &re) {
		t.Fatalf("want *RenderError, got %v", err)
	}
	want := RenderError{Chart: "app 1.4.2", Template: "app/templates/deployment.yaml", Line: 13, ValuePath: "image.tag", Msg: "image.tag is required"}
	if *re != want {
		t.Errorf("got  %+v\nwant %+v", *re, want)
	}
	if got := re.Error(); got != "app 1.4.2 does not render at app/templates/deployment.yaml:13: image.tag is required (value image.tag)" {
		t.Errorf("got %q", got)
	}
}

func TestRenderKubeVersion(t *testing.T) {
	_, err := renderApp(t, RenderOptions{Values: [][]byte{appTag}, KubeVersion: "1.27.0"})
	var re *RenderError
	if !errors.As(err, &re) || re.Msg != "app 1.4.2 requires Kubernetes >=1.28.0-0; kubeVersion is 1.27.0" || re.Chart != "app 1.4.2" {
		t.Fatalf("got %#v", err)
	}
	for _, v := range []string{"1.28.0", "v1.31.2", "1.31.0-gke.1"} {
		r, err := renderApp(t, RenderOptions{Values: [][]byte{appTag}, KubeVersion: v})
		if err != nil || r.KubeVersion != v {
			t.Errorf("%s: %v %v", v, r, err)
		}
	}
	if _, err := renderApp(t, RenderOptions{KubeVersion: "one"}); err == nil || !strings.Contains(err.Error(), `kubeVersion "one"`) {
		t.Errorf("bad kubeVersion: %v", err)
	}
}

// Templates see the kubeVersion asked for, in a test binary as in the real one.
func TestRenderCapabilities(t *testing.T) {
	tgz := renderPackFiles(t, map[string]string{
		"Chart.yaml": "apiVersion: v2\nname: caps\nversion: 0.1.0\n",
		"templates/pod.yaml": "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n" +
			"  - {name: k, image: 'src.example/k:{{ .Capabilities.KubeVersion.Version }}-{{ .Capabilities.KubeVersion.Minor }}'}\n",
	})
	for kube, want := range map[string]string{"": "src.example/k:v" + DefaultKubeVersion + "-33", "1.30.1": "src.example/k:v1.30.1-30"} {
		r, err := Render(context.Background(), tgz, RenderOptions{KubeVersion: kube})
		if err != nil || len(r.Images) != 1 || r.Images[0].Ref != want {
			t.Errorf("kube %q: %+v %v, want %s", kube, r, err, want)
		}
	}
}

func TestRenderSubchartsSkippedByTagsAndParent(t *testing.T) {
	deployment := func(image string) string {
		return "kind: Deployment\nmetadata: {name: d}\nspec: {template: {spec: {containers: [{name: c, image: " + image + "}]}}}\n"
	}
	tgz := renderPackFiles(t, map[string]string{
		"Chart.yaml": "apiVersion: v2\nname: top\nversion: 2.0.0\ndependencies:\n" +
			"- {name: extra, version: 1.x, tags: [extras, more]}\n- {name: mid, version: 1.0.0, condition: 'mid.on,mid.enabled'}\n",
		"values.yaml":                             "tags: {extras: false, more: false}\nmid: {enabled: false}\n",
		"charts/extra/Chart.yaml":                 "apiVersion: v2\nname: extra\nversion: 1.2.0\n",
		"charts/extra/templates/d.yaml":           deployment("src.example/extra:1"),
		"charts/mid/Chart.yaml":                   "apiVersion: v2\nname: mid\nversion: 1.0.0\ndependencies:\n- {name: leaf, version: 3.0.0, alias: deep}\n",
		"charts/mid/charts/leaf/Chart.yaml":       "apiVersion: v2\nname: leaf\nversion: 3.0.0\n",
		"charts/mid/charts/leaf/templates/d.yaml": deployment("src.example/leaf:3"),
	})
	r, err := Render(context.Background(), tgz, RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Subchart{
		{Path: "top/extra", Chart: "extra", Version: "1.2.0", SkippedBy: "tags extras, more = false"},
		{Path: "top/mid", Chart: "mid", Version: "1.0.0", SkippedBy: "condition mid.enabled = false"},
		{Path: "top/mid/deep", Chart: "leaf", Version: "3.0.0", Alias: "deep", SkippedBy: "parent top/mid is skipped"},
	}
	if !reflect.DeepEqual(r.Subcharts, want) || len(r.Images) != 0 {
		t.Errorf("got %+v %+v", r.Subcharts, r.Images)
	}
	// naming the nested one enables its parent too
	r, err = Render(context.Background(), tgz, RenderOptions{IncludeDisabled: []string{"deep"}})
	if err != nil {
		t.Fatal(err)
	}
	got := renderReasons(r)
	wantImages := map[string][]string{"src.example/leaf:3": {"top/mid/deep (chart leaf 3.0.0, alias deep): top/charts/mid/charts/deep/templates/d.yaml Deployment/d containers[0] (c), included by includeDisabled"}}
	if !reflect.DeepEqual(got, wantImages) {
		t.Errorf("got %q", got)
	}
}

func TestRenderMissingDependencyRefused(t *testing.T) {
	tgz := renderPackFiles(t, map[string]string{
		"Chart.yaml": "apiVersion: v2\nname: top\nversion: 2.0.0\ndependencies:\n- {name: gone, version: 1.0.0, repository: 'https://x.example'}\n",
	})
	_, err := Render(context.Background(), tgz, RenderOptions{})
	if err == nil || err.Error() != "top 2.0.0: dependency gone 1.0.0 of top is in Chart.yaml but not in its charts/ directory" {
		t.Errorf("got %v", err)
	}
	if _, err := Render(context.Background(), []byte("not a chart"), RenderOptions{}); err == nil || !strings.HasPrefix(err.Error(), "loading chart: ") {
		t.Errorf("not a chart: %v", err)
	}
}

func TestRenderSchemaRefused(t *testing.T) {
	tgz := renderPackFiles(t, map[string]string{
		"Chart.yaml":         "apiVersion: v2\nname: strict\nversion: 0.1.0\n",
		"values.schema.json": `{"type": "object", "properties": {"replicas": {"type": "integer"}}}`,
	})
	_, err := Render(context.Background(), tgz, RenderOptions{Values: [][]byte{[]byte("replicas: many\n")}})
	var re *RenderError
	if !errors.As(err, &re) || !strings.Contains(re.Msg, "values don't meet the specifications of the schema") {
		t.Errorf("got %v", err)
	}
}

// A template that runs an image only where an API is served finds it when the entry names the API
// (helm template --api-versions), and the defaults are left as they were for the next render.
func TestRenderAPIVersions(t *testing.T) {
	tgz := renderPackFiles(t, map[string]string{
		"Chart.yaml": "apiVersion: v2\nname: mon\nversion: 0.1.0\n",
		"templates/job.yaml": `{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor" }}
apiVersion: batch/v1
kind: Job
metadata: {name: exporter}
spec: {template: {spec: {containers: [{name: x, image: src.example/exporter:1}]}}}
{{- end }}
`,
	})
	for _, tc := range []struct {
		apis []string
		want int
	}{{nil, 0}, {[]string{"monitoring.coreos.com/v1/ServiceMonitor"}, 1}, {nil, 0}} {
		r, err := Render(t.Context(), tgz, RenderOptions{APIVersions: tc.apis})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Images) != tc.want {
			t.Errorf("apiVersions %v: images %+v, want %d", tc.apis, r.Images, tc.want)
		}
	}
}

// A condition that only the subchart's own values.yaml sets (the parent's values do not name it)
// still says why the subchart was skipped.
func TestRenderConditionInSubchartDefaults(t *testing.T) {
	tgz := renderPackFiles(t, map[string]string{
		"Chart.yaml":                    "apiVersion: v2\nname: top\nversion: 0.1.0\ndependencies:\n- {name: extra, version: 1.0.0, condition: extra.enabled}\n",
		"templates/d.yaml":              "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: src.example/top:1}]}\n",
		"charts/extra/Chart.yaml":       "apiVersion: v2\nname: extra\nversion: 1.0.0\n",
		"charts/extra/values.yaml":      "enabled: false\n",
		"charts/extra/templates/d.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: e}\nspec: {containers: [{name: c, image: src.example/extra:1}]}\n",
	})
	r, err := Render(t.Context(), tgz, RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Subchart{{Path: "top/extra", Chart: "extra", Version: "1.0.0", SkippedBy: "condition extra.enabled = false"}}
	if !reflect.DeepEqual(r.Subcharts, want) || len(r.Images) != 1 {
		t.Errorf("subcharts %+v, images %+v; want %+v and the top image only", r.Subcharts, r.Images, want)
	}
}
