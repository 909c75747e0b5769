package config

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// issueRepository is the repositories entry of issue 12, as users write it.
const issueRepository = "repositories:\n" +
	"  - name: registry.example.com/team/app\n" +
	"    tags:\n" +
	"      include: ['^1\\.']\n" +
	"      exclude: ['-rc', '-debug']\n" +
	"      semver: '>=1.4.0 <2.0.0'\n" +
	"      newest: 5\n" +
	"    platforms: [linux/amd64]\n" +
	"    target: site/app\n"

func TestParseRepositories(t *testing.T) {
	s, err := Parse("imageset.yaml", []byte(header+issueRepository+
		"  - name: 127.0.0.1:5000/mirror/tools\n"+
		"  - name: nginx\n    tags:\nblocked:\n  - ':latest$'\n  - '^docker\\.io/'\n"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(s.Images) != 0 || len(s.Repositories) != 3 {
		t.Fatalf("got %d images and %d repositories, want 0 and 3", len(s.Images), len(s.Repositories))
	}
	app := s.Repositories[0]
	if app.Name != "registry.example.com/team/app" || app.Registry != "registry.example.com" || app.Repository != "team/app" ||
		app.Target != "site/app" || app.Line != 4 || !reflect.DeepEqual(app.Platforms, []Platform{{"linux", "amd64", ""}}) {
		t.Errorf("repositories[0] = %+v", app)
	}
	tags := app.Tags
	if joinPatterns(tags.Include) != `^1\.` || joinPatterns(tags.Exclude) != "-rc | -debug" ||
		tags.Semver != ">=1.4.0 <2.0.0" || tags.Newest != 5 {
		t.Errorf("repositories[0].tags = include %q, exclude %q, semver %q, newest %d",
			joinPatterns(tags.Include), joinPatterns(tags.Exclude), tags.Semver, tags.Newest)
	}
	if got := []string{s.Repositories[1].String(), s.Repositories[2].String()}; !slices.Equal(got,
		[]string{"127.0.0.1:5000/mirror/tools", "docker.io/library/nginx"}) {
		t.Errorf("repositories[1:] = %q", got)
	}
	if tools := s.Repositories[1]; !reflect.DeepEqual(tools.Tags, TagFilter{}) || tools.Platforms != nil {
		t.Errorf("repositories[1] without tags = %+v, want the zero filter (every tag), all platforms", tools)
	}
	if got := joinPatterns(s.BlockedRules); got != `:latest$ | ^docker\.io/` {
		t.Errorf("blocked = %q", got)
	}
}

func TestParseImagesOrRepositories(t *testing.T) {
	for _, tt := range []struct {
		name, yaml string
		images     int
		repos      int
	}{
		{"images only", header + "images: [{ref: a.io/b}]\n", 1, 0},
		{"repositories only", header + "repositories: [{name: a.io/b}]\n", 0, 1},
		{"both", header + "images: [{ref: a.io/b:1}]\nrepositories: [{name: a.io/b}]\n", 1, 1},
		{"empty images beside repositories", header + "images: []\nrepositories: [{name: a.io/b}]\n", 0, 1},
		{"null repositories beside images", header + "images: [{ref: a.io/b}]\nrepositories:\n", 1, 0},
		{"empty blocked", header + "images: [{ref: a.io/b}]\nblocked: []\n", 1, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("imageset.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(s.Images) != tt.images || len(s.Repositories) != tt.repos {
				t.Errorf("got %d images, %d repositories, want %d, %d", len(s.Images), len(s.Repositories), tt.images, tt.repos)
			}
		})
	}
}

func TestParseRepositoryErrors(t *testing.T) {
	const repo = "repositories:\n  - name: registry.example.com/team/app\n"
	tests := []struct {
		name, yaml string
		want       string // the whole error must start with this
	}{
		{"name with a tag", header + "repositories:\n  - name: registry.example.com/team/app:1.4.2\n",
			`imageset.yaml:4: repositories[0].name: repository name "registry.example.com/team/app:1.4.2" has a tag or digest; name the repository only (registry.example.com/team/app)`},
		{"name with a digest", header + "repositories:\n  - name: a.io/b@" + digA + "\n",
			`imageset.yaml:4: repositories[0].name: repository name "a.io/b@` + digA + `" has a tag or digest`},
		{"name with latest", header + "repositories:\n  - name: a.io/b:latest\n",
			`imageset.yaml:4: repositories[0].name: repository name "a.io/b:latest" has a tag or digest`},
		{"invalid name", header + "repositories:\n  - name: registry.example.com/Team/App\n",
			`imageset.yaml:4: repositories[0].name: invalid repository name "registry.example.com/Team/App": repository "Team/App" is invalid: repository names must be lowercase; expected HOST[:PORT]/REPOSITORY`},
		{"missing name", header + "repositories:\n  - tags: {semver: '*'}\n",
			"imageset.yaml:4: repositories[0].name: missing; every repository needs a name"},
		{"bare string", header + "repositories:\n  - a.io/b\n",
			`imageset.yaml:4: repositories[0]: must be a mapping, got string "a.io/b"; write it as "- name: a.io/b"`},
		{"unknown field", header + repo + "    tag: {semver: '*'}\n",
			"imageset.yaml:5: repositories[0].tag: unknown field; known fields: name, tags, platforms, target"},
		{"unknown tags field", header + repo + "    tags:\n      newer: 2\n",
			"imageset.yaml:6: repositories[0].tags.newer: unknown field; known fields: include, exclude, semver, newest"},
		{"duplicate repository", header + repo + "  - name: registry.example.com/team/app\n",
			"imageset.yaml:5: repositories[1]: duplicate of repositories[0] (line 4): both are registry.example.com/team/app"},
		{"invalid include", header + repo + "    tags:\n      include: ['^1\\.', '(']\n",
			`imageset.yaml:6: repositories[0].tags.include[1]: invalid regular expression "(": missing closing ): ` + "`(`"},
		{"invalid exclude", header + repo + "    tags:\n      exclude:\n        - '[rc'\n",
			`imageset.yaml:7: repositories[0].tags.exclude[0]: invalid regular expression "[rc": missing closing ]`},
		{"empty include", header + repo + "    tags:\n      include: []\n",
			"imageset.yaml:6: repositories[0].tags.include: empty list; leave include out to keep every tag"},
		{"empty pattern", header + repo + "    tags:\n      exclude: ['']\n",
			"imageset.yaml:6: repositories[0].tags.exclude[0]: empty regular expression"},
		{"include not a list", header + repo + "    tags:\n      include: '^1'\n",
			`imageset.yaml:6: repositories[0].tags.include: must be a list, got string "^1"`},
		{"invalid semver", header + repo + "    tags:\n      semver: '>=1.4.0 <two'\n",
			`imageset.yaml:6: repositories[0].tags.semver: invalid semver range ">=1.4.0 <two": `},
		{"semver not a string", header + repo + "    tags:\n      semver: 1\n",
			"imageset.yaml:6: repositories[0].tags.semver: must be a string, got integer 1"},
		{"newest zero", header + repo + "    tags:\n      semver: '*'\n      newest: 0\n",
			"imageset.yaml:7: repositories[0].tags.newest: must be a whole number above 0, got 0"},
		{"newest negative", header + repo + "    tags:\n      semver: '*'\n      newest: -2\n",
			"imageset.yaml:7: repositories[0].tags.newest: must be a whole number above 0, got -2"},
		{"newest not a number", header + repo + "    tags:\n      semver: '*'\n      newest: five\n",
			`imageset.yaml:7: repositories[0].tags.newest: must be a whole number above 0, got string "five"`},
		{"newest without semver", header + repo + "    tags:\n      include: ['^1']\n      newest: 2\n",
			"imageset.yaml:7: repositories[0].tags.newest: needs tags.semver, which orders the tags; add semver: '*'"},
		{"bad platform", header + repo + "    platforms: [linux]\n",
			`imageset.yaml:5: repositories[0].platforms[0]: platform "linux" is invalid`},
		{"bad target", header + repo + "    target: Site/App\n",
			`imageset.yaml:5: repositories[0].target: repository "Site/App" is invalid`},
		{"empty repositories, no images", header + "repositories: []\n",
			"imageset.yaml:3: repositories: must list at least one repository, or an image under images"},
		{"neither images nor repositories", header,
			"imageset.yaml:1: images: missing; list at least one image, e.g. images: [{ref: registry.example.com/team/app:1.4.2}], or a repository under repositories"},
		{"repositories not a list", header + "repositories: {name: a.io/b}\n",
			"imageset.yaml:3: repositories: must be a list, got a mapping"},
		{"invalid blocked", header + "images: [{ref: a.io/b}]\nblocked:\n  - ':latest$'\n  - '*'\n",
			`imageset.yaml:6: blocked[1]: invalid regular expression "*": missing argument to repetition operator`},
		{"blocked not a list", header + "images: [{ref: a.io/b}]\nblocked: ':latest$'\n",
			`imageset.yaml:4: blocked: must be a list, got string ":latest$"`},
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
			}
		})
	}
}

func TestParseRepositoriesReportsEveryError(t *testing.T) {
	yaml := header +
		"repositories:\n" +
		"  - name: a.io/app:1.0\n" + // 4
		"    tags:\n" +
		"      include: ['(']\n" + // 6
		"      exclude: ['-rc']\n" +
		"      newest: 0\n" + // 8
		"  - name: a.io/api\n" +
		"    tags:\n" +
		"      semver: 'one'\n" + // 11
		"      newest: 3\n" +
		"  - name: a.io/web\n" +
		"    tags: {newest: 3}\n" + // 14
		"blocked: ['[']\n" // 15
	_, err := Parse("imageset.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("Parse succeeded, want errors")
	}
	for _, want := range []string{
		"imageset.yaml:4: repositories[0].name: ",
		"imageset.yaml:6: repositories[0].tags.include[0]: ",
		"imageset.yaml:8: repositories[0].tags.newest: must be a whole number above 0",
		"imageset.yaml:11: repositories[1].tags.semver: invalid semver range",
		"imageset.yaml:14: repositories[2].tags.newest: needs tags.semver",
		"imageset.yaml:15: blocked[0]: ",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 6 {
		t.Errorf("got %d errors, want 6:\n%s", n, err)
	}
}
