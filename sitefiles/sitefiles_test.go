package sitefiles_test

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"gopkg.in/yaml.v3"

	"airlock.dev/airlock/sitefiles"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ with the current output")

func siteDigest(s string) digest.Digest { return digest.FromString(s) }

// siteCases are the golden-file cases: each renders into testdata/<name>/.
var siteCases = []struct {
	name string
	ms   []sitefiles.Mapping
}{
	{
		// Two source hosts (one Docker Hub), a TLS target and a loopback target, a digest-only repository.
		name: "mixed",
		ms: []sitefiles.Mapping{
			{
				Source:           "registry.example.com/team/app:1.4.2",
				SourceRepository: "registry.example.com/team/app",
				Target:           "site.example:5000/mirror/team/app",
				Tag:              "1.4.2",
				Digest:           siteDigest("app-1.4.2"),
			},
			{
				Source:           "registry.example.com/team/app:1.4.1",
				SourceRepository: "registry.example.com/team/app",
				Target:           "site.example:5000/mirror/team/app",
				Tag:              "1.4.1",
				Digest:           siteDigest("app-1.4.1"),
			},
			{
				Source:           "registry.example.com/team/api@" + siteDigest("api").String(),
				SourceRepository: "registry.example.com/team/api",
				Target:           "site.example:5000/mirror/team/api",
				Digest:           siteDigest("api"),
			},
			{
				Source:           "docker.io/library/nginx:1.27",
				SourceRepository: "docker.io/library/nginx",
				Target:           "127.0.0.1:5000/mirror/library/nginx",
				Tag:              "1.27",
				Digest:           siteDigest("nginx"),
			},
			{
				Source:           "docker.io/bitnami/redis:7.4",
				SourceRepository: "docker.io/bitnami/redis",
				Target:           "127.0.0.1:5000/mirror/bitnami/redis",
				Tag:              "7.4",
				Digest:           siteDigest("redis"),
			},
		},
	},
	{
		// One source host split over two target prefixes, an IPv6 loopback target at the registry root,
		// a repository loaded both by tag and by digest into different targets, Docker Hub short names,
		// and a target that renames the path (not expressible for containerd).
		name: "prefixes",
		ms: []sitefiles.Mapping{
			{
				Source:           "quay.io/org/a:1",
				SourceRepository: "quay.io/org/a",
				Target:           "site.example/one/org/a",
				Tag:              "1",
				Digest:           siteDigest("a"),
			},
			{
				Source:           "quay.io/org/a@" + siteDigest("a").String(),
				SourceRepository: "quay.io/org/a",
				Target:           "[::1]:5000/org/a",
				Digest:           siteDigest("a"),
			},
			{
				Source:           "quay.io/org/b:2",
				SourceRepository: "quay.io/org/b",
				Target:           "site.example/two/org/b",
				Tag:              "2",
				Digest:           siteDigest("b"),
			},
			{
				Source:           "quay.io/org/c:3",
				SourceRepository: "quay.io/org/c",
				Target:           "site.example/renamed/c",
				Tag:              "3",
				Digest:           siteDigest("c"),
			},
			{
				Source:           "busybox@" + siteDigest("busybox").String(),
				SourceRepository: "busybox",
				Target:           "localhost:5000/library/busybox",
				Digest:           siteDigest("busybox"),
			},
		},
	},
}

func TestWriteGolden(t *testing.T) {
	for _, tc := range siteCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "site", "files") // does not exist yet
			files, err := sitefiles.Write(dir, tc.ms)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.IsSorted(files) {
				t.Errorf("files not sorted: %v", files)
			}
			if got := listSiteFiles(t, dir); !slices.Equal(got, files) {
				t.Errorf("files on disk = %v, returned %v (leftover temporary files?)", got, files)
			}

			golden := filepath.Join("testdata", tc.name)
			if *update {
				if err := os.RemoveAll(golden); err != nil {
					t.Fatal(err)
				}
				for _, f := range files {
					data := readSiteFile(t, dir, f)
					dst := filepath.Join(golden, filepath.FromSlash(f))
					if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(dst, data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			if want := listSiteFiles(t, golden); !slices.Equal(files, want) {
				t.Fatalf("files = %v, golden has %v (run go test ./sitefiles -update)", files, want)
			}
			for _, f := range files {
				got, want := readSiteFile(t, dir, f), readSiteFile(t, golden, f)
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from golden (run with -update to accept)\n--- got\n%s\n--- want\n%s", f, got, want)
				}
			}
		})
	}
}

func TestWriteDeterministic(t *testing.T) {
	for _, tc := range siteCases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := t.TempDir(), t.TempDir()
			rev := slices.Clone(tc.ms)
			slices.Reverse(rev)
			rev = append(rev, tc.ms...) // duplicates must not change anything
			fa, err := sitefiles.Write(a, tc.ms)
			if err != nil {
				t.Fatal(err)
			}
			fb, err := sitefiles.Write(b, rev)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(fa, fb) {
				t.Fatalf("file lists differ: %v vs %v", fa, fb)
			}
			for _, f := range fa {
				if !bytes.Equal(readSiteFile(t, a, f), readSiteFile(t, b, f)) {
					t.Errorf("%s depends on input order or duplicates", f)
				}
			}
		})
	}
}

