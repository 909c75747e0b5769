package config

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// issueTags are the tags of the repository in issue 12's examples.
var issueTags = []string{"1.0.0", "1.4.2", "1.5.0-rc.1", "2.0.0"}

func res(patterns ...string) []*regexp.Regexp {
	var out []*regexp.Regexp
	for _, p := range patterns {
		out = append(out, regexp.MustCompile(p))
	}
	return out
}

// pickTests are TestPick's cases: issue 12's examples first.
var pickTests = []struct {
	name   string
	filter TagFilter
	tags   []string
	picked []string
	// dropped maps each dropped tag to the rule that must have dropped it.
	dropped map[string]string
}{
	{
		name: "semver range picks exactly 1.4.2", filter: TagFilter{Semver: ">=1.4.0 <2.0.0"}, tags: issueTags,
		picked: []string{"1.4.2"},
		dropped: map[string]string{"1.0.0": "semver >=1.4.0 <2.0.0", "1.5.0-rc.1": "semver >=1.4.0 <2.0.0",
			"2.0.0": "semver >=1.4.0 <2.0.0"},
	},
	{
		name: "include with exclude", filter: TagFilter{Include: res(`^1\.`), Exclude: res(`-rc`)}, tags: issueTags,
		picked:  []string{"1.0.0", "1.4.2"},
		dropped: map[string]string{"1.5.0-rc.1": "exclude -rc", "2.0.0": `include ^1\.`},
	},
	{
		name: "newest 2 of every release", filter: TagFilter{Semver: "*", Newest: 2}, tags: issueTags,
		picked:  []string{"2.0.0", "1.4.2"},
		dropped: map[string]string{"1.5.0-rc.1": "semver *", "1.0.0": "newest 2"},
	},
	{
		name: "no filter picks every tag, sorted by name", filter: TagFilter{},
		tags:   []string{"latest", "2.0.0", "1.0.0", "1.5.0-rc.1"},
		picked: []string{"1.0.0", "1.5.0-rc.1", "2.0.0", "latest"},
	},
	{
		name: "pre-release picked when the range names one", filter: TagFilter{Semver: ">=1.5.0-0 <2.0.0"}, tags: issueTags,
		picked:  []string{"1.5.0-rc.1"},
		dropped: map[string]string{"1.0.0": "semver >=1.5.0-0 <2.0.0", "1.4.2": "semver >=1.5.0-0 <2.0.0", "2.0.0": "semver >=1.5.0-0 <2.0.0"},
	},
	{
		name: "tags that are not semver are dropped when semver is set", filter: TagFilter{Semver: ">=1"},
		tags:    []string{"latest", "1.4.2", "stable", "sha-0a1b2c"},
		picked:  []string{"1.4.2"},
		dropped: map[string]string{"latest": "not semver", "stable": "not semver", "sha-0a1b2c": "not semver"},
	},
	{
		name: "v-prefixed tags are semver and sort with the others", filter: TagFilter{Semver: "^1", Newest: 3},
		tags:    []string{"v1.2.3", "1.10.0", "v1.9.0", "1.2.4", "v2.0.0"},
		picked:  []string{"1.10.0", "v1.9.0", "1.2.4"},
		dropped: map[string]string{"v1.2.3": "newest 3", "v2.0.0": "semver ^1"},
	},
	{
		name: "semver order, not name order", filter: TagFilter{Semver: "*", Newest: 1},
		tags:    []string{"1.9.0", "1.10.0"},
		picked:  []string{"1.10.0"},
		dropped: map[string]string{"1.9.0": "newest 1"},
	},
	{
		name: "short versions count, equal versions ordered by name", filter: TagFilter{Semver: "~1.4"},
		tags:   []string{"v1.4.0", "1.4", "1.4.0", "1.4.1"},
		picked: []string{"1.4.1", "1.4", "1.4.0", "v1.4.0"},
	},
	{
		name: "newest counts only tags the other filters kept", filter: TagFilter{Exclude: res(`^2\.`), Semver: "*", Newest: 2},
		tags:    []string{"2.1.0", "2.0.0", "1.4.2", "1.0.0", "0.9.0"},
		picked:  []string{"1.4.2", "1.0.0"},
		dropped: map[string]string{"2.1.0": `exclude ^2\.`, "2.0.0": `exclude ^2\.`, "0.9.0": "newest 2"},
	},
	{
		name: "several includes, several excludes", filter: TagFilter{Include: res(`^1\.`, `^3\.`), Exclude: res(`-rc`, `-debug`)},
		tags:    []string{"1.0.0-debug", "1.0.0", "2.0.0", "3.0.0", "3.1.0-rc.1"},
		picked:  []string{"1.0.0", "3.0.0"},
		dropped: map[string]string{"1.0.0-debug": "exclude -debug", "2.0.0": `include ^1\. | ^3\.`, "3.1.0-rc.1": "exclude -rc"},
	},
	{
		name: "regexes are not anchored", filter: TagFilter{Include: res(`alpine`)},
		tags:    []string{"1.27-alpine", "alpine", "1.27"},
		picked:  []string{"1.27-alpine", "alpine"},
		dropped: map[string]string{"1.27": "include alpine"},
	},
	{
		name: "invalid tag names and repeats from the registry", filter: TagFilter{},
		tags:    []string{"1.0.0", "1.0.0", "-bad", "a b", ""},
		picked:  []string{"1.0.0"},
		dropped: map[string]string{"-bad": "invalid tag", "a b": "invalid tag", "": "invalid tag"},
	},
	{
		name: "chart versions are not held to tag syntax: build metadata is a version", filter: TagFilter{Semver: "*", Newest: 2, Versions: true},
		tags:    []string{"1.4.2+build.7", "1.4.1", "1.4.0"},
		picked:  []string{"1.4.2+build.7", "1.4.1"},
		dropped: map[string]string{"1.4.0": "newest 2"},
	},
	{
		name: "as tags, the same names are invalid", filter: TagFilter{Semver: "*", Newest: 2},
		tags:    []string{"1.4.2+build.7", "1.4.1", "1.4.0"},
		picked:  []string{"1.4.1", "1.4.0"},
		dropped: map[string]string{"1.4.2+build.7": "invalid tag"},
	},
	{
		name: "no tags", filter: TagFilter{Semver: "*", Newest: 2},
	},
	{
		name: "invalid range built by hand drops every tag", filter: TagFilter{Semver: ">>1"},
		tags:    []string{"1.0.0"},
		dropped: map[string]string{"1.0.0": "semver >>1: invalid range"},
	},
}

