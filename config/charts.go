package config

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
	"gopkg.in/yaml.v3"

	"airlock.dev/airlock/internal/yamlfile"
)

// Chart is one entry of the charts list: a Helm chart from an HTTP chart repository (Repo + Name)
// or an OCI chart (Ref), carried with the images it runs.
type Chart struct {
	Repo               string     // http(s) URL of the chart repository, "" for an OCI chart
	Name               string     // chart name in the repository (with Repo)
	Version            string     // Masterminds/semver constraint or exact version; "" = every version
	Newest             int        // keep the newest N matching versions; default 1
	Digest             string     // optional, pins the index digest: written as bare hex or sha256:hex, kept as sha256:HEX; needs an exact Version
	Values             []byte     // inline values re-encoded as YAML; nil when not set
	ValuesFiles        [][]byte   // contents of valuesFiles, in order
	ValuesFileNames    []string   // the valuesFiles as written (for messages)
	KubeVersion        string     // "" = not set (charts.DefaultKubeVersion applies)
	APIVersions        []string   // API versions templates also see, as helm template --api-versions
	IncludeDisabled    []string   // subcharts to render although disabled
	IncludeAllDisabled bool       // includeDisabled: true
	FindImages         bool       // default true; false carries the chart only
	Platforms          []Platform // applies to every image the chart brings
	Target             string     // target repository path of the chart artifact, "" if not set
	Ref                *Image     // OCI chart: the reference after "oci://" parsed with ParseReference (Ref.Ref keeps the text as written, without "oci://"); nil for Repo
	Line               int
}

// OCIScheme prefixes the ref of an OCI chart, as helm writes it: "oci://registry.example.com/charts/app:1.4.2".
const OCIScheme = "oci://"

// AllVersions is the range a chart entry without a version picks from: every release, as helm's
// IndexFile.Get takes an empty version (pre-releases are left out, the semver library's rule).
const AllVersions = "*"

// Filter returns the TagFilter that picks this entry's versions (Semver: Version, or AllVersions when
// the entry has none; Newest: Newest).
func (c Chart) Filter() TagFilter {
	v := c.Version
	if v == "" {
		v = AllVersions
	}
	return TagFilter{Semver: v, Newest: c.Newest, Versions: true}
}

// String names the entry in messages: "https://charts.example.com/stable app" or
// "oci://host/path/app:1.4.2". It is the entry's canonical name, two entries with the same one are
// the same chart: the repository URL without a trailing slash, the OCI reference in canonical form
// (see Image.String).
func (c Chart) String() string {
	if c.Ref != nil {
		return OCIScheme + c.Ref.String()
	}
	return strings.TrimRight(c.Repo, "/") + " " + c.Name
}

var chartFields = []string{"repo", "name", "version", "newest", "digest", "values", "valuesFiles", "kubeVersion",
	"apiVersions", "includeDisabled", "findImages", "platforms", "target", "ref"}

// chartForms is how the two kinds of entry are written, shown when an entry is neither or both.
const chartForms = "an HTTP chart is repo + name, an OCI chart is ref: oci://HOST/PATH/NAME:VERSION"

// ociForm is what an OCI chart's ref looks like, shown in every ref error.
const ociForm = "expected oci://HOST[:PORT]/PATH/NAME:VERSION or oci://HOST[:PORT]/PATH/NAME@sha256:HEX, e.g. oci://registry.example.com/charts/app:1.4.2"

