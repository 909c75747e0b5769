package charts

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestAnnotationParseLenient(t *testing.T) {
	got, err := parseImageAnnotation(`
- name: operand
  image: src.example/team/operand:1.0
  whitelisted: true
  platforms: [linux/amd64, linux/arm64]
- image: src.example/team/unnamed:2
  dependency: db
  name: 7
`)
	want := []annotationEntry{
		{name: "operand", image: "src.example/team/operand:1.0"},
		{name: "[1]", image: "src.example/team/unnamed:2", dependency: "db"},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v %v", got, err)
	}
	if got, err := parseImageAnnotation(""); err != nil || len(got) != 0 {
		t.Errorf("empty: %+v %v", got, err)
	}
	for text, want := range map[string]string{
		"name: x\nimage: y\n":                                ": not a YAML list: ",
		"- {name: a, image: a:1}\n- just-a-string\n":         "[1]: not a mapping with name and image",
		"- {name: a, image: a:1}\n- {name: b}\n":             "[1].image: empty",
		"- {name: a, image: ' '}\n":                          "[0].image: empty",
		"- {name: a, image: a:1}\n- {name: b, image: [x]}\n": "[1].image: [x] is not a string",
	} {
		if _, err := parseImageAnnotation(text); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: got %v, want %s", text, err, want)
		}
	}
}

// annotationChart is a chart whose Chart.yaml carries annotations, with a subchart "sub" (alias
// "side") enabled by side.enabled, itself annotated.
func annotationChart(t *testing.T, annotations string) []byte {
	return renderPackFiles(t, map[string]string{
		"Chart.yaml": "apiVersion: v2\nname: ann\nversion: 0.3.0\nannotations:\n" + annotations +
			"dependencies:\n- {name: sub, version: 1.0.0, alias: side, condition: side.enabled}\n",
		"values.yaml":           "side: {enabled: false}\n",
		"charts/sub/Chart.yaml": "apiVersion: v2\nname: sub\nversion: 1.0.0\nannotations:\n  helm.sh/images: '[{name: s, image: src.example/sub:1}]'\n",
	})
}

func TestAnnotationImagesOfChartAndSubcharts(t *testing.T) {
	tgz := annotationChart(t, `  helm.sh/images: |
    - {name: operand, image: src.example/operand:1}
    - {name: sidecar, image: src.example/side:1, dependency: side}
    - {name: by-chart-name, image: src.example/side:2, dependency: sub}
    - {name: unknown-dependency, image: src.example/kept:1, dependency: elsewhere}
  artifacthub.io/images: |
    - {name: operand, image: src.example/operand:1}
`)
	r, err := Render(context.Background(), tgz, RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"src.example/operand:1": {"ann 0.3.0: Chart.yaml artifacthub.io/images (name operand)", "ann 0.3.0: Chart.yaml helm.sh/images (name operand)"},
		"src.example/kept:1":    {"ann 0.3.0: Chart.yaml helm.sh/images (name unknown-dependency)"},
	}
	if got := renderReasons(r); !reflect.DeepEqual(got, want) {
		t.Errorf("skipped subchart:\n got %q\nwant %q", got, want)
	}
	r, err = Render(context.Background(), tgz, RenderOptions{IncludeDisabled: []string{"side"}})
	if err != nil {
		t.Fatal(err)
	}
	want["src.example/side:1"] = []string{"ann 0.3.0: Chart.yaml helm.sh/images (name sidecar), included by includeDisabled"}
	want["src.example/side:2"] = []string{"ann 0.3.0: Chart.yaml helm.sh/images (name by-chart-name), included by includeDisabled"}
	want["src.example/sub:1"] = []string{"ann/side (chart sub 1.0.0, alias side): Chart.yaml helm.sh/images (name s), included by includeDisabled"}
	if got := renderReasons(r); !reflect.DeepEqual(got, want) {
		t.Errorf("includeDisabled:\n got %q\nwant %q", got, want)
	}
}

func TestAnnotationBadEntryRefused(t *testing.T) {
	for annotations, want := range map[string]string{
		"  helm.sh/images: |\n    - {name: a, image: src.example/a:1}\n    - {name: b, image: src.example/b:1}\n    - {name: c}\n": "ann 0.3.0: Chart.yaml annotation helm.sh/images[2].image: empty",
		"  artifacthub.io/images: 'image: src.example/a:1'\n":                                                                      "ann 0.3.0: Chart.yaml annotation artifacthub.io/images: not a YAML list: ",
	} {
		_, err := Render(context.Background(), annotationChart(t, annotations), RenderOptions{})
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("got %v\nwant %s", err, want)
		}
	}
}
