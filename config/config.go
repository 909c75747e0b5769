// Package config reads the ImageSet file that tells airlock what to move: the images, which
// referrers (signatures, SBOMs, attestations) travel with them, and the trust material used to
// verify them on the far side.
//
// The file is decoded node by node so that every validation error names the file, the line and
// the field, for example "imageset.yaml:7: images[1].platfroms: unknown field; known fields: ref,
// platforms, target". Relative paths in the file are resolved against the file's directory.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	"gopkg.in/yaml.v3"
)

// APIVersion is the only apiVersion an ImageSet file may declare.
const APIVersion = "airlock.dev/v1alpha1"

// Kind is the only kind an ImageSet file may declare.
const Kind = "ImageSet"

// Values of referrers.artifactTypes with a special meaning.
const (
	// ArtifactTypesDefault expands to DefaultArtifactTypes.
	ArtifactTypesDefault = "default"
	// ArtifactTypesAll keeps every referrer, whatever its artifact type.
	ArtifactTypesAll = "*"
)

// DefaultArtifactTypes are the referrer artifact types kept when the file does not list its own:
// Sigstore bundles, cosign signatures, SBOMs and attestations, DSSE/in-toto envelopes, SPDX and
// CycloneDX documents.
var DefaultArtifactTypes = []string{
	"application/vnd.dev.sigstore.bundle.v0.3+json",
	"application/vnd.dev.sigstore.bundle+json",
	"application/vnd.dev.cosign.simplesigning.v1+json",
	"application/vnd.dev.cosign.artifact.sig.v1+json",
	"application/vnd.dev.cosign.artifact.sbom.v1+json",
	"application/vnd.dev.cosign.artifact.att.v1+json",
	"application/vnd.dsse.envelope.v1+json",
	"application/vnd.in-toto+json",
	"application/spdx+json",
	"text/spdx",
	"text/spdx+json",
	"application/vnd.cyclonedx+json",
	"application/vnd.cyclonedx+xml",
	"application/vnd.cyclonedx",
}

// ImageSet is a parsed and validated ImageSet file.
type ImageSet struct {
	Path      string // the file as given
	Dir       string // absolute directory of the file; relative paths below are resolved against it
	Images    []Image
	Referrers Referrers
	Trust     Trust
	Policy    string // absolute path, "" when not set
}

// Image is one entry of the images list, or a reference parsed by ParseReference.
type Image struct {
	Ref        string        // as written in the file
	Registry   string        // e.g. "registry.example.com" or "127.0.0.1:5000"
	Repository string        // e.g. "team/app"
	Tag        string        // "" if none
	Digest     digest.Digest // "" if none
	Platforms  []Platform    // empty = all platforms
	Target     string        // target repository path used by load, "" if not set
	Line       int           // line of this entry in the file
}

// Referrers says which referrers of each image are discovered and kept.
type Referrers struct {
	Enabled       bool
	ArtifactTypes []string // the resolved list ("default" expanded), empty when All
	All           bool     // "*" given
}

// Trust lists the trust material bundled with an archive.
type Trust struct {
	Keys        []string // absolute paths of cosign public keys (PEM)
	TrustedRoot string   // absolute path of the Sigstore trusted root, or ""
}

// Error is a validation error that names the place: "FILE:LINE: FIELD: MESSAGE".
type Error struct {
	File  string // the file as given to Load or Parse
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

// Load reads and validates the ImageSet file at path.
func Load(path string) (*ImageSet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading image set: %w", err)
	}
	return Parse(path, data)
}

// Parse validates data read from path. The path is used in error messages and to resolve relative
// paths; the files it names are not opened. Every problem found is reported: the error is an
// *Error, or several joined with errors.Join.
func Parse(path string, data []byte) (*ImageSet, error) {
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("resolving directory of %s: %w", path, err)
	}
	root, err := decodeDocument(path, data)
	if err != nil {
		return nil, err
	}
	p := &parser{file: path, dir: dir}
	set := p.imageSet(root)
	if len(p.errs) > 0 {
		if len(p.errs) == 1 {
			return nil, p.errs[0]
		}
		return nil, errors.Join(p.errs...)
	}
	set.Path = path
	set.Dir = dir
	return set, nil
}

