package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"
	"gopkg.in/yaml.v3"
)

// fuzzImageSetSeeds are valid ImageSet files, the shapes the fuzzer mutates from.
var fuzzImageSetSeeds = []string{
	header + "images:\n  - ref: registry.example.com/team/app:1.4.2\n",
	header + "images:\n  - ref: registry.example.com/team/api@" + digA + "\n" +
		"  - ref: registry.example.com/team/web:2.0@" + digB + "\n" +
		"    platforms: [linux/amd64, linux/arm/v7]\n    target: site/web\n",
	header + "images: [{ref: a.io/b}]\nreferrers:\n  enabled: false\n",
	header + "images: [{ref: a.io/b}]\nreferrers:\n  artifactTypes: ['*']\n",
	header + "images: [{ref: a.io/b}]\nreferrers:\n  artifactTypes:\n" +
		"    - application/vnd.example+json; version=1\n    - default\n    - text/spdx\n",
	header + "images: [{ref: a.io/b}]\ntrust:\n  keys: [keys/release.pub, /etc/airlock/other.pub]\n" +
		"  trustedRoot: trust/trusted_root.json\npolicy: ../policy.yaml\n",
	header + "images:\n  - ref: a.io/b:1\n    platforms: &p [linux/amd64]\n  - ref: a.io/c:1\n    platforms: *p\n",
	header + "images: [{ref: nginx}, {ref: 'index.docker.io/bitnami/redis'}, {ref: '[::1]:5000/app:1'}]\n",
	header + "images: [{ref: a.io/b}]\nreferrers:\ntrust:\npolicy:\n",
	header + issueRepository,
	header + "images: [{ref: a.io/b:1}]\nrepositories:\n  - name: a.io/b\n    tags: {semver: '*', newest: 2}\n" +
		"  - name: '127.0.0.1:5000/mirror/tools'\n    tags:\n      include: ['^v?1\\.', 'alpine']\n      exclude: ['-rc']\n" +
		"blocked: [':latest$', '^docker\\.io/']\n",
	header + "repositories: [{name: nginx, tags: {semver: '>=1.5.0-0 <2', newest: 1}, platforms: [linux/amd64], target: site/x}]\n",
	header + chartRepo + "    version: '>=1.4.0 <2.0.0'\n    newest: 2\n    values: {image: {tag: '1.4.2'}, ratio: 1.20}\n" +
		"    kubeVersion: 1.31.0\n    includeDisabled: [cache]\n    platforms: [linux/amd64]\n    target: site/charts/app\n" +
		"  - ref: oci://registry.example.com/charts/db:12.1.0\n    includeDisabled: true\n    findImages: false\n",
	header + "images: [{ref: a.io/b:1}]\ncharts:\n  - repo: http://127.0.0.1:8080/charts/\n    name: tools\n    version: 2.0.1\n" +
		"    digest: " + hexA + "\n  - repo: http://127.0.0.1:8080/charts\n    name: tools\n    version: v1.3.0\n    digest: " + digB + "\n" +
		"  - ref: oci://nginx-charts:1@" + digA + "\n    target: site/nginx-charts\n",
	header + chartRepo + "    values: &v\n      image: &img {registry: m.io, tag: 1.20}\n      sidecar: *img\n" +
		"    valuesFiles: [testdata/imageset.yaml]\n" +
		"  - repo: https://charts.example.com/stable\n    name: web\n    values: {<<: *v, extra: true}\n",
	// found by the fuzzer: a merge key whose value is not a mapping is well-formed YAML but not values
	header + chartRepo + "    values: {!!merge <<: '', a: ''}\n",
}

// fuzzTags is the tag list every fuzzed repository entry is picked from.
var fuzzTags = []string{"1.0.0", "1.4.2", "1.5.0-rc.1", "2.0.0", "v1.2.3", "1.4", "latest", "1.27-alpine", "-bad", "1.0.0"}

// FuzzParseImageSet checks that Parse never panics, that every image it accepts names a registry
// and a repository and survives a round trip through its canonical form, that every repository it
// accepts picks tags consistently (checkRepositories), that the set pinned by digest reads back as
// the same images (checkPinned), and that every error it reports names the file.
func FuzzParseImageSet(f *testing.F) {
	for _, s := range fuzzImageSetSeeds {
		f.Add([]byte(s))
	}
	if b, err := os.ReadFile("testdata/imageset.yaml"); err == nil {
		f.Add(b)
	} else {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := Parse("f.yaml", data)
		if err != nil {
			if set != nil {
				t.Errorf("Parse returned both an image set and an error: %v", err)
			}
			checkFileErrors(t, err)
			return
		}
		if len(set.Images) == 0 && len(set.Repositories) == 0 && len(set.Charts) == 0 {
			t.Fatalf("Parse succeeded with no images, no repositories and no charts")
		}
		checkImages(t, set.Images)
		picked := checkRepositories(t, set.Repositories)
		checkCharts(t, set.Charts)
		checkPinned(t, set, picked)
	})
}

