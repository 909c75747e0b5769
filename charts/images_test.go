package charts

import (
	"reflect"
	"strings"
	"testing"
)

// imagesOf runs manifestImages on one rendered template and returns each image's reasons.
func imagesOf(t *testing.T, manifest string) (map[string][]string, error) {
	t.Helper()
	set := imageSet{}
	err := manifestImages(set, Reason{Chart: "app 1.4.2", Template: "app/templates/x.yaml"}, manifest)
	return renderReasons(&Rendered{Images: set.sorted()}), err
}

const imagesPodSpec = `
      initContainers:
        - {name: init, image: src.example/init:1}
      containers:
        - {name: main, image: src.example/main:1}
        - {image: src.example/sidecar:1}
      ephemeralContainers:
        - {name: debug, image: src.example/debug:1}
`

// imagesIndent indents the pod spec (written for 6 spaces) to sit at depth spaces.
func imagesIndent(depth int) string {
	lines := strings.Split(strings.TrimPrefix(imagesPodSpec, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = strings.Repeat(" ", depth) + l[6:]
		}
	}
	return strings.Join(lines, "\n")
}

func TestImagesEachKindAndContainerList(t *testing.T) {
	template := "spec:\n  template:\n    spec:\n" + imagesIndent(6)
	for kind, manifest := range map[string]string{
		"Pod":                   "spec:\n" + imagesIndent(2),
		"Deployment":            template,
		"StatefulSet":           template,
		"DaemonSet":             template,
		"ReplicaSet":            template,
		"ReplicationController": template,
		"Job":                   template,
		"CronJob":               "spec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n" + imagesIndent(10),
		"PodTemplate":           "template:\n  spec:\n" + imagesIndent(4),
	} {
		got, err := imagesOf(t, "apiVersion: any/v9\nkind: "+kind+"\nmetadata:\n  name: w\n"+manifest)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		prefix := "app 1.4.2: app/templates/x.yaml " + kind + "/w "
		want := map[string][]string{
			"src.example/init:1":    {prefix + "initContainers[0] (init)"},
			"src.example/main:1":    {prefix + "containers[0] (main)"},
			"src.example/sidecar:1": {prefix + "containers[1]"},
			"src.example/debug:1":   {prefix + "ephemeralContainers[0] (debug)"},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", kind, got, want)
		}
	}
}

func TestImagesListHooksAndMerging(t *testing.T) {
	got, err := imagesOf(t, `
# a comment only
---
kind: List
items:
  - kind: Pod
    metadata:
      name: hooked
      annotations: {helm.sh/hook: pre-install, helm.sh/hook-weight: "1"}
    spec: {containers: [{name: c, image: src.example/same:1}]}
  - kind: List
    items:
      - kind: Job
        metadata: {name: nested}
        spec: {template: {spec: {containers: [{name: c, image: src.example/same:1}]}}}
---
kind: PodList
items:
  - kind: Pod
    metadata: {name: p}
    spec: {containers: [{name: c, image: src.example/same:1}, {name: c, image: src.example/same:1}]}
---
kind: ConfigMap
metadata: {name: cm}
data: {image: src.example/not-run:1}
---
apiVersion: example.com/v1
kind: Operand
spec: {image: src.example/custom-resource:1}
`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"src.example/same:1": {
		"app 1.4.2: app/templates/x.yaml Job/nested containers[0] (c)",
		"app 1.4.2: app/templates/x.yaml Pod/hooked containers[0] (c), hook",
		"app 1.4.2: app/templates/x.yaml Pod/p containers[0] (c)",
		"app 1.4.2: app/templates/x.yaml Pod/p containers[1] (c)",
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestImagesRefused(t *testing.T) {
	for manifest, want := range map[string]string{
		"kind: Deployment\nmetadata: {name: w}\nspec: {template: {spec: {initContainers: [{name: i, image: ''}]}}}":                                    "app 1.4.2: app/templates/x.yaml Deployment/w initContainers[0] (i): empty image",
		"kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}":                                                                              "app 1.4.2: app/templates/x.yaml Pod/p containers[0] (c): empty image",
		"kind: CronJob\nmetadata: {name: c}\nspec: {jobTemplate: {spec: {template: {spec: {containers: [{name: x, image: '  '}]}}}}}":                  "app 1.4.2: app/templates/x.yaml CronJob/c containers[0] (x): empty image",
		"kind: List\nitems: [{kind: Pod, metadata: {name: p, annotations: {helm.sh/hook: test}}, spec: {ephemeralContainers: [{name: d, image: 5}]}}]": "app 1.4.2: app/templates/x.yaml Pod/p ephemeralContainers[0] (d), hook: image 5 is not a string",
		"kind: Pod\nspec: {containers: [{name: c, image: a}]}\n---\nkind: Pod\n  spec: x: y":                                                           "app 1.4.2: app/templates/x.yaml: YAML parse error in document 2: ",
	} {
		_, err := imagesOf(t, manifest)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %s", manifest, err, want)
		}
	}
}
