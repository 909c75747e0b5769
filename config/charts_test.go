package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// chartRepo is the start of a charts list whose first entry is an HTTP chart (lines 4 and 5).
const chartRepo = "charts:\n  - repo: https://charts.example.com/stable\n    name: app\n"

// writeValuesFiles writes the values files the tests name, under dir/values.
func writeValuesFiles(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"app.yaml":   "image:\n  tag: 1.4.2\n",
		"site.yaml":  "# site overrides\nreplicas: 2\n---\nimage:\n  pullPolicy: IfNotPresent\n",
		"empty.yaml": "",
		"bad.yaml":   "image:\n  tag: 1.4.2\n  pull: a: b\n",
		"list.yaml":  "- image\n",
		"doc2.yaml":  "a: 1\n---\n- b\n",
		"merge.yaml": "a: 1\n---\nb: {<<: '', c: 1}\n",
		"mkey.yaml":  "{<<: {b: 1}, {c: 1}}\n",
	}
	if err := os.MkdirAll(filepath.Join(dir, "values", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, "values", name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestParseCharts parses a charts list with every field into the exact Chart values.
func TestParseCharts(t *testing.T) {
	dir := t.TempDir()
	writeValuesFiles(t, dir)
	path := filepath.Join(dir, "imageset.yaml")
	data := header + "images: [{ref: a.io/b:1}]\n" + // line 3
		"charts:\n" +
		"  - repo: https://charts.example.com/stable\n" + // line 5
		"    name: app\n" +
		"    version: '>=1.4.0 <2.0.0'\n" +
		"    newest: 2\n" +
		"    values: {image: {tag: '1.4.2', pullPolicy: &pp IfNotPresent}, ratio: 1.20}\n" +
		"    valuesFiles: [values/app.yaml, values/site.yaml, values/empty.yaml]\n" +
		"    kubeVersion: 1.31.0\n" +
		"    includeDisabled: [cache, app/metrics]\n" +
		"    platforms: [linux/amd64, linux/arm64]\n" +
		"    target: site/charts/app\n" +
		"  - ref: oci://registry.example.com/charts/db:12.1.0\n" + // line 15
		"    kubeVersion: v1.29\n" +
		"    includeDisabled: true\n" +
		"    findImages: false\n" +
		"    values:\n      policy: *pp\n" +
		"    target: site/db\n" +
		"  - repo: http://127.0.0.1:8080/charts/\n" + // line 22
		"    name: tools\n" +
		"    version: 2.0.1\n" +
		"    digest: " + hexA + "\n" +
		"    newest: 1\n" +
		"  - repo: http://127.0.0.1:8080/charts\n" + // line 27: another version of tools, both pinned
		"    name: tools\n" +
		"    version: =1.3.0\n" +
		"    digest: " + digB + "\n" +
		"    includeDisabled: false\n" +
		"    findImages: true\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	ref, err := ParseReference("registry.example.com/charts/db:12.1.0")
	if err != nil {
		t.Fatal(err)
	}
	ref.Line = 15
	want := []Chart{
		{
			Repo:            "https://charts.example.com/stable",
			Name:            "app",
			Version:         ">=1.4.0 <2.0.0",
			Newest:          2,
			Values:          []byte("{image: {tag: '1.4.2', pullPolicy: IfNotPresent}, ratio: 1.20}\n"),
			ValuesFiles:     [][]byte{[]byte("image:\n  tag: 1.4.2\n"), []byte("# site overrides\nreplicas: 2\n---\nimage:\n  pullPolicy: IfNotPresent\n"), {}},
			ValuesFileNames: []string{"values/app.yaml", "values/site.yaml", "values/empty.yaml"},
			KubeVersion:     "1.31.0",
			IncludeDisabled: []string{"cache", "app/metrics"},
			FindImages:      true,
			Platforms:       []Platform{{"linux", "amd64", ""}, {"linux", "arm64", ""}},
			Target:          "site/charts/app",
			Line:            5,
		},
		{
			Newest:             1,
			Values:             []byte("policy: IfNotPresent\n"),
			KubeVersion:        "v1.29",
			IncludeAllDisabled: true,
			Target:             "site/db",
			Ref:                &ref,
			Line:               15,
		},
		{
			Repo:       "http://127.0.0.1:8080/charts/",
			Name:       "tools",
			Version:    "2.0.1",
			Newest:     1,
			Digest:     digA,
			FindImages: true,
			Line:       22,
		},
		{
			Repo:       "http://127.0.0.1:8080/charts",
			Name:       "tools",
			Version:    "=1.3.0",
			Newest:     1,
			Digest:     digB,
			FindImages: true,
			Line:       27,
		},
	}
	if len(s.Charts) != len(want) {
		t.Fatalf("got %d charts, want %d: %+v", len(s.Charts), len(want), s.Charts)
	}
	for i := range want {
		if !reflect.DeepEqual(s.Charts[i], want[i]) {
			t.Errorf("charts[%d] =\n  %#v\nwant\n  %#v\nvalues %q", i, s.Charts[i], want[i], s.Charts[i].Values)
		}
	}
	if got := []string{s.Charts[0].String(), s.Charts[1].String(), s.Charts[2].String()}; !slices.Equal(got, []string{
		"https://charts.example.com/stable app",
		"oci://registry.example.com/charts/db:12.1.0",
		"http://127.0.0.1:8080/charts tools",
	}) {
		t.Errorf("String() = %q", got)
	}
	if got := s.Charts[0].Filter(); !reflect.DeepEqual(got, TagFilter{Semver: ">=1.4.0 <2.0.0", Newest: 2, Versions: true}) {
		t.Errorf("charts[0].Filter() = %+v", got)
	}
}

func TestChartDefaults(t *testing.T) {
	s, err := Parse("imageset.yaml", []byte(header+chartRepo+"  - ref: oci://nginx-charts@"+digA+"\n"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(s.Images) != 0 || len(s.Repositories) != 0 || len(s.Charts) != 2 {
		t.Fatalf("got %d images, %d repositories, %d charts; want 0, 0, 2", len(s.Images), len(s.Repositories), len(s.Charts))
	}
	app := s.Charts[0]
	want := Chart{Repo: "https://charts.example.com/stable", Name: "app", Newest: 1, FindImages: true, Line: 4}
	if !reflect.DeepEqual(app, want) {
		t.Errorf("charts[0] = %+v, want %+v", app, want)
	}
	if got := app.Filter(); !reflect.DeepEqual(got, TagFilter{Semver: AllVersions, Newest: 1, Versions: true}) {
		t.Errorf("Filter() without version = %+v, want semver * newest 1 (helm's IndexFile.Get)", got)
	}
	picked, decisions := app.Filter().Pick([]string{"1.3.0", "2.0.0", "1.4.2", "2.1.0-rc.1"})
	if !slices.Equal(picked, []string{"2.0.0"}) || decisions[len(decisions)-1].String() != "1.3.0 dropped: newest 1" {
		t.Errorf("Pick = %q, %v", picked, decisions)
	}
	if oci := s.Charts[1]; oci.Ref == nil || oci.Ref.Ref != "nginx-charts@"+digA || oci.String() != "oci://docker.io/library/nginx-charts@"+digA {
		t.Errorf("charts[1] = %+v (%s)", oci, oci)
	}
}

// TestParseChartsAccepts checks the accepted spellings of version, kubeVersion and digest.
func TestParseChartsAccepts(t *testing.T) {
	for _, tt := range []struct{ name, entry string }{
		{"exact version with v", "    version: v1.4.2\n    digest: sha256:" + hexA + "\n"},
		{"pre-release exact", "    version: 1.5.0-rc.1\n    digest: " + hexA + "\n"},
		{"tilde range", "    version: ~1.4\n"},
		{"or range", "    version: '>=1.4, <2 || >=3'\n"},
		{"kubeVersion major.minor", "    kubeVersion: '1.31'\n"},
		{"kubeVersion with v", "    kubeVersion: v1.31.0\n"},
		{"kubeVersion vendor", "    kubeVersion: 1.33.4-gke.1245000\n"},
		{"apiVersions", "    apiVersions: [v1, monitoring.coreos.com/v1/ServiceMonitor]\n"},
		{"null values", "    values:\n"},
		{"empty values", "    values: {}\n"},
		{"includeDisabled false", "    includeDisabled: false\n"},
		{"findImages false", "    findImages: false\n"},
		{"target ends in name", "    target: app\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse("imageset.yaml", []byte(header+chartRepo+tt.entry)); err != nil {
				t.Errorf("Parse: %v", err)
			}
		})
	}
}

func TestParseChartValuesAnchors(t *testing.T) {
	s, err := Parse("imageset.yaml", []byte(header+
		"images: [{ref: a.io/b:1}]\n"+
		"charts:\n"+
		"  - repo: https://charts.example.com/stable\n    name: app\n"+
		"    values: &v\n      image: &img {registry: mirror.example.com, tag: 1.20}\n      sidecar: *img\n"+
		"  - repo: https://charts.example.com/stable\n    name: web\n    values:\n      <<: *v\n      extra: true\n"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := string(s.Charts[0].Values), "image: {registry: mirror.example.com, tag: 1.20}\nsidecar: {registry: mirror.example.com, tag: 1.20}\n"; got != want {
		t.Errorf("charts[0].values =\n%s\nwant\n%s", got, want)
	}
	if got := string(s.Charts[1].Values); !strings.Contains(got, "<<:\n") || !strings.Contains(got, "sidecar: {registry: mirror.example.com, tag: 1.20}") || strings.Contains(got, "*") || strings.Contains(got, "&") {
		t.Errorf("charts[1].values has its alias left or lost:\n%s", got)
	}
}

func TestParseChartValuesAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString(header + chartRepo + "    values:\n      a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		b.WriteString("      a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	_, err := Parse("imageset.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "charts[0].values: more than 100000 values once anchors are expanded") {
		t.Errorf("err = %v, want the values refused for their size", err)
	}
}

func TestParseChartErrors(t *testing.T) {
	dir := t.TempDir()
	writeValuesFiles(t, dir)
	t.Chdir(dir)
	const oci = "charts:\n  - ref: oci://registry.example.com/charts/app:1.4.2\n"
	tests := []struct {
		name, yaml string
		want       string // the whole error must start with this
	}{
		// fields
		{"unknown field", header + chartRepo + "    valuess: {a: 1}\n",
			"imageset.yaml:6: charts[0].valuess: unknown field; known fields: repo, name, version, newest, digest, values, valuesFiles, kubeVersion, apiVersions, includeDisabled, findImages, platforms, target, ref"},
		{"not a mapping", header + "charts:\n  - https://charts.example.com/stable\n",
			`imageset.yaml:4: charts[0]: must be a mapping, got string "https://charts.example.com/stable"; write it as "- repo: URL" with "name: CHART", or "- ref: oci://..."`},
		{"oci string", header + "charts:\n  - oci://r.io/c/app:1\n",
			`imageset.yaml:4: charts[0]: must be a mapping, got string "oci://r.io/c/app:1"; write it as "- ref: oci://r.io/c/app:1"`},
		{"charts not a list", header + "charts: {repo: x}\n",
			"imageset.yaml:3: charts: must be a list, got a mapping"},
		// exactly one of repo and ref
		{"both repo and ref", header + chartRepo + "    ref: oci://registry.example.com/charts/app:1.4.2\n",
			"imageset.yaml:4: charts[0]: has both repo and ref; an HTTP chart is repo + name, an OCI chart is ref: oci://HOST/PATH/NAME:VERSION"},
		{"neither repo nor ref", header + "charts:\n  - name: app\n",
			"imageset.yaml:4: charts[0]: needs repo or ref; an HTTP chart is repo + name, an OCI chart is ref: oci://HOST/PATH/NAME:VERSION"},
		// repo
		{"repo not http", header + "charts:\n  - repo: ftp://charts.example.com/stable\n    name: app\n",
			`imageset.yaml:4: charts[0].repo: "ftp://charts.example.com/stable" is not an HTTP chart repository URL; expected http:// or https:// and a host, e.g. https://charts.example.com/stable`},
		{"repo without scheme", header + "charts:\n  - repo: charts.example.com/stable\n    name: app\n",
			`imageset.yaml:4: charts[0].repo: "charts.example.com/stable" is not an HTTP chart repository URL; expected http:// or https://`},
		{"repo without host", header + "charts:\n  - repo: https:///stable\n    name: app\n",
			`imageset.yaml:4: charts[0].repo: "https:///stable" is not an HTTP chart repository URL: no host; expected`},
		{"repo unparsable", header + "charts:\n  - repo: 'https://charts example.com/'\n    name: app\n",
			`imageset.yaml:4: charts[0].repo: "https://charts example.com/" is not an HTTP chart repository URL: invalid character " " in host name; expected`},
		{"repo is oci", header + "charts:\n  - repo: oci://registry.example.com/charts\n    name: app\n",
			`imageset.yaml:4: charts[0].repo: "oci://registry.example.com/charts" is an OCI reference, not an HTTP chart repository; write it as ref: oci://registry.example.com/charts/NAME:VERSION, without name`},
		{"repo with credentials", header + "charts:\n  - repo: https://me:secret@charts.example.com/stable\n    name: app\n",
			`imageset.yaml:4: charts[0].repo: "https://me:xxxxx@charts.example.com/stable" holds credentials`},
		{"repo not a string", header + "charts:\n  - repo: [a]\n    name: app\n",
			"imageset.yaml:4: charts[0].repo: must be a string, got a list"},
		// name
		{"name missing with repo", header + "charts:\n  - repo: https://charts.example.com/stable\n",
			"imageset.yaml:4: charts[0].name: missing; a chart from repo needs the chart's name in the repository's index.yaml, such as app"},
		{"name with ref", header + oci + "    name: app\n",
			"imageset.yaml:5: charts[0].name: not allowed with ref; an OCI chart's name is the last part of its ref (oci://HOST/PATH/NAME:VERSION)"},
		{"name with a slash", header + "charts:\n  - repo: https://charts.example.com\n    name: stable/app\n",
			`imageset.yaml:5: charts[0].name: "stable/app" is not a chart name; a chart name is one path element without spaces, such as app`},
		{"empty name", header + "charts:\n  - repo: https://charts.example.com\n    name: ''\n",
			"imageset.yaml:5: charts[0].name: empty; the chart's name in the repository's index.yaml, such as app"},
		// ref
		{"ref without oci://", header + "charts:\n  - ref: registry.example.com/charts/app:1.4.2\n",
			`imageset.yaml:4: charts[0].ref: "registry.example.com/charts/app:1.4.2" does not start with oci://; expected oci://HOST[:PORT]/PATH/NAME:VERSION or oci://HOST[:PORT]/PATH/NAME@sha256:HEX`},
		{"ref is http", header + "charts:\n  - ref: https://charts.example.com/stable\n",
			`imageset.yaml:4: charts[0].ref: "https://charts.example.com/stable" is an HTTP URL; a chart repository is repo: URL with name: CHART`},
		{"ref invalid", header + "charts:\n  - ref: oci://registry.example.com/Charts/App:1.4.2\n",
			`imageset.yaml:4: charts[0].ref: invalid reference "oci://registry.example.com/Charts/App:1.4.2": repository "Charts/App" is invalid: repository names must be lowercase; expected oci://HOST[:PORT]/PATH/NAME:VERSION`},
		{"ref without version", header + "charts:\n  - ref: oci://registry.example.com/charts/app\n",
			`imageset.yaml:4: charts[0].ref: "oci://registry.example.com/charts/app" has no version; expected oci://HOST[:PORT]/PATH/NAME:VERSION`},
		{"ref bad digest", header + "charts:\n  - ref: oci://registry.example.com/charts/app@sha256:abc\n",
			`imageset.yaml:4: charts[0].ref: invalid reference "oci://registry.example.com/charts/app@sha256:abc": digest "sha256:abc": a sha256 digest has 64 hex characters, got 3; expected oci://`},
		{"version with ref", header + oci + "    version: 1.4.2\n",
			"imageset.yaml:5: charts[0].version: not allowed with ref; an OCI chart's version is the tag of its ref (oci://HOST/PATH/NAME:VERSION); list one entry per version"},
		{"newest with ref", header + oci + "    newest: 2\n",
			"imageset.yaml:5: charts[0].newest: not allowed with ref; an OCI chart's version is the tag of its ref"},
		{"digest with ref", header + oci + "    digest: " + digA + "\n",
			"imageset.yaml:5: charts[0].digest: not allowed with ref; pin an OCI chart in its ref: oci://HOST/PATH/NAME:VERSION@sha256:HEX"},
		// version
		{"invalid version", header + chartRepo + "    version: '>=1.4 <two'\n",
			`imageset.yaml:6: charts[0].version: invalid semver range ">=1.4 <two": improper constraint: ">=1.4 <two"; expected a range such as '>=1.4.0 <2.0.0', '~1.4', '^1' or '*'`},
		{"version a number", header + chartRepo + "    version: 1.4\n",
			"imageset.yaml:6: charts[0].version: must be a string, got number 1.4; quote it: version: '1.4'"},
		// newest
		{"newest zero", header + chartRepo + "    newest: 0\n",
			"imageset.yaml:6: charts[0].newest: must be a whole number above 0, got 0; leave newest out to keep the newest version only"},
		{"newest negative", header + chartRepo + "    newest: -1\n",
			"imageset.yaml:6: charts[0].newest: must be a whole number above 0, got -1"},
		{"newest not a number", header + chartRepo + "    newest: two\n",
			`imageset.yaml:6: charts[0].newest: must be a whole number above 0, got string "two"`},
		// values and valuesFiles
		{"values a list", header + chartRepo + "    values: [a]\n",
			"imageset.yaml:6: charts[0].values: must be a mapping of chart values, got a list"},
		{"values a string", header + chartRepo + "    values: 'image.tag=1'\n",
			`imageset.yaml:6: charts[0].values: must be a mapping of chart values, got string "image.tag=1"`},
		{"values file missing", header + chartRepo + "    valuesFiles: [values/app.yaml, values/nope.yaml]\n",
			"imageset.yaml:6: charts[0].valuesFiles[1]: values/nope.yaml: no such file (looked for " + filepath.Join(dir, "values", "nope.yaml") + ")"},
		{"values file not YAML", header + chartRepo + "    valuesFiles:\n      - values/bad.yaml\n",
			"imageset.yaml:7: charts[0].valuesFiles[0]: values/bad.yaml:3: invalid YAML: mapping values are not allowed in this context"},
		{"values file a list", header + chartRepo + "    valuesFiles: [values/list.yaml]\n",
			"imageset.yaml:6: charts[0].valuesFiles[0]: values/list.yaml:1: must be a mapping of chart values, got a list"},
		{"values file second document a list", header + chartRepo + "    valuesFiles: [values/doc2.yaml]\n",
			"imageset.yaml:6: charts[0].valuesFiles[0]: values/doc2.yaml:3: must be a mapping of chart values, got a list"},
		{"values merge of a scalar", header + chartRepo + "    values: {!!merge <<: '', a: ''}\n",
			"imageset.yaml:6: charts[0].values: cannot be read as chart values: map merge requires map or sequence of maps as the value"},
		{"values merge with a mapping key", header + chartRepo + "    values: {<<: {a: 1}, {b: 1}}\n",
			"imageset.yaml:6: charts[0].values: cannot be read as chart values (runtime error: hash of unhashable type map[string]interface {}); the keys of chart values must be plain names"},
		{"values file merge with a mapping key", header + chartRepo + "    valuesFiles: [values/mkey.yaml]\n",
			"imageset.yaml:6: charts[0].valuesFiles[0]: values/mkey.yaml:1: cannot be read as chart values (runtime error: hash of unhashable type map[string]interface {}); the keys of chart values must be plain names"},
		{"values file merge of a scalar", header + chartRepo + "    valuesFiles: [values/merge.yaml]\n",
			"imageset.yaml:6: charts[0].valuesFiles[0]: values/merge.yaml:3: cannot be read as chart values: map merge requires map or sequence of maps as the value"},
		{"values file a directory", header + chartRepo + "    valuesFiles: [values/sub]\n",
			"imageset.yaml:6: charts[0].valuesFiles[0]: values/sub: is a directory, not a values file"},
		{"values file twice", header + chartRepo + "    valuesFiles: [values/app.yaml, values/app.yaml]\n",
			"imageset.yaml:6: charts[0].valuesFiles[1]: values/app.yaml listed twice"},
		{"values file empty path", header + chartRepo + "    valuesFiles: ['']\n",
			"imageset.yaml:6: charts[0].valuesFiles[0]: empty path; name a values file such as values/app.yaml"},
		{"valuesFiles empty", header + chartRepo + "    valuesFiles: []\n",
			"imageset.yaml:6: charts[0].valuesFiles: empty list; leave valuesFiles out to use the chart's own values"},
		{"valuesFiles not a list", header + chartRepo + "    valuesFiles: values/app.yaml\n",
			`imageset.yaml:6: charts[0].valuesFiles: must be a list, got string "values/app.yaml"`},
		// kubeVersion
		{"kubeVersion wildcard", header + chartRepo + "    kubeVersion: 1.x\n",
			`imageset.yaml:6: charts[0].kubeVersion: "1.x" is not a Kubernetes version; e.g. 1.31.0`},
		{"kubeVersion major only", header + chartRepo + "    kubeVersion: 'v1'\n",
			`imageset.yaml:6: charts[0].kubeVersion: "v1" is not a Kubernetes version; e.g. 1.31.0`},
		{"kubeVersion a range", header + chartRepo + "    kubeVersion: '>=1.28.0'\n",
			`imageset.yaml:6: charts[0].kubeVersion: ">=1.28.0" is not a Kubernetes version; e.g. 1.31.0`},
		{"kubeVersion a number", header + chartRepo + "    kubeVersion: 1.31\n",
			"imageset.yaml:6: charts[0].kubeVersion: must be a string, got number 1.31; quote it or give the patch too, e.g. kubeVersion: 1.31.0"},
		// digest
		{"digest with a range", header + chartRepo + "    version: '>=1.4.0'\n    digest: " + digA + "\n",
			"imageset.yaml:7: charts[0].digest: needs an exact version such as '1.4.2', got range '>=1.4.0'"},
		{"digest with a partial version", header + chartRepo + "    version: '1.4'\n    digest: " + hexA + "\n",
			"imageset.yaml:7: charts[0].digest: needs an exact version such as '1.4.2', got range '1.4'"},
		{"digest without version", header + chartRepo + "    digest: " + digA + "\n",
			"imageset.yaml:6: charts[0].digest: needs an exact version such as '1.4.2', got none (every version)"},
		{"digest malformed", header + chartRepo + "    version: 1.4.2\n    digest: sha256:abc\n",
			`imageset.yaml:7: charts[0].digest: "sha256:abc" is not a sha256 digest; expected sha256:HEX or the 64 lowercase hex characters index.yaml gives`},
		{"digest other algorithm", header + chartRepo + "    version: 1.4.2\n    digest: sha512:" + hex512 + "\n",
			`imageset.yaml:7: charts[0].digest: "sha512:` + hex512 + `" is not a sha256 digest`},
		// findImages
		{"findImages not a bool", header + chartRepo + "    findImages: 'no'\n",
			`imageset.yaml:6: charts[0].findImages: must be true or false, got string "no"`},
		// includeDisabled
		{"includeDisabled a string", header + chartRepo + "    includeDisabled: cache\n",
			`imageset.yaml:6: charts[0].includeDisabled: must be a list of subchart names or true, got string "cache"`},
		{"includeDisabled empty", header + chartRepo + "    includeDisabled: []\n",
			"imageset.yaml:6: charts[0].includeDisabled: empty list; leave includeDisabled out to render only the subcharts the values enable"},
		{"includeDisabled twice", header + chartRepo + "    includeDisabled: [cache, cache]\n",
			"imageset.yaml:6: charts[0].includeDisabled[1]: cache listed twice"},
		{"includeDisabled blank name", header + chartRepo + "    includeDisabled: ['']\n",
			`imageset.yaml:6: charts[0].includeDisabled[0]: "" is not a subchart name`},
		{"includeDisabled a number", header + chartRepo + "    includeDisabled: [1]\n",
			"imageset.yaml:6: charts[0].includeDisabled[0]: must be a string, got integer 1"},
		// duplicates
		{"duplicate repo and name", header + chartRepo + "  - repo: https://charts.example.com/stable/\n    name: app\n    version: '>=2'\n",
			"imageset.yaml:6: charts[1]: duplicate of charts[0] (line 4): both are https://charts.example.com/stable app; merge them into one entry"},
		{"duplicate ref", header + "charts:\n  - ref: oci://nginx-charts:1\n  - ref: oci://docker.io/library/nginx-charts:1\n",
			"imageset.yaml:5: charts[1]: duplicate of charts[0] (line 4): both are oci://docker.io/library/nginx-charts:1; merge them into one entry"},
		{"duplicate pinned version", header + chartRepo + "    version: 1.4.2\n    digest: " + digA + "\n" +
			"  - repo: https://charts.example.com/stable\n    name: app\n    version: v1.4.2\n    digest: " + digB + "\n",
			"imageset.yaml:8: charts[1]: duplicate of charts[0] (line 4): both are https://charts.example.com/stable app"},
		{"pinned beside a range", header + chartRepo + "    version: 1.4.2\n    digest: " + digA + "\n" +
			"  - repo: https://charts.example.com/stable\n    name: app\n",
			"imageset.yaml:8: charts[1]: duplicate of charts[0] (line 4): both are https://charts.example.com/stable app"},
		// platforms and target, as images
		{"bad platform", header + chartRepo + "    platforms: [linux]\n",
			`imageset.yaml:6: charts[0].platforms[0]: platform "linux" is invalid: expected OS/ARCH or OS/ARCH/VARIANT`},
		{"empty platforms", header + chartRepo + "    platforms: []\n",
			"imageset.yaml:6: charts[0].platforms: empty list; leave platforms out to keep all platforms"},
		{"bad target", header + chartRepo + "    target: Site/App\n",
			`imageset.yaml:6: charts[0].target: repository "Site/App" is invalid: repository names must be lowercase`},
		{"target not ending in the name", header + chartRepo + "    target: site/charts/web\n",
			`imageset.yaml:6: charts[0].target: "site/charts/web" must end in the chart's name, app, since helm finds a chart at oci://HOST/PATH/NAME; e.g. site/charts/app`},
		{"OCI target not ending in the name", header + oci + "    target: site/db\n",
			`imageset.yaml:5: charts[0].target: "site/db" must end in the chart's name, app, since helm finds a chart at oci://HOST/PATH/NAME; e.g. site/app`},
		// apiVersions
		{"apiVersions not a list", header + chartRepo + "    apiVersions: monitoring.coreos.com/v1\n",
			"imageset.yaml:6: charts[0].apiVersions: must be a non-empty list of API versions"},
		{"apiVersions empty", header + chartRepo + "    apiVersions: []\n",
			"imageset.yaml:6: charts[0].apiVersions: must be a non-empty list of API versions"},
		{"apiVersions bad entry", header + chartRepo + "    apiVersions: [monitoring.coreos.com/v1, 'a/b/c/d']\n",
			`imageset.yaml:6: charts[0].apiVersions[1]: "a/b/c/d" is not an API version; write GROUP/VERSION or GROUP/VERSION/KIND`},
		// charts count as something to save
		{"empty charts alone", header + "charts: []\n",
			"imageset.yaml:3: charts: must list at least one chart, or an image under images or a repository under repositories"},
		{"nothing at all", header,
			"imageset.yaml:1: images: missing; list at least one image, e.g. images: [{ref: registry.example.com/team/app:1.4.2}], or a repository under repositories or a chart under charts"},
		{"empty images", header + "images: []\ncharts: []\n",
			"imageset.yaml:3: images: must list at least one image, or a repository under repositories or a chart under charts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("imageset.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want error starting %q", s, tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error:\n  %s\nwant prefix:\n  %s", err, tt.want)
			}
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Errorf("error %T is not a *config.Error", err)
			} else if cerr.File != "imageset.yaml" {
				t.Errorf("Error.File = %q, want imageset.yaml", cerr.File)
			}
		})
	}
}