func TestWriteHeaders(t *testing.T) {
	dir := t.TempDir()
	files, err := sitefiles.Write(dir, siteCases[0].ms)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		first, _, _ := strings.Cut(string(readSiteFile(t, dir, f)), "\n")
		if !strings.HasPrefix(first, "# Generated by airlock from 5 images.") {
			t.Errorf("%s: header = %q", f, first)
		}
	}
}

func TestWriteYAML(t *testing.T) {
	dir := t.TempDir()
	if _, err := sitefiles.Write(dir, siteCases[0].ms); err != nil {
		t.Fatal(err)
	}
	type item struct {
		Source  string   `yaml:"source"`
		Mirrors []string `yaml:"mirrors"`
	}
	type doc struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Spec map[string][]item `yaml:"spec"`
	}
	for _, tc := range []struct {
		file, kind, field string
		want              []item
	}{
		{"imagedigestmirrorset.yaml", "ImageDigestMirrorSet", "imageDigestMirrors", []item{
			{"docker.io/bitnami/redis", []string{"127.0.0.1:5000/mirror/bitnami/redis"}},
			{"docker.io/library/nginx", []string{"127.0.0.1:5000/mirror/library/nginx"}},
			{"registry.example.com/team/api", []string{"site.example:5000/mirror/team/api"}},
			{"registry.example.com/team/app", []string{"site.example:5000/mirror/team/app"}},
		}},
		{"imagetagmirrorset.yaml", "ImageTagMirrorSet", "imageTagMirrors", []item{
			{"docker.io/bitnami/redis", []string{"127.0.0.1:5000/mirror/bitnami/redis"}},
			{"docker.io/library/nginx", []string{"127.0.0.1:5000/mirror/library/nginx"}},
			{"registry.example.com/team/app", []string{"site.example:5000/mirror/team/app"}},
		}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			var d doc
			dec := yaml.NewDecoder(bytes.NewReader(readSiteFile(t, dir, tc.file)))
			dec.KnownFields(true)
			if err := dec.Decode(&d); err != nil {
				t.Fatal(err)
			}
			if d.APIVersion != "config.openshift.io/v1" || d.Kind != tc.kind || d.Metadata.Name != "airlock" {
				t.Errorf("apiVersion/kind/name = %q/%q/%q", d.APIVersion, d.Kind, d.Metadata.Name)
			}
			if len(d.Spec) != 1 {
				t.Errorf("spec keys = %v, want only %s (no mirrorSourcePolicy)", d.Spec, tc.field)
			}
			got := d.Spec[tc.field]
			if !slices.EqualFunc(got, tc.want, func(a, b item) bool {
				return a.Source == b.Source && slices.Equal(a.Mirrors, b.Mirrors)
			}) {
				t.Errorf("spec.%s = %v, want %v", tc.field, got, tc.want)
			}
		})
	}
}

func TestWriteTOMLQuotes(t *testing.T) {
	for _, tc := range siteCases {
		dir := t.TempDir()
		files, err := sitefiles.Write(dir, tc.ms)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, f := range files {
			if filepath.Ext(f) != ".toml" && filepath.Ext(f) != ".conf" {
				continue
			}
			n++
			for i, line := range strings.Split(string(readSiteFile(t, dir, f)), "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "#") {
					continue
				}
				if q := strings.Count(strings.ReplaceAll(line, `\"`, ""), `"`); q%2 != 0 {
					t.Errorf("%s/%s:%d: unbalanced quotes: %s", tc.name, f, i+1, line)
				}
				if strings.Count(line, "[") != strings.Count(line, "]") {
					t.Errorf("%s/%s:%d: unbalanced brackets: %s", tc.name, f, i+1, line)
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: no TOML files written", tc.name)
		}
	}
}

func TestWriteErrors(t *testing.T) {
	good := siteCases[0].ms[0]
	for _, tc := range []struct {
		name string
		ms   []sitefiles.Mapping
		want string
	}{
		{"empty", nil, "no images"},
		{"no target", []sitefiles.Mapping{good, func() sitefiles.Mapping {
			m := good
			m.Source, m.Target = "registry.example.com/team/lost:1", ""
			return m
		}()}, `"registry.example.com/team/lost:1" has no target`},
		{"no source repository", []sitefiles.Mapping{func() sitefiles.Mapping {
			m := good
			m.Source, m.SourceRepository = "registry.example.com/team/orphan:1", ""
			return m
		}()}, `"registry.example.com/team/orphan:1" has no source repository`},
		{"bad digest", []sitefiles.Mapping{func() sitefiles.Mapping {
			m := good
			m.Digest = "sha256:nope"
			return m
		}()}, `"registry.example.com/team/app:1.4.2": digest`},
		{"target is a host", []sitefiles.Mapping{func() sitefiles.Mapping {
			m := good
			m.Target = "site.example:5000"
			return m
		}()}, "not a repository"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			files, err := sitefiles.Write(dir, tc.ms)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if files != nil {
				t.Errorf("files = %v on error", files)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("output directory created despite invalid input (stat: %v)", err)
			}
		})
	}
}

func listSiteFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func readSiteFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
