// Package config reads the ImageSet file that tells airlock what to move: the images, the
// repositories whose tags are picked by filters (Repository.Pick), the Helm charts carried with the
// images they run (Chart), the references that are never
// moved (the blocked list, which ImageSet.Expand applies), which referrers (signatures, SBOMs, attestations) travel with them, and
// the trust material used to verify them on the far side. ImageSet.Pinned writes the resolved set
// back as an ImageSet file with every image pinned by digest.
//
// The file is decoded node by node so that every validation error names the file, the line and
// the field, for example "imageset.yaml:7: images[1].platfroms: unknown field; known fields: ref,
// platforms, target". Relative paths in the file are resolved against the file's directory.
package config

import (
	"fmt"
	"mime"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"gopkg.in/yaml.v3"

	"airlock.dev/airlock/internal/yamlfile"
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
	Path         string // the file as given
	Dir          string // absolute directory of the file; relative paths below are resolved against it
	Images       []Image
	Repositories []Repository     // repositories whose tags are picked by filters
	Charts       []Chart          // Helm charts, carried with the images they run
	BlockedRules []*regexp.Regexp // the blocked list: a reference one matches is never saved or copied (see Expand)
	Referrers    Referrers
	Trust        Trust
	Policy       string // absolute path, "" when not set
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

// Error is a validation error that names the place: "FILE:LINE: FIELD: MESSAGE". Its fields are
// File (the file as given to Load or Parse), Line (1-based, 0 when unknown), Field (a dotted path
// such as "images[1].platforms[0]", "" for the whole file) and Msg.
type Error = yamlfile.Error

// Load reads and validates the ImageSet file at path.
func Load(path string) (*ImageSet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading image set: %w", err)
	}
	return Parse(path, data)
}

// Parse validates data read from path. The path is used in error messages and to resolve relative
// paths (against the directory of path, made absolute: a relative path is taken from the working
// directory). The files it names are not opened, except the charts' valuesFiles, which are read
// (Chart.ValuesFiles keeps their contents) so that a missing or broken one is reported with the
// rest. Every problem found is reported: the error is an *Error, or several joined with errors.Join.
func Parse(path string, data []byte) (*ImageSet, error) {
	yp, err := yamlfile.NewParser(path)
	if err != nil {
		return nil, err
	}
	root, err := yamlfile.Decode(path, data, "an ImageSet with apiVersion, kind and images", "an ImageSet file")
	if err != nil {
		return nil, err
	}
	p := &parser{yp}
	set := p.imageSet(root)
	if err := p.Err(); err != nil {
		return nil, err
	}
	set.Path = path
	set.Dir = p.Dir()
	return set, nil
}

// parser walks the document, collecting errors.
type parser struct {
	*yamlfile.Parser
}

var (
	topFields       = []string{"apiVersion", "kind", "images", "repositories", "blocked", "referrers", "trust", "policy", "charts"}
	imageFields     = []string{"ref", "platforms", "target"}
	referrersFields = []string{"enabled", "artifactTypes"}
	trustFields     = []string{"keys", "trustedRoot"}
)

func (p *parser) imageSet(root *yaml.Node) *ImageSet {
	root = yamlfile.Deref(root)
	set := &ImageSet{Referrers: Referrers{Enabled: true, ArtifactTypes: slices.Clone(DefaultArtifactTypes)}}
	f := p.Fields(root, "", topFields)
	if f == nil {
		return set
	}

	p.Expect(root, f, "apiVersion", APIVersion)
	p.Expect(root, f, "kind", Kind)

	set.Images, set.Repositories, set.Charts = p.imagesAndRepositories(root, f)
	if n, ok := f["blocked"]; ok && !yamlfile.IsNull(n) {
		set.BlockedRules = p.patternList(n, "blocked") // regular expressions on full references; [] blocks nothing
	}
	if n, ok := f["referrers"]; ok && !yamlfile.IsNull(n) {
		set.Referrers = p.referrers(n)
	}
	if n, ok := f["trust"]; ok && !yamlfile.IsNull(n) {
		set.Trust = p.trust(n)
	}
	if n, ok := f["policy"]; ok && !yamlfile.IsNull(n) {
		set.Policy, _ = p.Path(n, "policy", "")
	}
	return set
}