func TestParseChartsReportsEveryError(t *testing.T) {
	_, err := Parse("imageset.yaml", []byte(header+"charts:\n"+
		"  - repo: ftp://x\n    name: a/b\n    newest: 0\n    kubeVersion: x\n"+
		"  - ref: oci://r.io/c/app\n    findImages: 1\n"))
	if err == nil {
		t.Fatal("Parse succeeded, want errors")
	}
	for _, want := range []string{
		"imageset.yaml:4: charts[0].repo: ",
		"imageset.yaml:5: charts[0].name: ",
		"imageset.yaml:6: charts[0].newest: ",
		"imageset.yaml:7: charts[0].kubeVersion: ",
		"imageset.yaml:8: charts[1].ref: ",
		"imageset.yaml:9: charts[1].findImages: ",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// TestValuesFilesRelativeToTheFile checks that Parse, like Load, reads valuesFiles from the
// ImageSet's directory (the directory of the path it is given), not from the working directory.
func TestValuesFilesRelativeToTheFile(t *testing.T) {
	dir := t.TempDir()
	writeValuesFiles(t, dir)
	data := []byte(header + chartRepo + "    valuesFiles: [values/app.yaml, " + filepath.Join(dir, "values", "site.yaml") + "]\n")
	s, err := Parse(filepath.Join(dir, "imageset.yaml"), data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if s.Dir != dir || len(s.Charts[0].ValuesFiles) != 2 || string(s.Charts[0].ValuesFiles[0]) != "image:\n  tag: 1.4.2\n" {
		t.Errorf("Dir %q, charts[0] = %+v", s.Dir, s.Charts[0])
	}
	if _, err := Parse("imageset.yaml", data); err == nil || !strings.Contains(err.Error(), "values/app.yaml: no such file") {
		t.Errorf("Parse from the working directory: err = %v, want values/app.yaml not found there", err)
	}
}

func TestPinnedCharts(t *testing.T) {
	s, err := Parse("imageset.yaml", []byte(header+chartRepo+
		"    version: '>=1.4.0 <2.0.0'\n    newest: 2\n    values: {image: {tag: x}}\n    platforms: [linux/amd64]\n    target: site/app\n"+
		"  - ref: oci://registry.example.com/charts/db:12.1.0\n"))
	if err != nil {
		t.Fatal(err)
	}
	app, db := s.Charts[0], s.Charts[1]
	v1, v2 := app, app
	v1.Version, v1.Digest = "1.4.2", digA
	v2.Version, v2.Digest = "1.4.1", hexB
	dbRef := *db.Ref
	dbRef.Digest = digB
	db.Ref = &dbRef
	images := pin([]Image{{Registry: "registry.example.com", Repository: "team/app", Tag: "1.4.2"}})
	b, err := s.Pinned("imageset.pinned.yaml", images, v1, v2, db)
	if err != nil {
		t.Fatalf("Pinned: %v", err)
	}
	want := "charts:\n" +
		"  - repo: https://charts.example.com/stable\n    name: app\n    version: 1.4.2\n    digest: " + digA + "\n    findImages: false\n    platforms: [linux/amd64]\n    target: site/app\n" +
		"  - repo: https://charts.example.com/stable\n    name: app\n    version: 1.4.1\n    digest: " + hexB + "\n    findImages: false\n    platforms: [linux/amd64]\n    target: site/app\n" +
		"  - ref: oci://registry.example.com/charts/db:12.1.0@" + digB + "\n    findImages: false\n"
	if !strings.Contains(string(b), want) {
		t.Errorf("pinned file:\n%s\nwant it to hold:\n%s", b, want)
	}
	again, err := Parse("imageset.pinned.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range again.Charts {
		got = append(got, c.String()+" "+c.Version+" "+c.Digest)
		if c.FindImages || c.Values != nil {
			t.Errorf("pinned chart %s finds images or has values: %+v", c, c)
		}
	}
	if !slices.Equal(got, []string{
		"https://charts.example.com/stable app 1.4.2 " + digA,
		"https://charts.example.com/stable app 1.4.1 " + digB,
		"oci://registry.example.com/charts/db:12.1.0@" + digB + "  ",
	}) {
		t.Errorf("pinned charts read back as %q", got)
	}

	// Charts alone pin too: a chart carried without images.
	if b, err := s.Pinned("imageset.pinned.yaml", nil, v1); err != nil || strings.Contains(string(b), "images:") {
		t.Errorf("Pinned with a chart and no images: %v\n%s", err, b)
	}
	for _, tt := range []struct {
		name   string
		charts []Chart
		want   string
	}{
		{"range", []Chart{app}, `pinned image set: chart https://charts.example.com/stable app (version ">=1.4.0 <2.0.0", digest "") is not pinned`},
		{"no digest", []Chart{{Repo: app.Repo, Name: "app", Version: "1.4.2"}}, "is not pinned; pass each picked version with its exact version and index digest"},
		{"OCI without digest", []Chart{s.Charts[1]}, "pinned image set: chart oci://registry.example.com/charts/db:12.1.0 has no digest"},
		{"twice", []Chart{v1, v1}, "pinned image set: chart https://charts.example.com/stable app 1.4.2 is listed twice"},
	} {
		if _, err := s.Pinned("out.yaml", images, tt.charts...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestParseChartAPIVersions(t *testing.T) {
	s, err := Parse("imageset.yaml", []byte(header+chartRepo+"    apiVersions: [v1, monitoring.coreos.com/v1/ServiceMonitor]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Charts[0].APIVersions; !slices.Equal(got, []string{"v1", "monitoring.coreos.com/v1/ServiceMonitor"}) {
		t.Errorf("APIVersions = %q", got)
	}
}

// A values file of exactly the cap is read; one byte more is refused, saying so.
func TestValuesFileSizeCap(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("#"), maxValuesFile-len("a: 1\n"))
	if err := os.WriteFile(filepath.Join(dir, "at.yaml"), append([]byte("a: 1\n"), big...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "over.yaml"), append([]byte("a: 1\n#"), big...), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Parse(filepath.Join(dir, "imageset.yaml"), []byte(header+chartRepo+"    valuesFiles: [at.yaml]\n"))
	if err != nil || len(s.Charts[0].ValuesFiles[0]) != maxValuesFile {
		t.Fatalf("a values file of %d bytes: %v", maxValuesFile, err)
	}
	_, err = Parse(filepath.Join(dir, "imageset.yaml"), []byte(header+chartRepo+"    valuesFiles: [over.yaml]\n"))
	if err == nil || !strings.Contains(err.Error(), "over.yaml: larger than 16 MiB") {
		t.Errorf("a values file one byte over: %v", err)
	}
}