// yamlLineRE finds the line number in yaml.v3 syntax errors ("yaml: line 3: ...").
var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decodeDocument decodes exactly one YAML document and returns its root node.
func decodeDocument(path string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: path, Msg: "file is empty; expected an ImageSet with apiVersion, kind and images"}
		}
		return nil, yamlError(path, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, &Error{File: path, Line: next.Line, Msg: "more than one YAML document; an ImageSet file holds exactly one"}
	case !errors.Is(err, io.EOF):
		return nil, yamlError(path, err)
	}
	if len(doc.Content) == 0 {
		return nil, &Error{File: path, Msg: "file is empty; expected an ImageSet with apiVersion, kind and images"}
	}
	return doc.Content[0], nil
}

// yamlError turns a yaml.v3 syntax error into an *Error with its line.
func yamlError(path string, err error) error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: path, Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return &Error{File: path, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// parser walks the document, collecting errors.
type parser struct {
	file string
	dir  string
	errs []error
}

func (p *parser) errorf(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// deref follows aliases so that anchors in the file behave as their values.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describe names what a node is, for "must be X, got Y" messages.
func describe(n *yaml.Node) string {
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

// fields checks that n is a mapping whose keys are all in known, each at most once, and returns
// the value nodes by key. It returns nil after reporting an error when n is not a mapping.
func (p *parser) fields(n *yaml.Node, field string, known []string) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, field, "must be a mapping with fields %s, got %s", strings.Join(known, ", "), describe(n))
		return nil
	}
	out := make(map[string]*yaml.Node, len(known))
	keyLine := make(map[string]int, len(known))
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		name := k.Value
		path := joinField(field, name)
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, field, "field names must be plain strings, got %s", describe(k))
			continue
		}
		if !contains(known, name) {
			p.errorf(k, path, "unknown field; known fields: %s", strings.Join(known, ", "))
			continue
		}
		if line, dup := keyLine[name]; dup {
			p.errorf(k, path, "field given twice (first on line %d)", line)
			continue
		}
		keyLine[name] = k.Line
		out[name] = v
	}
	return out
}

func joinField(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// str returns the string value of a scalar, reporting an error for anything else.
func (p *parser) str(n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		p.errorf(n, field, "must be a string, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

// list returns the items of a sequence, reporting an error for anything else.
func (p *parser) list(n *yaml.Node, field string) ([]*yaml.Node, bool) {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, field, "must be a list, got %s", describe(n))
		return nil, false
	}
	items := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		items[i] = deref(c)
	}
	return items, true
}

// path resolves a file path from the ImageSet against the file's directory.
func (p *parser) path(n *yaml.Node, field string) (string, bool) {
	s, ok := p.str(n, field)
	if !ok {
		return "", false
	}
	if strings.TrimSpace(s) == "" {
		p.errorf(n, field, "empty path")
		return "", false
	}
	if filepath.IsAbs(s) {
		return filepath.Clean(s), true
	}
	return filepath.Join(p.dir, s), true
}

var (
	topFields       = []string{"apiVersion", "kind", "images", "referrers", "trust", "policy"}
	imageFields     = []string{"ref", "platforms", "target"}
	referrersFields = []string{"enabled", "artifactTypes"}
	trustFields     = []string{"keys", "trustedRoot"}
)

func (p *parser) imageSet(root *yaml.Node) *ImageSet {
	root = deref(root)
	set := &ImageSet{Referrers: Referrers{Enabled: true, ArtifactTypes: cloneStrings(DefaultArtifactTypes)}}
	f := p.fields(root, "", topFields)
	if f == nil {
		return set
	}

	if n, ok := f["apiVersion"]; !ok {
		p.errorf(root, "apiVersion", "missing; expected %q", APIVersion)
	} else if v, ok := p.str(n, "apiVersion"); ok && v != APIVersion {
		p.errorf(n, "apiVersion", "must be %q, got %q", APIVersion, v)
	}
	if n, ok := f["kind"]; !ok {
		p.errorf(root, "kind", "missing; expected %q", Kind)
	} else if v, ok := p.str(n, "kind"); ok && v != Kind {
		p.errorf(n, "kind", "must be %q, got %q", Kind, v)
	}

	if n, ok := f["images"]; !ok {
		p.errorf(root, "images", "missing; list at least one image, e.g. images: [{ref: registry.example.com/team/app:1.4.2}]")
	} else {
		set.Images = p.images(n)
	}
	if n, ok := f["referrers"]; ok && !isNull(n) {
		set.Referrers = p.referrers(n)
	}
	if n, ok := f["trust"]; ok && !isNull(n) {
		set.Trust = p.trust(n)
	}
	if n, ok := f["policy"]; ok && !isNull(n) {
		set.Policy, _ = p.path(n, "policy")
	}
	return set
}

