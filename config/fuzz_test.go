package config

import (
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"
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
		if len(set.Images) == 0 && len(set.Repositories) == 0 {
			t.Fatalf("Parse succeeded with no images and no repositories")
		}
		checkImages(t, set.Images)
		picked := checkRepositories(t, set.Repositories)
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

// checkPinned checks that blocked images are apart, and that the expanded set, pinned by digest,
// reads back as the same images.
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
	if len(images) == 0 {
		return
	}
	resolved := pin(images)
	out, err := set.Pinned("f.pinned.yaml", resolved)
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
	if !reflect.DeepEqual(again.Referrers, set.Referrers) || joinPatterns(again.BlockedRules) != joinPatterns(set.BlockedRules) {
		t.Errorf("pinned referrers %+v, blocked %q; want %+v, %q", again.Referrers, joinPatterns(again.BlockedRules),
			set.Referrers, joinPatterns(set.BlockedRules))
	}
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
