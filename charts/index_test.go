package charts

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	// The oracle: Helm's own index parser, in tests only (it costs the binary 24 MB,
	// docs/helm-charts.md section 6).
	repo "helm.sh/helm/v4/pkg/repo/v1"
)

// TestParseIndexMatchesHelm parses each testdata index with ParseIndex and with Helm's
// repo.LoadIndexFile and requires the same result: the same entries in the same order, with the
// same metadata (sanitized alike), URLs, digests and times, and the same failures.
func TestParseIndexMatchesHelm(t *testing.T) {
	cases := []struct {
		file    string
		dropped int // entries dropped as invalid: one warning each
		err     error
	}{
		{file: "relative.yaml", dropped: 3},
		{file: "absolute.yaml", dropped: 1},
		{file: "index.json", dropped: 1},
		{file: "no-apiversion.yaml", err: ErrNoAPIVersion},
		{file: "unknown-field.yaml", err: errors.New("strict")},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join("testdata", "repo", c.file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ours, warnings, err := ParseIndex(data)
			theirs, herr := repo.LoadIndexFile(path)
			if c.err != nil {
				if err == nil || herr == nil {
					t.Fatalf("ParseIndex: %v, helm: %v; want both to fail", err, herr)
				}
				if errors.Is(c.err, ErrNoAPIVersion) && (!errors.Is(err, ErrNoAPIVersion) || !errors.Is(herr, repo.ErrNoAPIVersion)) {
					t.Fatalf("ParseIndex: %v, helm: %v; want no API version from both", err, herr)
				}
				return
			}
			if err != nil || herr != nil {
				t.Fatalf("ParseIndex: %v, helm: %v", err, herr)
			}
			if len(warnings) != c.dropped {
				t.Errorf("warnings %q, want %d", warnings, c.dropped)
			}
			for _, w := range warnings {
				if !strings.HasPrefix(w, "skipping ") {
					t.Errorf("warning %q", w)
				}
			}
			if ours.APIVersion != theirs.APIVersion || !ours.Generated.Equal(theirs.Generated) ||
				!reflect.DeepEqual(ours.Annotations, theirs.Annotations) || !reflect.DeepEqual(ours.PublicKeys, theirs.PublicKeys) ||
				!reflect.DeepEqual(ours.ServerInfo, theirs.ServerInfo) {
				t.Errorf("header %+v, helm %+v", ours, theirs)
			}
			if got, want := sortedKeys(ours.Entries), sortedKeys(theirs.Entries); !slices.Equal(got, want) {
				t.Fatalf("charts %q, helm %q", got, want)
			}
			for name, hvs := range theirs.Entries {
				vs := ours.Entries[name]
				if len(vs) != len(hvs) {
					t.Errorf("%s: %d versions %q, helm %d %q", name, len(vs), versionsOf(vs), len(hvs), helmVersionsOf(hvs))
					continue
				}
				for i, h := range hvs {
					want := &ChartVersion{
						Metadata: h.Metadata, URLs: h.URLs, Created: h.Created, Removed: h.Removed, Digest: h.Digest,
						ChecksumDeprecated: h.ChecksumDeprecated, EngineDeprecated: h.EngineDeprecated,
						TillerVersionDeprecated: h.TillerVersionDeprecated, URLDeprecated: h.URLDeprecated,
					}
					if !reflect.DeepEqual(vs[i], want) {
						t.Errorf("%s[%d]:\n got %+v %+v\nhelm %+v %+v", name, i, vs[i], vs[i].Metadata, want, want.Metadata)
					}
				}
			}
			// Every URL resolves as Helm resolves it, against several spellings of the repository.
			for _, base := range []string{
				"https://charts.example.com/stable", "https://charts.example.com/stable/",
				"https://charts.example.com/stable?token=abc", "http://127.0.0.1:8080", "https://charts.example.com/a%2Fb/c",
			} {
				for _, vs := range ours.Entries {
					for _, cv := range vs {
						for _, u := range cv.URLs {
							got, err := ResolveReferenceURL(base, u)
							want, herr := repo.ResolveReferenceURL(base, u)
							if got != want || (err == nil) != (herr == nil) {
								t.Errorf("ResolveReferenceURL(%q, %q) = %q, %v; helm %q, %v", base, u, got, err, want, herr)
							}
						}
					}
				}
			}
		})
	}
}