func (p *parser) images(n *yaml.Node) []Image {
	if isNull(n) {
		p.errorf(n, "images", "must list at least one image")
		return nil
	}
	items, ok := p.list(n, "images")
	if !ok {
		return nil
	}
	if len(items) == 0 {
		p.errorf(n, "images", "must list at least one image")
		return nil
	}
	var out []Image
	seen := make(map[string]int) // canonical reference -> index in items
	for i, item := range items {
		field := fmt.Sprintf("images[%d]", i)
		img, ok := p.image(item, field)
		if !ok {
			continue
		}
		key := img.String()
		if j, dup := seen[key]; dup {
			p.errorf(item, field, "duplicate of images[%d] (line %d): both are %s", j, items[j].Line, key)
			continue
		}
		seen[key] = i
		out = append(out, img)
	}
	return out
}

func (p *parser) image(n *yaml.Node, field string) (Image, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		p.errorf(n, field, "must be a mapping, got %s; write it as \"- ref: %s\"", describe(n), n.Value)
		return Image{}, false
	}
	f := p.fields(n, field, imageFields)
	if f == nil {
		return Image{}, false
	}
	before := len(p.errs)
	var img Image
	if rn, ok := f["ref"]; !ok {
		p.errorf(n, field+".ref", "missing; every image needs a ref such as registry.example.com/team/app:1.4.2")
	} else if s, ok := p.str(rn, field+".ref"); ok {
		parsed, err := ParseReference(s)
		if err != nil {
			p.errorf(rn, field+".ref", "%s", err)
		} else {
			img = parsed
		}
	}
	if pn, ok := f["platforms"]; ok {
		img.Platforms = p.platforms(pn, field+".platforms")
	}
	if tn, ok := f["target"]; ok {
		if s, ok := p.str(tn, field+".target"); ok {
			if err := checkRepository(s); err != nil {
				p.errorf(tn, field+".target", "%s; expected a repository path such as site/web", err)
			}
			img.Target = s
		}
	}
	img.Line = n.Line
	return img, len(p.errs) == before
}

func (p *parser) platforms(n *yaml.Node, field string) []Platform {
	items, ok := p.list(n, field)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		p.errorf(n, field, "empty list; leave platforms out to keep all platforms")
		return nil
	}
	var out []Platform
	for i, item := range items {
		itemField := fmt.Sprintf("%s[%d]", field, i)
		s, ok := p.str(item, itemField)
		if !ok {
			continue
		}
		pl, err := ParsePlatform(s)
		if err != nil {
			p.errorf(item, itemField, "%s", err)
			continue
		}
		if contains(platformStrings(out), pl.String()) {
			p.errorf(item, itemField, "platform %s listed twice", pl)
			continue
		}
		out = append(out, pl)
	}
	return out
}

func platformStrings(ps []Platform) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func (p *parser) referrers(n *yaml.Node) Referrers {
	r := Referrers{Enabled: true, ArtifactTypes: cloneStrings(DefaultArtifactTypes)}
	f := p.fields(n, "referrers", referrersFields)
	if f == nil {
		return r
	}
	if en, ok := f["enabled"]; ok {
		if en.Kind != yaml.ScalarNode || en.Tag != "!!bool" {
			p.errorf(en, "referrers.enabled", "must be true or false, got %s", describe(en))
		} else {
			r.Enabled = en.Value == "true" || en.Value == "True" || en.Value == "TRUE"
		}
	}
	if an, ok := f["artifactTypes"]; ok {
		r.ArtifactTypes, r.All = p.artifactTypes(an)
	}
	return r
}

func (p *parser) artifactTypes(n *yaml.Node) (types []string, all bool) {
	const field = "referrers.artifactTypes"
	if isNull(n) {
		p.errorf(n, field, "must list at least one artifact type; use [default], [\"*\"] or media types")
		return nil, false
	}
	items, ok := p.list(n, field)
	if !ok {
		return nil, false
	}
	if len(items) == 0 {
		p.errorf(n, field, "must list at least one artifact type; use [default], [\"*\"] or media types")
		return nil, false
	}
	seen := make(map[string]bool)
	add := func(t string) {
		if key := baseMediaType(t); !seen[key] {
			seen[key] = true
			types = append(types, t)
		}
	}
	for i, item := range items {
		itemField := fmt.Sprintf("%s[%d]", field, i)
		s, ok := p.str(item, itemField)
		if !ok {
			continue
		}
		switch s {
		case ArtifactTypesAll:
			all = true
		case ArtifactTypesDefault:
			for _, t := range DefaultArtifactTypes {
				add(t)
			}
		default:
			if err := checkMediaType(s); err != nil {
				p.errorf(item, itemField, "%s", err)
				continue
			}
			add(s)
		}
	}
	if all {
		if len(items) > 1 {
			p.errorf(n, field, "%q keeps every artifact type and cannot be combined with others", ArtifactTypesAll)
		}
		return nil, true
	}
	return types, false
}

