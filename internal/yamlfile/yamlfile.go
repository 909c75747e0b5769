// Package yamlfile holds the pieces shared by airlock's hand-written YAML file parsers (the
// ImageSet file and the policy file): decoding exactly one document, an error type that names the
// place as "FILE:LINE: FIELD: MESSAGE", and a Parser that walks yaml.v3 nodes and collects every
// problem it finds instead of stopping at the first.
//
// Messages produced here are shared by both file kinds; wording that differs between them (what an
// empty file should have held, which kind of file it is) is passed in by the caller.
package yamlfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is a validation error that names the place: "FILE:LINE: FIELD: MESSAGE".
type Error struct {
	File  string // the file as given to the parser
	Line  int    // 1-based line, 0 when unknown
	Field string // dotted path such as "images[1].platforms[0]", "" for the whole file
	Msg   string
}

// Error formats e as "FILE:LINE: FIELD: MESSAGE", leaving out the parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// yamlLineRE finds the line number in yaml.v3 syntax errors ("yaml: line 3: ...").
var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Decode decodes exactly one YAML document from data and returns its root node. path is used in
// errors only. An empty file is reported as "file is empty; expected " + expected (e.g. "an
// ImageSet with apiVersion, kind and images"), a second document as "more than one YAML document; "
// + kind + " holds exactly one" (e.g. "an ImageSet file"), and a syntax error as "invalid YAML: ..."
// with its line. Every error is an *Error.
func Decode(path string, data []byte, expected, kind string) (*yaml.Node, error) {
	empty := &Error{File: path, Msg: "file is empty; expected " + expected}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, empty
		}
		return nil, syntaxError(path, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, &Error{File: path, Line: next.Line, Msg: "more than one YAML document; " + kind + " holds exactly one"}
	case !errors.Is(err, io.EOF):
		return nil, syntaxError(path, err)
	}
	if len(doc.Content) == 0 {
		return nil, empty
	}
	return doc.Content[0], nil
}

// syntaxError turns a yaml.v3 syntax error into an *Error with its line.
func syntaxError(path string, err error) error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: path, Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return &Error{File: path, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// Parser walks the nodes of one file, collecting errors. Its methods report what is wrong with a
// node through Errorf and return ok=false (or nil), so that a caller can carry on and report every
// problem in the file.
type Parser struct {
	file string
	dir  string
	errs []error
}

// NewParser returns a Parser for the file at path. Relative paths read with Path are resolved
// against the absolute directory of path; the file itself is not opened.
func NewParser(path string) (*Parser, error) {
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("resolving directory of %s: %w", path, err)
	}
	return &Parser{file: path, dir: dir}, nil
}

// Dir returns the absolute directory of the file.
func (p *Parser) Dir() string { return p.dir }

// Errorf records an *Error at n's line (0 when n is nil) for field.
func (p *Parser) Errorf(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// NumErrors returns how many errors have been recorded so far; comparing it before and after
// parsing a part tells whether that part was valid.
func (p *Parser) NumErrors() int { return len(p.errs) }

// Err returns nil when no error was recorded, the *Error when there was one, and all of them
// joined with errors.Join otherwise.
func (p *Parser) Err() error {
	switch len(p.errs) {
	case 0:
		return nil
	case 1:
		return p.errs[0]
	default:
		return errors.Join(p.errs...)
	}
}

// Deref follows aliases so that anchors in the file behave as their values.
func Deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// IsNull reports whether n is a null scalar ("~", "null" or nothing at all).
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// IsEmptyList reports whether n is null or an empty sequence.
func IsEmptyList(n *yaml.Node) bool {
	return IsNull(n) || (n.Kind == yaml.SequenceNode && len(n.Content) == 0)
}

// IsString reports whether n is a string scalar.
func IsString(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!str"
}

// Describe names what a node is, for "must be X, got Y" messages: "a mapping", "a list",
// "nothing", `string "x"`, "integer 3" and so on.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing"
		case "!!str":
			return fmt.Sprintf("string %q", n.Value)
		case "!!int":
			return "integer " + n.Value
		case "!!float":
			return "number " + n.Value
		case "!!bool":
			return "boolean " + n.Value
		}
		return fmt.Sprintf("%s %q", strings.TrimPrefix(n.Tag, "!!"), n.Value)
	}
	return "an unsupported value"
}

