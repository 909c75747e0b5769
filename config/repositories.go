package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"airlock.dev/airlock/internal/yamlfile"
)

// Repository is one entry of the repositories list: a repository whose tags are listed at save
// time and picked by Tags (see Pick). Each picked tag becomes an Image with the entry's Platforms
// and Target (see Image), exactly as if it were listed under images.
type Repository struct {
	Name       string     // as written in the file, e.g. "registry.example.com/team/app"
	Registry   string     // e.g. "registry.example.com" or "127.0.0.1:5000"
	Repository string     // e.g. "team/app"
	Tags       TagFilter  // which tags are picked; the zero value picks every tag
	Platforms  []Platform // empty = all platforms
	Target     string     // target repository path used by load, "" if not set
	Line       int        // line of this entry in the file
}

// TagFilter says which tags of a repository are picked. A tag is picked when it matches one of
// Include (or Include is empty), matches none of Exclude, and, when Semver is set, is a semantic
// version inside the Semver range; of the tags left, Newest > 0 keeps the newest N by semver order.
// Regular expressions use Go's syntax (RE2) and are not anchored: "-rc" matches "1.5.0-rc.1".
type TagFilter struct {
	Include []*regexp.Regexp // a tag must match one; empty = every tag
	Exclude []*regexp.Regexp // a tag must match none
	Semver  string           // a Masterminds/semver/v3 constraint such as ">=1.4.0 <2.0.0"; "" = not set
	Newest  int              // the newest N after the other filters, by semver order; 0 = all
	// Versions: the names are chart versions (index.yaml), not tags, so they are not held to tag
	// syntax: "1.4.2+build.1" is a version (its tag is "1.4.2_build.1", charts.ChartTag).
	Versions bool
}

// String returns the canonical repository name "registry/repository".
func (r Repository) String() string {
	return r.Registry + "/" + r.Repository
}

// Image returns the image for one picked tag, exactly as if it were listed under images with this
// entry's platforms and target. The tag is not checked: pass tags that Pick picked.
func (r Repository) Image(tag string) Image {
	return Image{
		Ref:        r.Name + ":" + tag,
		Registry:   r.Registry,
		Repository: r.Repository,
		Tag:        tag,
		Platforms:  slices.Clone(r.Platforms),
		Target:     r.Target,
		Line:       r.Line,
	}
}

var (
	repositoryFields = []string{"name", "tags", "platforms", "target"}
	tagFields        = []string{"include", "exclude", "semver", "newest"}
)

// imagesAndRepositories reads the images, repositories and charts lists of the top-level mapping
// root, whose fields f returned. Any of them may be missing, null or empty, but not all: the file
// must name at least one image, a repository or a chart.
func (p *parser) imagesAndRepositories(root *yaml.Node, f map[string]*yaml.Node) ([]Image, []Repository, []Chart) {
	in, hasImages := f["images"]
	rn, hasRepos := f["repositories"]
	cn, hasCharts := f["charts"]
	listsImages := hasImages && !yamlfile.IsEmptyList(in)
	listsRepos := hasRepos && !yamlfile.IsEmptyList(rn)
	listsCharts := hasCharts && !yamlfile.IsEmptyList(cn)
	var images []Image
	var repos []Repository
	var charts []Chart
	if listsImages {
		images = uniqueList(p, in, "images", p.image, "")
	}
	if listsRepos {
		repos = uniqueList(p, rn, "repositories", p.repository, "; merge their tag filters into one entry")
	}
	if listsCharts {
		charts = p.charts(cn)
	}
	switch {
	case listsImages || listsRepos || listsCharts:
	case hasImages:
		p.Errorf(in, "images", "must list at least one image, or a repository under repositories or a chart under charts")
	case hasRepos:
		p.Errorf(rn, "repositories", "must list at least one repository, or an image under images or a chart under charts")
	case hasCharts:
		p.Errorf(cn, "charts", "must list at least one chart, or an image under images or a repository under repositories")
	default:
		p.Errorf(root, "images", "missing; list at least one image, e.g. images: [{ref: registry.example.com/team/app:1.4.2}], or a repository under repositories or a chart under charts")
	}
	return images, repos, charts
}