func TestPick(t *testing.T) {
	for _, tt := range pickTests {
		t.Run(tt.name, func(t *testing.T) {
			picked, decisions := tt.filter.Pick(tt.tags)
			if !slices.Equal(picked, tt.picked) {
				t.Errorf("picked %q, want %q", picked, tt.picked)
			}
			checkDecisions(t, tt.tags, picked, decisions, tt.dropped)
			// The same tags in another order give the same result.
			reversed := slices.Clone(tt.tags)
			slices.Reverse(reversed)
			again, againDecisions := tt.filter.Pick(reversed)
			if !slices.Equal(again, picked) || !slices.Equal(againDecisions, decisions) {
				t.Errorf("tags in reverse order: picked %q, decisions %v; want %q, %v", again, againDecisions, picked, decisions)
			}
		})
	}
}

// checkDecisions checks that there is one decision per distinct tag, that the picked ones are
// exactly picked, and that each dropped tag was dropped by the rule dropped names (a prefix).
func checkDecisions(t *testing.T, tags, picked []string, decisions []TagDecision, dropped map[string]string) {
	t.Helper()
	distinct := slices.Compact(slices.Sorted(slices.Values(tags)))
	var decided, pickedByDecision []string
	for _, d := range decisions {
		decided = append(decided, d.Tag)
		if d.Picked {
			pickedByDecision = append(pickedByDecision, d.Tag)
			if d.Rule == "" {
				t.Errorf("%s picked with no rule", d.Tag)
			}
			continue
		}
		want, ok := dropped[d.Tag]
		if !ok {
			t.Errorf("%s dropped by %q, want it picked", d.Tag, d.Rule)
		} else if !strings.HasPrefix(d.Rule, want) {
			t.Errorf("%s dropped by %q, want %q", d.Tag, d.Rule, want)
		}
	}
	if slices.Sort(decided); !slices.Equal(decided, distinct) {
		t.Errorf("decisions for %q, want one for each of %q", decided, distinct)
	}
	if !slices.Equal(pickedByDecision, picked) {
		t.Errorf("decisions pick %q in that order, Pick returned %q", pickedByDecision, picked)
	}
}

func TestPickRules(t *testing.T) {
	f := TagFilter{Include: res(`^1\.`), Exclude: res(`-rc`, `-debug`), Semver: ">=1.4.0 <2.0.0", Newest: 1}
	_, decisions := f.Pick([]string{"1.4.2", "1.4.1", "2.0.0"})
	want := []string{ // newest first, by semver
		`2.0.0 dropped: include ^1\.`,
		`1.4.2 picked: include ^1\., exclude none of -rc | -debug, semver >=1.4.0 <2.0.0, newest 1`,
		`1.4.1 dropped: newest 1`,
	}
	var got []string
	for _, d := range decisions {
		got = append(got, d.String())
	}
	if !slices.Equal(got, want) {
		t.Errorf("decisions:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if _, d := (TagFilter{}).Pick([]string{"x"}); d[0].String() != "x picked: all tags" {
		t.Errorf("no filter: %q, want %q", d[0], "x picked: all tags")
	}
}

func TestRepositoryImage(t *testing.T) {
	set, err := Parse("imageset.yaml", []byte(header+"repositories:\n  - name: registry.example.com/team/app\n"+
		"    tags: {semver: '>=1.4.0 <2.0.0'}\n    platforms: [linux/amd64]\n    target: site/app\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := set.Repositories[0]
	picked, _ := r.Pick(issueTags)
	if !slices.Equal(picked, []string{"1.4.2"}) {
		t.Fatalf("picked %q, want [1.4.2]", picked)
	}
	img := r.Image(picked[0])
	listed, err := Parse("imageset.yaml", []byte(header+"images:\n  - ref: registry.example.com/team/app:1.4.2\n"+
		"    platforms: [linux/amd64]\n    target: site/app\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := listed.Images[0]
	want.Line = r.Line
	if img.String() != want.String() || img.Ref != want.Ref || img.Target != want.Target ||
		!slices.Equal(img.Platforms, want.Platforms) || img.Line != want.Line {
		t.Errorf("Image(1.4.2) = %+v, want %+v, as if listed under images", img, want)
	}
	img.Platforms[0].OS = "windows"
	if r.Platforms[0].OS != "linux" {
		t.Errorf("changing an image's platforms changed the repository's")
	}
}
