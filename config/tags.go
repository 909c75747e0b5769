package config

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// TagDecision says what Pick did with one listed tag and which rule decided it.
// It marshals to JSON as {"tag", "picked", "rule"} for reports.
type TagDecision struct {
	Tag    string `json:"tag"`
	Picked bool   `json:"picked"`
	// Rule names the filter as written in the file. For a dropped tag it is the filter that dropped
	// it: "invalid tag", "include ^1\." (no include matched; several are joined by " | "),
	// "exclude -rc" (the first exclude that matched), "not semver", "semver >=1.4.0 <2.0.0" (outside
	// the range) or "newest 2" (older than the newest 2). For a picked tag it lists the filters it
	// passed, joined by ", ": "include ^1\." (the one that matched), "exclude none of -rc | -debug",
	// "semver >=1.4.0 <2.0.0", "newest 2"; "all tags" when the entry has no filter.
	Rule string `json:"rule"`
}

// String returns "TAG picked: RULE" or "TAG dropped: RULE", a line of a dry-run plan.
func (d TagDecision) String() string {
	if d.Picked {
		return d.Tag + " picked: " + d.Rule
	}
	return d.Tag + " dropped: " + d.Rule
}

// Pick chooses which of a repository's tags to mirror; see TagFilter.Pick.
func (r Repository) Pick(tags []string) (picked []string, decisions []TagDecision) {
	return r.Tags.Pick(tags)
}

// candidate is a listed tag and, when the filter has a semver range and the tag parses, its version.
type candidate struct {
	tag     string
	version *semver.Version
}

// Pick applies the filter to the tags listed in a repository (all pages of the list) and returns
// the tags picked and one decision for each distinct listed tag. It is pure: the same tags in any
// order give the same result.
//
// Filters run in this order: a tag that is not a valid tag name is dropped; then include, exclude,
// semver and newest. With Semver set, a tag is a semantic version when Masterminds/semver/v3 parses
// it: "1.4.2", "v1.4.2", "1.4" (as 1.4.0) and "1.5.0-rc.1" are, "latest" is not. A pre-release is in
// a range only when the range names a pre-release (">=1.5.0-0"), the library's rule, so "*" leaves
// pre-releases out.
//
// Picked tags and decisions are ordered newest first by semver when Semver is set (tags of equal
// version, such as "1.4.0" and "v1.4.0", by name; tags that are not semver last, by name), else by
// name.
func (f TagFilter) Pick(tags []string) (picked []string, decisions []TagDecision) {
	var constraint *semver.Constraints
	if f.Semver != "" {
		c, err := semver.NewConstraint(f.Semver)
		if err != nil {
			for _, c := range f.order(tags) {
				decisions = append(decisions, TagDecision{Tag: c.tag, Rule: fmt.Sprintf("semver %s: invalid range: %v", f.Semver, err)})
			}
			return nil, decisions
		}
		constraint = c
	}
	for _, c := range f.order(tags) {
		rule := f.drop(c, constraint)
		if rule == "" && f.Newest > 0 && len(picked) >= f.Newest {
			rule = fmt.Sprintf("newest %d", f.Newest)
		}
		if rule != "" {
			decisions = append(decisions, TagDecision{Tag: c.tag, Rule: rule})
			continue
		}
		picked = append(picked, c.tag)
		decisions = append(decisions, TagDecision{Tag: c.tag, Picked: true, Rule: f.passed(c.tag)})
	}
	return picked, decisions
}

// order deduplicates tags and sorts them as Pick returns them, parsing versions when Semver is set.
func (f TagFilter) order(tags []string) []candidate {
	seen := make(map[string]bool, len(tags))
	var out []candidate
	for _, t := range tags {
		if seen[t] {
			continue
		}
		seen[t] = true
		c := candidate{tag: t}
		if f.Semver != "" {
			if v, err := semver.NewVersion(t); err == nil {
				c.version = v
			}
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b candidate) int {
		switch {
		case a.version != nil && b.version != nil:
			if c := b.version.Compare(a.version); c != 0 {
				return c
			}
		case a.version != nil:
			return -1
		case b.version != nil:
			return 1
		}
		return cmp.Compare(a.tag, b.tag)
	})
	return out
}

// drop returns the rule that drops c, or "" when c passes every filter but newest.
func (f TagFilter) drop(c candidate, constraint *semver.Constraints) string {
	switch {
	case !f.Versions && !tagRE.MatchString(c.tag):
		return "invalid tag"
	case len(f.Include) > 0 && matching(f.Include, c.tag) == nil:
		return "include " + joinPatterns(f.Include)
	}
	if re := matching(f.Exclude, c.tag); re != nil {
		return "exclude " + re.String()
	}
	if constraint != nil {
		if c.version == nil {
			return "not semver"
		}
		if !constraint.Check(c.version) {
			return "semver " + f.Semver
		}
	}
	return ""
}

// passed describes the filters a picked tag passed.
func (f TagFilter) passed(tag string) string {
	var parts []string
	if re := matching(f.Include, tag); re != nil {
		parts = append(parts, "include "+re.String())
	}
	if len(f.Exclude) > 0 {
		parts = append(parts, "exclude none of "+joinPatterns(f.Exclude))
	}
	if f.Semver != "" {
		parts = append(parts, "semver "+f.Semver)
	}
	if f.Newest > 0 {
		parts = append(parts, fmt.Sprintf("newest %d", f.Newest))
	}
	if len(parts) == 0 {
		return "all tags"
	}
	return strings.Join(parts, ", ")
}

// matching returns the first of res that matches s, or nil.
func matching(res []*regexp.Regexp, s string) *regexp.Regexp {
	for _, re := range res {
		if re.MatchString(s) {
			return re
		}
	}
	return nil
}

func joinPatterns(res []*regexp.Regexp) string {
	s := make([]string, len(res))
	for i, re := range res {
		s[i] = re.String()
	}
	return strings.Join(s, " | ")
}