func (p *parser) repository(n *yaml.Node, field string) (Repository, bool) {
	if yamlfile.IsString(n) {
		p.Errorf(n, field, "must be a mapping, got %s; write it as \"- name: %s\"", yamlfile.Describe(n), n.Value)
		return Repository{}, false
	}
	f := p.Fields(n, field, repositoryFields)
	if f == nil {
		return Repository{}, false
	}
	before := p.NumErrors()
	var r Repository
	if nn, ok := f["name"]; !ok {
		p.Errorf(n, field+".name", "missing; every repository needs a name such as registry.example.com/team/app")
	} else if s, ok := p.Str(nn, field+".name"); ok {
		p.repositoryName(nn, field+".name", s, &r)
	}
	if tn, ok := f["tags"]; ok && !yamlfile.IsNull(tn) {
		r.Tags = p.tagFilter(tn, field+".tags")
	}
	if pn, ok := f["platforms"]; ok {
		r.Platforms = p.platforms(pn, field+".platforms")
	}
	if tn, ok := f["target"]; ok {
		r.Target = p.target(tn, field+".target")
	}
	r.Line = n.Line
	return r, p.NumErrors() == before
}

// repositoryName checks a repository name: HOST[:PORT]/PATH, validated as image references are,
// without a tag or digest.
func (p *parser) repositoryName(n *yaml.Node, field, s string, r *Repository) {
	img, err := parseReference(s)
	if err != nil {
		p.Errorf(n, field, "invalid repository name %q: %s; expected HOST[:PORT]/REPOSITORY, e.g. registry.example.com/team/app", s, err)
		return
	}
	if img.Digest != "" || strings.LastIndexByte(s, ':') > strings.LastIndexByte(s, '/') {
		p.Errorf(n, field, "repository name %q has a tag or digest; name the repository only (%s) and choose tags with tags.include, tags.exclude, tags.semver and tags.newest, or list the image under images", s, img.RepositoryRef())
		return
	}
	r.Name, r.Registry, r.Repository = s, img.Registry, img.Repository
}

func (p *parser) tagFilter(n *yaml.Node, field string) TagFilter {
	var t TagFilter
	f := p.Fields(n, field, tagFields)
	if f == nil {
		return t
	}
	if in, ok := f["include"]; ok {
		t.Include = p.patterns(in, field+".include", "leave include out to keep every tag")
	}
	if en, ok := f["exclude"]; ok {
		t.Exclude = p.patterns(en, field+".exclude", "leave exclude out to drop no tag")
	}
	if sn, ok := f["semver"]; ok {
		t.Semver, _ = p.semverRange(sn, field+".semver")
	}
	if nn, ok := f["newest"]; ok {
		t.Newest = p.newest(nn, field+".newest", f["semver"] != nil)
	}
	return t
}

// newest reads tags.newest: a whole number above 0, valid only beside tags.semver, which orders
// the tags.
func (p *parser) newest(n *yaml.Node, field string, hasSemver bool) int {
	v := p.wholeAboveZero(n, field, "leave newest out to keep every tag the filters pick")
	if v == 0 {
		return 0
	}
	if !hasSemver {
		p.Errorf(n, field, "needs tags.semver, which orders the tags; add semver: '*' to keep the newest %d release tags", v)
		return 0
	}
	return v
}

// patterns reads a non-empty list of regular expressions; hint says how to write "none".
func (p *parser) patterns(n *yaml.Node, field, hint string) []*regexp.Regexp {
	if yamlfile.IsEmptyList(n) {
		p.Errorf(n, field, "empty list; %s", hint)
		return nil
	}
	return p.patternList(n, field)
}

// patternList reads a list of regular expressions, possibly empty.
func (p *parser) patternList(n *yaml.Node, field string) []*regexp.Regexp {
	items, ok := p.List(n, field)
	if !ok {
		return nil
	}
	var out []*regexp.Regexp
	for i, item := range items {
		if re, ok := p.pattern(item, fmt.Sprintf("%s[%d]", field, i)); ok {
			out = append(out, re)
		}
	}
	return out
}

// pattern reads one regular expression in Go (RE2) syntax.
func (p *parser) pattern(n *yaml.Node, field string) (*regexp.Regexp, bool) {
	s, ok := p.Str(n, field)
	if !ok {
		return nil, false
	}
	if s == "" {
		p.Errorf(n, field, "empty regular expression; it would match everything")
		return nil, false
	}
	re, err := regexp.Compile(s)
	if err != nil {
		p.Errorf(n, field, "invalid regular expression %q: %s; the syntax is Go's (RE2), and a backslash in YAML needs single quotes, e.g. '^1\\.'", s, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		return nil, false
	}
	return re, true
}