// charts reads the charts list. An entry whose canonical name (String) repeats an earlier entry's
// is reported as uniqueList reports it, except entries that each pin a different exact version by
// digest: that is how a pinned file (ImageSet.Pinned) lists several versions of one chart.
func (p *parser) charts(n *yaml.Node) []Chart {
	items, ok := p.List(n, "charts")
	if !ok {
		return nil
	}
	var out []Chart
	index := make(map[int]int) // index in out -> index in items
	for i, it := range items {
		field := fmt.Sprintf("charts[%d]", i)
		c, ok := p.chart(it, field)
		if !ok {
			continue
		}
		if j := slices.IndexFunc(out, c.sameAs); j >= 0 {
			k := index[j]
			p.Errorf(it, field, "duplicate of charts[%d] (line %d): both are %s; merge them into one entry", k, items[k].Line, c)
			continue
		}
		index[len(out)] = i
		out = append(out, c)
	}
	return out
}

// sameAs reports whether c and d name the same chart (String) and are not two pins, by digest, of
// different versions.
func (c Chart) sameAs(d Chart) bool {
	if c.String() != d.String() {
		return false
	}
	if c.Ref != nil || c.Digest == "" || d.Digest == "" {
		return true
	}
	cv, cerr := semver.NewVersion(trimExact(c.Version))
	dv, derr := semver.NewVersion(trimExact(d.Version))
	return cerr != nil || derr != nil || cv.Equal(dv)
}

func (p *parser) chart(n *yaml.Node, field string) (Chart, bool) {
	if yamlfile.IsString(n) {
		if strings.HasPrefix(n.Value, OCIScheme) {
			p.Errorf(n, field, "must be a mapping, got %s; write it as \"- ref: %s\"", yamlfile.Describe(n), n.Value)
		} else {
			p.Errorf(n, field, "must be a mapping, got %s; write it as \"- repo: URL\" with \"name: CHART\", or \"- ref: oci://...\"", yamlfile.Describe(n))
		}
		return Chart{}, false
	}
	f := p.Fields(n, field, chartFields)
	if f == nil {
		return Chart{}, false
	}
	before := p.NumErrors()
	c := Chart{Newest: 1, FindImages: true, Line: n.Line}
	rn, hasRepo := f["repo"]
	on, hasRef := f["ref"]
	switch {
	case hasRepo && hasRef:
		p.Errorf(n, field, "has both repo and ref; %s", chartForms)
	case !hasRepo && !hasRef:
		p.Errorf(n, field, "needs repo or ref; %s", chartForms)
	case hasRepo:
		c.Repo = p.chartRepo(rn, field+".repo")
		if nn, ok := f["name"]; !ok {
			p.Errorf(n, field+".name", "missing; a chart from repo needs the chart's name in the repository's index.yaml, such as app")
		} else {
			c.Name = p.chartName(nn, field+".name")
		}
	default:
		c.Ref = p.chartRef(on, field+".ref")
		if c.Ref != nil {
			c.Ref.Line = n.Line
		}
		for _, name := range []string{"name", "version", "newest", "digest"} {
			if x, ok := f[name]; ok {
				p.Errorf(x, field+"."+name, "not allowed with ref; %s", refHint(name))
			}
		}
	}
	if hasRepo && !hasRef {
		exact := false
		if vn, ok := f["version"]; ok {
			c.Version, exact = p.chartVersion(vn, field+".version")
		}
		if nn, ok := f["newest"]; ok {
			c.Newest = p.wholeAboveZero(nn, field+".newest", "leave newest out to keep the newest version only")
		}
		if dn, ok := f["digest"]; ok {
			c.Digest = p.chartDigest(dn, field+".digest", c.Version, exact, f["version"] != nil)
		}
	}
	if vn, ok := f["values"]; ok && !yamlfile.IsNull(vn) {
		c.Values = p.values(vn, field+".values")
	}
	if vn, ok := f["valuesFiles"]; ok {
		c.ValuesFileNames, c.ValuesFiles = p.valuesFiles(vn, field+".valuesFiles")
	}
	if kn, ok := f["kubeVersion"]; ok {
		c.KubeVersion = p.kubeVersion(kn, field+".kubeVersion")
	}
	if an, ok := f["apiVersions"]; ok {
		c.APIVersions = p.apiVersions(an, field+".apiVersions")
	}
	if in, ok := f["includeDisabled"]; ok {
		c.IncludeDisabled, c.IncludeAllDisabled = p.includeDisabled(in, field+".includeDisabled")
	}
	if fn, ok := f["findImages"]; ok {
		c.FindImages = p.boolean(fn, field+".findImages")
	}
	if pn, ok := f["platforms"]; ok {
		c.Platforms = p.platforms(pn, field+".platforms")
	}
	if tn, ok := f["target"]; ok {
		c.Target = p.chartTarget(tn, field+".target", c)
	}
	return c, p.NumErrors() == before
}