// checkMediaType reports whether s is a media type "type/subtype", optionally with parameters.
func checkMediaType(s string) error {
	mt, _, err := mime.ParseMediaType(s)
	if err != nil || strings.Count(mt, "/") != 1 || strings.HasPrefix(mt, "/") || strings.HasSuffix(mt, "/") {
		return fmt.Errorf("%q is not a media type; expected TYPE/SUBTYPE such as application/vnd.example+json, or %q or %q",
			s, ArtifactTypesDefault, ArtifactTypesAll)
	}
	return nil
}

func (p *parser) trust(n *yaml.Node) Trust {
	var t Trust
	f := p.fields(n, "trust", trustFields)
	if f == nil {
		return t
	}
	if kn, ok := f["keys"]; ok && !isNull(kn) {
		if items, ok := p.list(kn, "trust.keys"); ok {
			for i, item := range items {
				if path, ok := p.path(item, fmt.Sprintf("trust.keys[%d]", i)); ok {
					t.Keys = append(t.Keys, path)
				}
			}
		}
	}
	if rn, ok := f["trustedRoot"]; ok && !isNull(rn) {
		t.TrustedRoot, _ = p.path(rn, "trust.trustedRoot")
	}
	return t
}

func cloneStrings(s []string) []string {
	return append([]string(nil), s...)
}

// Wants reports whether a referrer with this artifact type is kept. Comparison ignores media-type
// parameters (";version=..") and case, so it also matches when the set holds the type with
// parameters. A disabled Referrers wants nothing; one with All wants everything.
func (r Referrers) Wants(artifactType string) bool {
	if !r.Enabled {
		return false
	}
	if r.All {
		return true
	}
	want := baseMediaType(artifactType)
	if want == "" {
		return false
	}
	for _, t := range r.ArtifactTypes {
		if baseMediaType(t) == want {
			return true
		}
	}
	return false
}

// baseMediaType lowercases a media type and drops its parameters.
func baseMediaType(s string) string {
	s, _, _ = strings.Cut(s, ";")
	return strings.ToLower(strings.TrimSpace(s))
}

// Platform is an OCI platform: operating system, architecture and optional variant.
type Platform struct{ OS, Architecture, Variant string }

// platformPartRE is what each part of a platform string may hold.
var platformPartRE = regexp.MustCompile(`^[a-z0-9_.-]+$`)

// ParsePlatform parses "os/arch" or "os/arch/variant", e.g. "linux/amd64", "linux/arm64/v8" or
// "linux/arm/v7". Parts are lowercase.
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return Platform{}, fmt.Errorf("platform %q is invalid: expected OS/ARCH or OS/ARCH/VARIANT, e.g. linux/amd64 or linux/arm/v7", s)
	}
	for _, part := range parts {
		if !platformPartRE.MatchString(part) {
			return Platform{}, fmt.Errorf("platform %q is invalid: each part must be non-empty lowercase letters, digits, '.', '_' or '-'; expected OS/ARCH[/VARIANT], e.g. linux/amd64", s)
		}
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// String returns "os/arch" or "os/arch/variant".
func (p Platform) String() string {
	if p.Variant == "" {
		return p.OS + "/" + p.Architecture
	}
	return p.OS + "/" + p.Architecture + "/" + p.Variant
}

// Matches reports whether a manifest for os, arch and variant is selected by p. A p without a
// variant matches any variant. On arm64, variant "v8" and no variant are the same, since image
// indexes write arm64 both ways.
func (p Platform) Matches(os, arch, variant string) bool {
	if p.OS != os || p.Architecture != arch {
		return false
	}
	if p.Variant == "" {
		return true
	}
	if arch == "arm64" {
		return normaliseArm64(p.Variant) == normaliseArm64(variant)
	}
	return p.Variant == variant
}

func normaliseArm64(variant string) string {
	if variant == "" {
		return "v8"
	}
	return variant
}
