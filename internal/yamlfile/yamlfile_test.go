package yamlfile

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		err  Error
		want string
	}{
		{Error{File: "f.yaml", Line: 3, Field: "a.b", Msg: "bad"}, "f.yaml:3: a.b: bad"},
		{Error{File: "f.yaml", Field: "a", Msg: "bad"}, "f.yaml: a: bad"},
		{Error{File: "f.yaml", Line: 2, Msg: "bad"}, "f.yaml:2: bad"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		data, want string
	}{
		{"", "f.yaml: file is empty; expected a Thing"},
		{"# only a comment\n", "f.yaml: file is empty; expected a Thing"},
		{"a: 1\n---\nb: 2\n", "f.yaml:2: more than one YAML document; a thing file holds exactly one"},
		{"a: [1\n", "f.yaml:1: invalid YAML: did not find expected ',' or ']'"},
	} {
		_, err := Decode("f.yaml", []byte(tc.data), "a Thing", "a thing file")
		var e *Error
		if !errors.As(err, &e) || err.Error() != tc.want {
			t.Errorf("Decode(%q) = %v (%T), want *Error %q", tc.data, err, err, tc.want)
		}
	}
	root, err := Decode("f.yaml", []byte("a: 1\n"), "a Thing", "a thing file")
	if err != nil || Describe(root) != "a mapping" {
		t.Fatalf("Decode: %v, root %v", err, root)
	}
}

func TestParser(t *testing.T) {
	const doc = `
top: &x hello
list: [*x, ~]
bad: 3
top: again
path: sub/key.pub
? [k]
: v
`
	root, err := Decode("dir/f.yaml", []byte(doc), "a Thing", "a thing file")
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewParser("dir/f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f := p.Fields(root, "", []string{"top", "list", "path"})
	if s, ok := p.Str(f["top"], "top"); !ok || s != "hello" {
		t.Errorf("Str(top) = %q, %v", s, ok)
	}
	items, ok := p.List(f["list"], "list")
	if !ok || len(items) != 2 || items[0].Value != "hello" || !IsNull(items[1]) {
		t.Errorf("List(list) = %v, %v", items, ok)
	}
	if got, ok := p.Path(f["path"], "path", ""); !ok || got != filepath.Join(p.Dir(), "sub/key.pub") || !filepath.IsAbs(got) {
		t.Errorf("Path(path) = %q, %v", got, ok)
	}
	p.NonEmptyList(f["top"], "top", "item")
	p.Expect(root, f, "kind", "Thing")
	want := []string{
		"dir/f.yaml:4: bad: unknown field; known fields: top, list, path",
		"dir/f.yaml:5: top: field given twice (first on line 2)",
		"dir/f.yaml:7: field names must be plain strings, got a list",
		`dir/f.yaml:2: top: must be a list of items, got string "hello"`,
		`dir/f.yaml:2: kind: missing; expected "Thing"`,
	}
	if p.NumErrors() != len(want) {
		t.Errorf("NumErrors() = %d, want %d", p.NumErrors(), len(want))
	}
	if got := p.Err().Error(); got != strings.Join(want, "\n") {
		t.Errorf("Err() =\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

func TestIsEmptyList(t *testing.T) {
	for doc, want := range map[string]bool{
		"v: ~":    true,
		"v: null": true,
		"v: []":   true,
		"v: [a]":  false,
		"v: {}":   false,
		"v: x":    false,
		"v: \"\"": false,
		"v:\n- a": false,
	} {
		root, err := Decode("f.yaml", []byte(doc), "a mapping", "a test file")
		if err != nil {
			t.Fatalf("Decode(%q): %v", doc, err)
		}
		n := Deref(root).Content[1]
		if got := IsEmptyList(n); got != want {
			t.Errorf("IsEmptyList(%q) = %v, want %v", doc, got, want)
		}
	}
}