// joinField appends name to the dotted field path parent ("" for the top level).
func joinField(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// Fields checks that n is a mapping whose keys are all in known, each at most once, and returns
// the value nodes (aliases followed) by key. Unknown, repeated and non-string keys are reported
// and left out. It returns nil after reporting an error when n is not a mapping.
func (p *Parser) Fields(n *yaml.Node, field string, known []string) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		p.Errorf(n, field, "must be a mapping with fields %s, got %s", strings.Join(known, ", "), Describe(n))
		return nil
	}
	out := make(map[string]*yaml.Node, len(known))
	keyLine := make(map[string]int, len(known))
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := Deref(n.Content[i]), Deref(n.Content[i+1])
		name := k.Value
		path := joinField(field, name)
		switch line, dup := keyLine[name]; {
		case k.Kind != yaml.ScalarNode:
			p.Errorf(k, field, "field names must be plain strings, got %s", Describe(k))
		case !slices.Contains(known, name):
			p.Errorf(k, path, "unknown field; known fields: %s", strings.Join(known, ", "))
		case dup:
			p.Errorf(k, path, "field given twice (first on line %d)", line)
		default:
			keyLine[name] = k.Line
			out[name] = v
		}
	}
	return out
}

// Expect checks the header field name of the mapping parent, whose fields f returned: it must be
// present and be the string want.
func (p *Parser) Expect(parent *yaml.Node, f map[string]*yaml.Node, name, want string) {
	if n, ok := f[name]; !ok {
		p.Errorf(parent, name, "missing; expected %q", want)
	} else if v, ok := p.Str(n, name); ok && v != want {
		p.Errorf(n, name, "must be %q, got %q", want, v)
	}
}

// Str returns the string value of a scalar, reporting an error for anything else.
func (p *Parser) Str(n *yaml.Node, field string) (string, bool) {
	if !IsString(n) {
		p.Errorf(n, field, "must be a string, got %s", Describe(n))
		return "", false
	}
	return n.Value, true
}

// List returns the items of a sequence (aliases followed), reporting an error for anything else.
func (p *Parser) List(n *yaml.Node, field string) ([]*yaml.Node, bool) {
	if n.Kind != yaml.SequenceNode {
		p.Errorf(n, field, "must be a list, got %s", Describe(n))
		return nil, false
	}
	return items(n), true
}

// NonEmptyList returns the items of a non-empty sequence (aliases followed). Null or an empty list
// is reported as "must list at least one WHAT", anything else as "must be a list of WHATs, got ...".
func (p *Parser) NonEmptyList(n *yaml.Node, field, what string) ([]*yaml.Node, bool) {
	if IsEmptyList(n) {
		p.Errorf(n, field, "must list at least one %s", what)
		return nil, false
	}
	if n.Kind != yaml.SequenceNode {
		p.Errorf(n, field, "must be a list of %ss, got %s", what, Describe(n))
		return nil, false
	}
	return items(n), true
}

func items(n *yaml.Node) []*yaml.Node {
	out := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		out[i] = Deref(c)
	}
	return out
}

// Path reads a file path and resolves it against the file's directory; absolute paths are only
// cleaned. A blank path is reported as "empty path", followed by "; " + hint when hint is not "".
func (p *Parser) Path(n *yaml.Node, field, hint string) (string, bool) {
	s, ok := p.Str(n, field)
	if !ok {
		return "", false
	}
	if strings.TrimSpace(s) == "" {
		msg := "empty path"
		if hint != "" {
			msg += "; " + hint
		}
		p.Errorf(n, field, "%s", msg)
		return "", false
	}
	if filepath.IsAbs(s) {
		return filepath.Clean(s), true
	}
	return filepath.Join(p.dir, s), true
}