// checkImages checks that every image names a registry, a repository and a tag or digest, is
// listed once, and has a canonical form that parses back to itself.
func checkImages(t *testing.T, images []Image) {
	t.Helper()
	seen := map[string]bool{}
	for i, img := range images {
		if img.Registry == "" || img.Repository == "" {
			t.Errorf("images[%d] = %+v: empty registry or repository", i, img)
		}
		if img.Tag == "" && img.Digest == "" {
			t.Errorf("images[%d] = %+v: neither tag nor digest", i, img)
		}
		s := img.String()
		if seen[s] {
			t.Errorf("images[%d]: %s accepted twice", i, s)
		}
		seen[s] = true
		again, err := ParseReference(s)
		if err != nil {
			t.Errorf("images[%d]: canonical form %q does not parse: %v", i, s, err)
			continue
		}
		if got := again.String(); got != s {
			t.Errorf("images[%d]: %q re-parses to %q", i, s, got)
		}
	}
}

// checkRepositories checks each repository entry: a name without tag or digest, newest only with
// semver, and a Pick of fuzzTags that decides every distinct tag once, picks at most newest
// tags, semver ones when semver is set, and whose images are valid references of that repository. It returns the
// tags picked, by repository.
func checkRepositories(t *testing.T, repos []Repository) map[string][]string {
	t.Helper()
	picked := make(map[string][]string)
	for i, r := range repos {
		if img, err := ParseReference(r.String()); err != nil || img.Tag != DefaultTag || img.RepositoryRef() != r.String() {
			t.Errorf("repositories[%d]: name %q (canonical %q) is not a plain repository: %v", i, r.Name, r, err)
		}
		if r.Tags.Newest < 0 || (r.Tags.Newest > 0 && r.Tags.Semver == "") {
			t.Errorf("repositories[%d]: newest %d accepted with semver %q", i, r.Tags.Newest, r.Tags.Semver)
		}
		tags, decisions := r.Pick(fuzzTags)
		if distinct := slices.Compact(slices.Sorted(slices.Values(fuzzTags))); len(decisions) != len(distinct) {
			t.Errorf("repositories[%d]: %d decisions for %d distinct tags", i, len(decisions), len(distinct))
		}
		if r.Tags.Newest > 0 && len(tags) > r.Tags.Newest {
			t.Errorf("repositories[%d]: picked %q, more than newest %d", i, tags, r.Tags.Newest)
		}
		for _, tag := range tags {
			if _, err := semver.NewVersion(tag); r.Tags.Semver != "" && err != nil {
				t.Errorf("repositories[%d]: picked %q, not semver, with semver %q", i, tag, r.Tags.Semver)
			}
			img := r.Image(tag)
			again, err := ParseReference(img.String())
			if err != nil || again.String() != img.String() || again.Tag != tag {
				t.Errorf("repositories[%d]: image %q of tag %q does not parse back: %v", i, img, tag, err)
			}
		}
		picked[r.String()] = tags
	}
	return picked
}

// checkCharts checks each chart entry: exactly one of repo and ref, newest above 0 and picked to,
// a digest only beside an exact version and in sha256:HEX form, values that are YAML mappings, a
// target ending in the chart's name, and an OCI ref whose canonical form parses back to itself.
func checkCharts(t *testing.T, charts []Chart) {
	t.Helper()
	seen := map[string]bool{}
	for i, c := range charts {
		if (c.Repo == "") == (c.Ref == nil) || (c.Repo != "") != (c.Name != "") {
			t.Errorf("charts[%d] = %+v: not exactly one of repo + name and ref", i, c)
		}
		if c.Newest < 1 {
			t.Errorf("charts[%d]: newest %d", i, c.Newest)
		}
		if c.Digest != "" && (!exactVersion(c.Version) || !strings.HasPrefix(c.Digest, "sha256:") || !sha256HexRE.MatchString(c.Digest[7:])) {
			t.Errorf("charts[%d]: digest %q accepted with version %q", i, c.Digest, c.Version)
		}
		if key := c.String() + " " + c.Digest; seen[key] {
			t.Errorf("charts[%d]: %s accepted twice", i, key)
		} else {
			seen[key] = true
		}
		if picked, _ := c.Filter().Pick(fuzzTags); len(picked) > c.Newest {
			t.Errorf("charts[%d]: picked %q, more than newest %d", i, picked, c.Newest)
		}
		if c.Values != nil {
			var v map[string]any
			if err := yaml.Unmarshal(c.Values, &v); err != nil || v == nil {
				t.Errorf("charts[%d]: values %q do not read back as a mapping: %v", i, c.Values, err)
			}
		}
		if len(c.ValuesFiles) != len(c.ValuesFileNames) {
			t.Errorf("charts[%d]: %d values files for %d names", i, len(c.ValuesFiles), len(c.ValuesFileNames))
		}
		if c.Ref != nil {
			if again, err := ParseReference(c.Ref.String()); err != nil || again.String() != c.Ref.String() {
				t.Errorf("charts[%d]: ref %q does not parse back: %v", i, c.Ref, err)
			}
		}
	}
}

