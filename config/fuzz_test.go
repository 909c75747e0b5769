package config

import (
	"errors"
	"os"
	"strings"
	"testing"
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
}

// FuzzParseImageSet checks that Parse never panics, that every image it accepts names a registry
// and a repository and survives a round trip through its canonical form, and that every error it
// reports names the file.
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
		if len(set.Images) == 0 {
			t.Fatalf("Parse succeeded with no images")
		}
		seen := map[string]bool{}
		for i, img := range set.Images {
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
	})
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