// refHint says why a field is not allowed beside ref.
func refHint(field string) string {
	switch field {
	case "name":
		return "an OCI chart's name is the last part of its ref (oci://HOST/PATH/NAME:VERSION)"
	case "digest":
		return "pin an OCI chart in its ref: oci://HOST/PATH/NAME:VERSION@sha256:HEX"
	default: // version, newest
		return "an OCI chart's version is the tag of its ref (oci://HOST/PATH/NAME:VERSION); list one entry per version"
	}
}

// chartRepo reads charts[].repo: an http:// or https:// URL with a host and no credentials.
func (p *parser) chartRepo(n *yaml.Node, field string) string {
	s, ok := p.Str(n, field)
	if !ok {
		return ""
	}
	const expected = "expected http:// or https:// and a host, e.g. https://charts.example.com/stable"
	u, err := url.Parse(s)
	switch {
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		p.Errorf(n, field, "%q is not an HTTP chart repository URL: %s; %s", s, err, expected)
	case u.Scheme == "oci":
		p.Errorf(n, field, "%q is an OCI reference, not an HTTP chart repository; write it as ref: %s/NAME:VERSION, without name", s, strings.TrimRight(s, "/"))
	case u.Scheme != "http" && u.Scheme != "https":
		p.Errorf(n, field, "%q is not an HTTP chart repository URL; %s", s, expected)
	case u.Host == "":
		p.Errorf(n, field, "%q is not an HTTP chart repository URL: no host; %s", s, expected)
	case u.User != nil:
		p.Errorf(n, field, "%q holds credentials; the ImageSet file travels in the archive (and into the pinned file), so leave them out of the URL", u.Redacted())
	case u.Fragment != "" || strings.HasSuffix(s, "#"):
		p.Errorf(n, field, "%q has a #fragment; %s", s, expected)
	default:
		return s
	}
	return ""
}