// pinCharts gives every chart entry as many exact versions as it may pick, each with a digest, as
// the charts package would after reading the index (OCI charts get a digest in their ref).
func pinCharts(charts []Chart) []Chart {
	var out []Chart
	for i, c := range charts {
		if c.Ref != nil {
			ref := *c.Ref
			ref.Digest = digest.FromString(c.String())
			c.Ref = &ref
			out = append(out, c)
			continue
		}
		for v := range min(c.Newest, 3) {
			c.Version, c.Digest = fmt.Sprintf("%d.%d.0", i, v), digest.FromString(c.String()+strconv.Itoa(v)).String()
			out = append(out, c)
		}
	}
	return out
}

// checkPinned checks that blocked images are apart, and that the expanded set, pinned by digest,
// reads back as the same images and charts.
func checkPinned(t *testing.T, set *ImageSet, picked map[string][]string) {
	t.Helper()
	images, blocked := set.Expand(picked)
	for _, img := range images {
		if rule, ok := set.Blocked(img.String()); ok {
			t.Errorf("%s expanded, but blocked by %q", img, rule)
		}
	}
	for _, b := range blocked {
		if rule, ok := set.Blocked(b.Image.String()); !ok || rule != b.Rule {
			t.Errorf("%s left out as blocked by %q, but Blocked says %q, %v", b.Image, b.Rule, rule, ok)
		}
	}
	charts := pinCharts(set.Charts)
	if len(images) == 0 && len(charts) == 0 {
		return
	}
	resolved := pin(images)
	out, err := set.Pinned("f.pinned.yaml", resolved, charts...)
	if err != nil {
		t.Fatalf("Pinned: %v", err)
	}
	again, err := Parse("f.pinned.yaml", out)
	if err != nil {
		t.Fatalf("pinned file does not parse: %v\n%s", err, out)
	}
	if got, want := imageKeys(again.Images), imageKeys(resolved); !slices.Equal(got, want) {
		t.Errorf("pinned images %q, want %q", got, want)
	}
	if got, want := chartKeys(again.Charts), chartKeys(charts); !slices.Equal(got, want) {
		t.Errorf("pinned charts %q, want %q", got, want)
	}
	if !reflect.DeepEqual(again.Referrers, set.Referrers) || joinPatterns(again.BlockedRules) != joinPatterns(set.BlockedRules) {
		t.Errorf("pinned referrers %+v, blocked %q; want %+v, %q", again.Referrers, joinPatterns(again.BlockedRules),
			set.Referrers, joinPatterns(set.BlockedRules))
	}
}

// chartKeys names each chart version as a pinned file lists it.
func chartKeys(charts []Chart) []string {
	var out []string
	for _, c := range charts {
		out = append(out, fmt.Sprintf("%s %s %s %s %s", c, trimExact(c.Version), c.Digest, platformStrings(c.Platforms), c.Target))
	}
	return out
}

// checkFileErrors checks that err, and each error joined into it, is an *Error naming f.yaml.
func checkFileErrors(t *testing.T, err error) {
	t.Helper()
	if !strings.HasPrefix(err.Error(), "f.yaml") {
		t.Errorf("error does not start with the file name: %q", err)
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			checkFileErrors(t, e)
		}
		return
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.File != "f.yaml" {
		t.Errorf("error %q (%T) is not a *config.Error for f.yaml", err, err)
	}
}

// FuzzParseReference checks that a reference ParseReference accepts has a canonical form that
// parses back to the same image.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{
		"registry.example.com/team/app:1.4.2",
		"registry.example.com/team/web:2.0@" + digB,
		"registry.example.com/app@sha512:" + hex512,
		"127.0.0.1:5000/mirror/app:v1@" + digA,
		"[::1]:5000/app:1",
		"localhost/app",
		"nginx",
		"bitnami/redis:7",
		"index.docker.io/nginx",
		"ghcr.io/a-b/c.d__e_f:V_1.0-rc",
		"registry.example.com/app@" + digA + "@" + digB,
		":5000/app",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		img, err := ParseReference(s)
		if err != nil {
			if !strings.Contains(err.Error(), referenceForm) {
				t.Errorf("error %q does not show the expected form", err)
			}
			return
		}
		if img.Ref != s {
			t.Errorf("Ref = %q, want the input %q", img.Ref, s)
		}
		if img.Registry == "" || img.Repository == "" || (img.Tag == "" && img.Digest == "") {
			t.Errorf("ParseReference(%q) = %+v: missing registry, repository, or both tag and digest", s, img)
		}
		canon := img.String()
		again, err := ParseReference(canon)
		if err != nil {
			t.Fatalf("ParseReference(%q) = %+v, but its canonical form %q does not parse: %v", s, img, canon, err)
		}
		again.Ref = img.Ref
		if again.Registry != img.Registry || again.Repository != img.Repository || again.Tag != img.Tag || again.Digest != img.Digest {
			t.Errorf("ParseReference(%q) = %+v, but its canonical form %q parses to %+v", s, img, canon, again)
		}
		if again.String() != canon {
			t.Errorf("canonical form %q is not stable: re-parsed it is %q", canon, again.String())
		}
	})
}