// uniqueList reads the list field (images, repositories) with item, and reports an entry whose
// canonical name (String) repeats an earlier entry's as "duplicate of field[j] (line L): both are
// NAME" followed by hint.
func uniqueList[T fmt.Stringer](p *parser, n *yaml.Node, field string, item func(*yaml.Node, string) (T, bool), hint string) []T {
	items, ok := p.List(n, field)
	if !ok {
		return nil
	}
	var out []T
	seen := make(map[string]int) // canonical name -> index in items
	for i, it := range items {
		itemField := fmt.Sprintf("%s[%d]", field, i)
		v, ok := item(it, itemField)
		if !ok {
			continue
		}
		key := v.String()
		if j, dup := seen[key]; dup {
			p.Errorf(it, itemField, "duplicate of %s[%d] (line %d): both are %s%s", field, j, items[j].Line, key, hint)
			continue
		}
		seen[key] = i
		out = append(out, v)
	}
	return out
}

func (p *parser) image(n *yaml.Node, field string) (Image, bool) {
	if yamlfile.IsString(n) {
		p.Errorf(n, field, "must be a mapping, got %s; write it as \"- ref: %s\"", yamlfile.Describe(n), n.Value)
		return Image{}, false
	}
	f := p.Fields(n, field, imageFields)
	if f == nil {
		return Image{}, false
	}
	before := p.NumErrors()
	var img Image
	if rn, ok := f["ref"]; !ok {
		p.Errorf(n, field+".ref", "missing; every image needs a ref such as registry.example.com/team/app:1.4.2")
	} else if s, ok := p.Str(rn, field+".ref"); ok {
		parsed, err := ParseReference(s)
		if err != nil {
			p.Errorf(rn, field+".ref", "%s", err)
		} else {
			img = parsed
		}
	}
	if pn, ok := f["platforms"]; ok {
		img.Platforms = p.platforms(pn, field+".platforms")
	}
	if tn, ok := f["target"]; ok {
		img.Target = p.target(tn, field+".target")
	}
	img.Line = n.Line
	return img, p.NumErrors() == before
}

// target reads a target repository path (images[].target, repositories[].target).
func (p *parser) target(n *yaml.Node, field string) string {
	s, ok := p.Str(n, field)
	if !ok {
		return ""
	}
	if err := checkRepository(s); err != nil {
		p.Errorf(n, field, "%s; expected a repository path such as site/web", err)
	}
	return s
}

func (p *parser) platforms(n *yaml.Node, field string) []Platform {
	items, ok := p.List(n, field)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		p.Errorf(n, field, "empty list; leave platforms out to keep all platforms")
		return nil
	}
	var out []Platform
	for i, item := range items {
		itemField := fmt.Sprintf("%s[%d]", field, i)
		s, ok := p.Str(item, itemField)
		if !ok {
			continue
		}
		pl, err := ParsePlatform(s)
		if err != nil {
			p.Errorf(item, itemField, "%s", err)
			continue
		}
		if slices.Contains(out, pl) {
			p.Errorf(item, itemField, "platform %s listed twice", pl)
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
	r := Referrers{Enabled: true, ArtifactTypes: slices.Clone(DefaultArtifactTypes)}
	f := p.Fields(n, "referrers", referrersFields)
	if f == nil {
		return r
	}
	if en, ok := f["enabled"]; ok {
		if en.Kind != yaml.ScalarNode || en.Tag != "!!bool" {
			p.Errorf(en, "referrers.enabled", "must be true or false, got %s", yamlfile.Describe(en))
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
	if yamlfile.IsEmptyList(n) {
		p.Errorf(n, field, "must list at least one artifact type; use [default], [\"*\"] or media types")
		return nil, false
	}
	items, ok := p.List(n, field)
	if !ok {
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
		s, ok := p.Str(item, itemField)
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
				p.Errorf(item, itemField, "%s", err)
				continue
			}
			add(s)
		}
	}
	if all {
		if len(items) > 1 {
			p.Errorf(n, field, "%q keeps every artifact type and cannot be combined with others", ArtifactTypesAll)
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
	f := p.Fields(n, "trust", trustFields)
	if f == nil {
		return t
	}
	if kn, ok := f["keys"]; ok && !yamlfile.IsNull(kn) {
		if items, ok := p.List(kn, "trust.keys"); ok {
			for i, item := range items {
				if path, ok := p.Path(item, fmt.Sprintf("trust.keys[%d]", i), ""); ok {
					t.Keys = append(t.Keys, path)
				}
			}
		}
	}
	if rn, ok := f["trustedRoot"]; ok && !yamlfile.IsNull(rn) {
		t.TrustedRoot, _ = p.Path(rn, "trust.trustedRoot", "")
	}
	return t
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