// chartName reads charts[].name: the chart's name as index.yaml lists it, a single path element
// (helm's Metadata.Validate refuses any other).
func (p *parser) chartName(n *yaml.Node, field string) string {
	s, ok := p.Str(n, field)
	if !ok {
		return ""
	}
	switch {
	case s == "":
		p.Errorf(n, field, "empty; the chart's name in the repository's index.yaml, such as app")
	case s == "." || s == ".." || strings.ContainsAny(s, `/\`) || strings.TrimSpace(s) != s || strings.ContainsAny(s, " \t\r\n"):
		p.Errorf(n, field, "%q is not a chart name; a chart name is one path element without spaces, such as app", s)
	default:
		return s
	}
	return ""
}

// chartRef reads charts[].ref: oci:// and a reference with a tag or a digest.
func (p *parser) chartRef(n *yaml.Node, field string) *Image {
	s, ok := p.Str(n, field)
	if !ok {
		return nil
	}
	rest, found := strings.CutPrefix(s, OCIScheme)
	if !found {
		if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
			p.Errorf(n, field, "%q is an HTTP URL; a chart repository is repo: URL with name: CHART, an OCI chart is %s", s, strings.TrimPrefix(ociForm, "expected "))
		} else {
			p.Errorf(n, field, "%q does not start with %s; %s", s, OCIScheme, ociForm)
		}
		return nil
	}
	img, err := parseReference(rest)
	if err != nil {
		p.Errorf(n, field, "invalid reference %q: %s; %s", s, err, ociForm)
		return nil
	}
	if img.Digest == "" && strings.LastIndexByte(rest, ':') <= strings.LastIndexByte(rest, '/') {
		p.Errorf(n, field, "%q has no version; %s", s, ociForm)
		return nil
	}
	return &img
}

// chartVersion reads charts[].version, a Masterminds/semver/v3 constraint as helm's IndexFile.Get
// takes, and reports whether it names exactly one version.
func (p *parser) chartVersion(n *yaml.Node, field string) (string, bool) {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		p.Errorf(n, field, "must be a string, got %s; quote it: version: '%s'", yamlfile.Describe(n), n.Value)
		return "", false
	}
	s, ok := p.semverRange(n, field)
	return s, ok && exactVersion(s)
}

// exactVersion reports whether the constraint s matches one version only: "1.4.2", "v1.4.2",
// "=1.4.2" or "1.5.0-rc.1" do, "1.4" (1.4.x) does not.
func exactVersion(s string) bool {
	_, err := semver.StrictNewVersion(strings.TrimPrefix(trimExact(s), "v"))
	return err == nil
}

// trimExact drops the "=" of an exact version written as a constraint ("=1.4.2").
func trimExact(s string) string {
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "="))
}

// sha256HexRE is a sha256 digest in hex, as index.yaml writes it (lowercase).
var sha256HexRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// chartDigest reads charts[].digest: the index digest of the one version the entry names, written
// bare (as helm repo index writes it) or as sha256:HEX, returned as sha256:HEX.
func (p *parser) chartDigest(n *yaml.Node, field, version string, exact, hasVersion bool) string {
	s, ok := p.Str(n, field)
	if !ok {
		return ""
	}
	hex := strings.TrimPrefix(s, "sha256:")
	if !sha256HexRE.MatchString(hex) {
		p.Errorf(n, field, "%q is not a sha256 digest; expected sha256:HEX or the 64 lowercase hex characters index.yaml gives", s)
		return ""
	}
	switch {
	case !hasVersion:
		p.Errorf(n, field, "needs an exact version such as '1.4.2', got none (every version)")
		return ""
	case version == "":
		return "" // the version's own error is reported
	case !exact:
		p.Errorf(n, field, "needs an exact version such as '1.4.2', got range '%s'", version)
		return ""
	}
	return "sha256:" + hex
}

// kubeVersion reads charts[].kubeVersion: MAJOR.MINOR[.PATCH], with or without a leading v, as
// helm's common.ParseKubeVersion reads it.
func (p *parser) kubeVersion(n *yaml.Node, field string) string {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		p.Errorf(n, field, "must be a string, got %s; quote it or give the patch too, e.g. kubeVersion: 1.31.0", yamlfile.Describe(n))
		return ""
	}
	s, ok := p.Str(n, field)
	if !ok {
		return ""
	}
	core, _, _ := strings.Cut(strings.TrimPrefix(s, "v"), "-")
	core, _, _ = strings.Cut(core, "+")
	if _, err := semver.NewVersion(s); err != nil || !strings.Contains(core, ".") {
		p.Errorf(n, field, "%q is not a Kubernetes version; e.g. 1.31.0", s)
		return ""
	}
	return s
}

// includeDisabled reads charts[].includeDisabled: a list of subchart names (or aliases, or paths
// such as app/cache), or true for every subchart; false is the same as leaving it out.
func (p *parser) includeDisabled(n *yaml.Node, field string) (names []string, all bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		return nil, p.boolean(n, field)
	}
	if yamlfile.IsEmptyList(n) {
		p.Errorf(n, field, "empty list; leave includeDisabled out to render only the subcharts the values enable")
		return nil, false
	}
	if n.Kind != yaml.SequenceNode {
		p.Errorf(n, field, "must be a list of subchart names or true, got %s", yamlfile.Describe(n))
		return nil, false
	}
	items, _ := p.List(n, field)
	for i, item := range items {
		itemField := fmt.Sprintf("%s[%d]", field, i)
		s, ok := p.Str(item, itemField)
		if !ok {
			continue
		}
		switch {
		case s == "" || strings.ContainsAny(s, " \t\r\n"):
			p.Errorf(item, itemField, "%q is not a subchart name; name it as Chart.yaml's dependencies do (its alias if it has one), e.g. cache", s)
		case slices.Contains(names, s):
			p.Errorf(item, itemField, "%s listed twice", s)
		default:
			names = append(names, s)
		}
	}
	return names, false
}

// apiVersions reads charts[].apiVersions: GROUP/VERSION or GROUP/VERSION/KIND, as helm template
// --api-versions takes them ("v1" for the core group).
func (p *parser) apiVersions(n *yaml.Node, field string) []string {
	if n.Kind != yaml.SequenceNode || yamlfile.IsEmptyList(n) {
		p.Errorf(n, field, "must be a non-empty list of API versions, e.g. [monitoring.coreos.com/v1, monitoring.coreos.com/v1/ServiceMonitor], got %s", yamlfile.Describe(n))
		return nil
	}
	var out []string
	items, _ := p.List(n, field)
	for i, item := range items {
		itemField := fmt.Sprintf("%s[%d]", field, i)
		s, ok := p.Str(item, itemField)
		switch {
		case !ok:
		case s == "" || strings.ContainsAny(s, " \t\r\n") || strings.Count(s, "/") > 2 || strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/"):
			p.Errorf(item, itemField, "%q is not an API version; write GROUP/VERSION or GROUP/VERSION/KIND, e.g. monitoring.coreos.com/v1/ServiceMonitor", s)
		default:
			out = append(out, s)
		}
	}
	return out
}

// boolean reads true or false.
func (p *parser) boolean(n *yaml.Node, field string) bool {
	var v bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&v) != nil {
		p.Errorf(n, field, "must be true or false, got %s", yamlfile.Describe(n))
		return false
	}
	return v
}

// chartTarget reads charts[].target, a repository path as images use it whose last element is the
// chart's name: helm pull finds a chart at oci://HOST/PATH/NAME.
func (p *parser) chartTarget(n *yaml.Node, field string, c Chart) string {
	before := p.NumErrors()
	s := p.target(n, field)
	if p.NumErrors() != before {
		return ""
	}
	name := c.Name
	if c.Ref != nil {
		name = path.Base(c.Ref.Repository)
	}
	if name != "" && path.Base(s) != name {
		p.Errorf(n, field, "%q must end in the chart's name, %s, since helm finds a chart at oci://HOST/PATH/NAME; e.g. %s", s, name, path.Join(path.Dir(s), name))
		return ""
	}
	return s
}

// semverRange reads a Masterminds/semver/v3 constraint (repositories[].tags.semver, charts[].version).
func (p *parser) semverRange(n *yaml.Node, field string) (string, bool) {
	s, ok := p.Str(n, field)
	if !ok {
		return "", false
	}
	if _, err := semver.NewConstraint(s); err != nil {
		p.Errorf(n, field, "invalid semver range %q: %s; expected a range such as '>=1.4.0 <2.0.0', '~1.4', '^1' or '*'", s, err)
		return "", false
	}
	return s, true
}

// wholeAboveZero reads a whole number above 0 (repositories[].tags.newest, charts[].newest); hint
// says what leaving it out means.
func (p *parser) wholeAboveZero(n *yaml.Node, field, hint string) int {
	var v int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
		p.Errorf(n, field, "must be a whole number above 0, got %s", yamlfile.Describe(n))
		return 0
	}
	if v <= 0 {
		p.Errorf(n, field, "must be a whole number above 0, got %s; %s", strconv.Itoa(v), hint)
		return 0
	}
	return v
}