// TestParseIndexOrder spells out what the oracle test checks on relative.yaml: newest first, a
// prerelease after its release, a removed entry kept (Helm keeps it too), invalid ones dropped.
func TestParseIndexOrder(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "repo", "relative.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	idx, warnings, err := ParseIndex(data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := versionsOf(idx.Entries["app"]), []string{"1.10.0", "1.10.0-rc.1", "1.9.0", "1.2.0"}; !slices.Equal(got, want) {
		t.Fatalf("app versions %q, want %q", got, want)
	}
	if !idx.Entries["app"][2].Removed {
		t.Error("1.9.0 should be marked removed")
	}
	if got, want := versionsOf(idx.Entries["legacy"]), []string{"0.2.0+build.7", "0.1.0"}; !slices.Equal(got, want) {
		t.Fatalf("legacy versions %q, want %q", got, want)
	}
	if got := idx.Entries["legacy"][1].Description; got != "A Helm 2 chart with a control character" {
		t.Errorf("description %q not sanitized as Metadata.Validate does", got)
	}
	if idx.Entries["legacy"][1].APIVersion != "v1" {
		t.Errorf("an entry without apiVersion gets v1, got %q", idx.Entries["legacy"][1].APIVersion)
	}
	joined := strings.Join(warnings, "\n")
	for _, want := range []string{`"app" version "not-a-version"`, `empty entry for chart "app"`, `"legacy" version "0.3.0"`} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings %q lack %s", warnings, want)
		}
	}
	if _, _, err := ParseIndex(nil); !errors.Is(err, ErrEmptyIndex) {
		t.Errorf("empty index: %v", err)
	}
}

func TestResolveReferenceURL(t *testing.T) {
	cases := []struct{ base, ref, want string }{
		{"https://charts.example.com/stable", "app-1.0.0.tgz", "https://charts.example.com/stable/app-1.0.0.tgz"},
		{"https://charts.example.com/stable/", "charts/app-1.0.0.tgz", "https://charts.example.com/stable/charts/app-1.0.0.tgz"},
		{"https://charts.example.com/stable?token=abc", "app-1.0.0.tgz", "https://charts.example.com/stable/app-1.0.0.tgz?token=abc"},
		{"https://charts.example.com/stable", "../other/app-1.0.0.tgz", "https://charts.example.com/other/app-1.0.0.tgz"},
		{"https://charts.example.com/stable", "/root/app-1.0.0.tgz", "https://charts.example.com/root/app-1.0.0.tgz"},
		{"https://charts.example.com/stable", "https://cdn.example.com/app-1.0.0.tgz", "https://cdn.example.com/app-1.0.0.tgz"},
		{"http://127.0.0.1:8080", "index.yaml", "http://127.0.0.1:8080/index.yaml"},
	}
	for _, c := range cases {
		got, err := ResolveReferenceURL(c.base, c.ref)
		want, herr := repo.ResolveReferenceURL(c.base, c.ref)
		if err != nil || herr != nil || got != c.want || want != c.want {
			t.Errorf("ResolveReferenceURL(%q, %q) = %q, %v; helm %q, %v; want %q", c.base, c.ref, got, err, want, herr, c.want)
		}
	}
	if _, err := ResolveReferenceURL("https://charts.example.com", "%zz"); err == nil {
		t.Error("a ref that is not a URL should fail")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func versionsOf(vs []*ChartVersion) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Version)
	}
	return out
}

func helmVersionsOf(vs repo.ChartVersions) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Version)
	}
	return out
}
