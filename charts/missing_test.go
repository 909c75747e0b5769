package charts

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// missingChart renders a chart "m" 0.1.0 whose templates/t.yaml is tpl, with a subchart "sub"
// aliased "db" whose templates/s.yaml is sub, and returns the *RenderError.
func missingChart(t *testing.T, tpl, sub string, values string) *RenderError {
	t.Helper()
	tgz := renderPackFiles(t, map[string]string{
		"Chart.yaml":                  "apiVersion: v2\nname: m\nversion: 0.1.0\ndependencies:\n- {name: sub, version: 2.0.0, alias: db}\n",
		"values.yaml":                 values,
		"templates/_helpers.tpl":      "{{- define \"m.tag\" -}}\n{{ required \"tag via include\" .Values.deep.tag }}\n{{- end -}}\n",
		"templates/t.yaml":            tpl,
		"charts/sub/Chart.yaml":       "apiVersion: v2\nname: sub\nversion: 2.0.0\n",
		"charts/sub/templates/s.yaml": sub,
	})
	_, err := Render(context.Background(), tgz, RenderOptions{})
	var re *RenderError
	if !errors.As(err, &re) {
		t.Fatalf("want *RenderError, got %v", err)
	}
	return re
}

func TestMissingValuePath(t *testing.T) {
	for _, c := range []struct {
		name, tpl, sub string
		want           RenderError
	}{
		{"field", "a: 1\nb: {{ required \"x is required\" .Values.image.tag }}\n", "",
			RenderError{Template: "m/templates/t.yaml", Line: 2, ValuePath: "image.tag", Msg: "x is required"}},
		{"root variable", "{{ with .Values.other }}{{ end }}b: {{ required \"x is required\" $.Values.image.tag }}\n", "",
			RenderError{Template: "m/templates/t.yaml", Line: 1, ValuePath: "image.tag", Msg: "x is required"}},
		{"pipeline", "\n\nb: {{ .Values.image.tag | default \"\" | required \"x is required\" | quote }}\n", "",
			RenderError{Template: "m/templates/t.yaml", Line: 3, ValuePath: "", Msg: "x is required"}},
		{"pipeline direct", "\n\nb: {{ .Values.image.tag | required \"x is required\" | quote }}\n", "",
			RenderError{Template: "m/templates/t.yaml", Line: 3, ValuePath: "image.tag", Msg: "x is required"}},
		{"parentheses", "b: {{ (required \"x is required\" (.Values.image.tag)) }}\n", "",
			RenderError{Template: "m/templates/t.yaml", Line: 1, ValuePath: "image.tag", Msg: "x is required"}},
		{"subchart", "", "a: 1\n\nb: {{ required \"password!\" .Values.password }}\n",
			RenderError{Template: "m/charts/db/templates/s.yaml", Line: 3, ValuePath: "db.password", Msg: "password!"}},
		{"subchart nil map", "", "a: 1\n\nb: {{ required \"password!\" .Values.auth.password }}\n",
			RenderError{Template: "m/charts/db/templates/s.yaml", Line: 3, ValuePath: "db.auth.password", Msg: "nil pointer evaluating interface {}.password"}},
		{"subchart global", "", "b: {{ required \"registry!\" .Values.global.registry }}\n",
			RenderError{Template: "m/charts/db/templates/s.yaml", Line: 1, ValuePath: "global.registry", Msg: "registry!"}},
		{"include", "a: 1\nb: {{ include \"m.tag\" . }}\n", "",
			RenderError{Template: "m/templates/t.yaml", Line: 2, ValuePath: "deep.tag", Msg: "tag via include"}},
		// Two calls with one message: the location decides which value, the message alone cannot.
		{"same message, second call", "a: {{ required \"value needed\" .Values.first }}\nb: {{ required \"value needed\" .Values.image.tag }}\n", "",
			RenderError{Template: "m/templates/t.yaml", Line: 2, ValuePath: "image.tag", Msg: "value needed"}},
		{"index falls back", "b: {{ required \"x is required\" (index .Values \"image\" \"tag\") }}\n", "",
			RenderError{Template: "m/templates/t.yaml", Line: 1, Msg: "x is required"}},
		{"variable falls back", "{{ $i := .Values.image }}b: {{ required \"x is required\" $i.tag }}\n", "",
			RenderError{Template: "m/templates/t.yaml", Line: 1, Msg: "x is required"}},
		{"fail", "\n{{ fail \"not on this cluster\" }}\n", "",
			RenderError{Template: "m/templates/t.yaml", Line: 2, Msg: "not on this cluster"}},
		{"nil map", "a: {{ .Values.image.tag.name }}\n", "",
			RenderError{Template: "m/templates/t.yaml", Line: 1, ValuePath: "image.tag.name", Msg: "nil pointer evaluating interface {}.name"}},
	} {
		got := missingChart(t, c.tpl, c.sub, "image: {}\ndeep: {}\nfirst: set\n")
		c.want.Chart = "m 0.1.0"
		if *got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, *got, c.want)
		}
	}
}

func TestMissingAlsoRequired(t *testing.T) {
	tpl := `a: {{ required "tag!" .Values.image.tag }}
b: {{ required "set" .Values.image.repository }}
{{- if .Values.ingress.enabled }}
c: {{ required "host!" .Values.ingress.host }}
{{- end }}
d: {{ .Values.secret | required "secret!" }}
e: {{ required "map" .Values.image }}
`
	got := missingChart(t, tpl, "p: {{ required \"pw\" .Values.password }}\n", "image: {repository: src.example/x}\n")
	// helm renders deeper templates first: the subchart's fails
	want := "pw; also required, found by reading the templates: image.tag (m/templates/t.yaml:1), secret (m/templates/t.yaml:6)"
	if got.ValuePath != "db.password" || got.Msg != want {
		t.Errorf("got %+v\nwant Msg %s", *got, want)
	}
}

func TestMissingSplitLocation(t *testing.T) {
	for loc, want := range map[string]struct {
		file      string
		line, col int
	}{
		"a/templates/x.yaml:12:51": {"a/templates/x.yaml", 12, 51},
		"a/templates/x.yaml:12":    {"a/templates/x.yaml", 12, 0},
		"a/templates/x.yaml":       {"a/templates/x.yaml", 0, 0},
		"a/b:c.yaml:3":             {"a/b:c.yaml", 3, 0},
	} {
		file, line, col := splitLocation(loc)
		if file != want.file || line != want.line || col != want.col {
			t.Errorf("%s: got %s %d %d", loc, file, line, col)
		}
	}
	re := renderFailure("m 0.1.0", nil, nil, errors.New("something else"))
	if *re != (RenderError{Chart: "m 0.1.0", Msg: "something else"}) || !strings.Contains(re.Error(), "does not render: something else") {
		t.Errorf("got %+v", *re)
	}
}
