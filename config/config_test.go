package config

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const (
	hexA   = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
	hexB   = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"
	digA   = "sha256:" + hexA
	digB   = "sha256:" + hexB
	header = "apiVersion: airlock.dev/v1alpha1\nkind: ImageSet\n"
)

var hex512 = strings.Repeat("ab", 64)

func TestParsePlatform(t *testing.T) {
	tests := []struct {
		in      string
		want    Platform
		wantErr bool
	}{
		{in: "linux/amd64", want: Platform{OS: "linux", Architecture: "amd64"}},
		{in: "linux/arm64/v8", want: Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
		{in: "linux/arm/v7", want: Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
		{in: "windows/amd64", want: Platform{OS: "windows", Architecture: "amd64"}},
		{in: "linux", wantErr: true},
		{in: "linux/", wantErr: true},
		{in: "/amd64", wantErr: true},
		{in: "linux/arm/v7/x", wantErr: true},
		{in: "Linux/AMD64", wantErr: true},
		{in: "linux/amd 64", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePlatform(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParsePlatform(%q) = %v, want error", tt.in, got)
				}
				if !strings.Contains(err.Error(), "OS/ARCH") {
					t.Errorf("error %q does not show the expected form", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePlatform(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParsePlatform(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestPlatformMatches(t *testing.T) {
	tests := []struct {
		platform          string
		os, arch, variant string
		want              bool
	}{
		{"linux/amd64", "linux", "amd64", "", true},
		{"linux/amd64", "linux", "amd64", "v3", true},
		{"linux/amd64", "linux", "arm64", "", false},
		{"linux/amd64", "windows", "amd64", "", false},
		{"linux/arm/v7", "linux", "arm", "v7", true},
		{"linux/arm/v7", "linux", "arm", "v6", false},
		{"linux/arm/v7", "linux", "arm", "", false},
		{"linux/arm", "linux", "arm", "v6", true},
		{"linux/arm64/v8", "linux", "arm64", "v8", true},
		{"linux/arm64/v8", "linux", "arm64", "", true},
		{"linux/arm64/v9", "linux", "arm64", "", false},
	}
	for _, tt := range tests {
		p, err := ParsePlatform(tt.platform)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Matches(tt.os, tt.arch, tt.variant); got != tt.want {
			t.Errorf("%s.Matches(%q, %q, %q) = %v, want %v", tt.platform, tt.os, tt.arch, tt.variant, got, tt.want)
		}
	}
}

func TestReferrersWants(t *testing.T) {
	defaults := Referrers{Enabled: true, ArtifactTypes: DefaultArtifactTypes}
	withParams := Referrers{Enabled: true, ArtifactTypes: []string{"application/vnd.example+json; version=2"}}
	tests := []struct {
		name string
		r    Referrers
		at   string
		want bool
	}{
		{"default sigstore bundle", defaults, "application/vnd.dev.sigstore.bundle.v0.3+json", true},
		{"default cosign sig", defaults, "application/vnd.dev.cosign.artifact.sig.v1+json", true},
		{"default spdx", defaults, "text/spdx+json", true},
		{"default cyclonedx", defaults, "application/vnd.cyclonedx+json", true},
		{"default in-toto", defaults, "application/vnd.in-toto+json", true},
		{"query parameters ignored", defaults, "application/vnd.cyclonedx+json;version=1.5", true},
		{"query parameters with spaces", defaults, "application/vnd.cyclonedx+json ; version=1.5", true},
		{"case ignored", defaults, "Application/VND.CycloneDX+JSON", true},
		{"not in defaults", defaults, "application/vnd.example+json", false},
		{"empty type", defaults, "", false},
		{"set has parameters", withParams, "application/vnd.example+json", true},
		{"both have parameters", withParams, "application/vnd.example+json;version=3", true},
		{"set with parameters, other type", withParams, "application/vnd.other+json", false},
		{"all", Referrers{Enabled: true, All: true}, "application/vnd.anything", true},
		{"all, empty type", Referrers{Enabled: true, All: true}, "", true},
		{"disabled", Referrers{Enabled: false, ArtifactTypes: DefaultArtifactTypes}, "application/vnd.dev.sigstore.bundle.v0.3+json", false},
		{"disabled all", Referrers{Enabled: false, All: true}, "application/vnd.anything", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Wants(tt.at); got != tt.want {
				t.Errorf("Wants(%q) = %v, want %v", tt.at, got, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "imageset.yaml")
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, s *ImageSet)
	}{
		{
			name: "smallest set gets defaults",
			yaml: header + "images:\n  - ref: registry.example.com/team/app:1.4.2\n",
			check: func(t *testing.T, s *ImageSet) {
				want := []Image{{Ref: "registry.example.com/team/app:1.4.2", Registry: "registry.example.com",
					Repository: "team/app", Tag: "1.4.2", Line: 4}}
				if !reflect.DeepEqual(s.Images, want) {
					t.Errorf("Images = %+v, want %+v", s.Images, want)
				}
				wantRef := Referrers{Enabled: true, ArtifactTypes: DefaultArtifactTypes}
				if !reflect.DeepEqual(s.Referrers, wantRef) {
					t.Errorf("Referrers = %+v, want %+v", s.Referrers, wantRef)
				}
				if s.Policy != "" || s.Trust.TrustedRoot != "" || len(s.Trust.Keys) != 0 {
					t.Errorf("Policy = %q, Trust = %+v, want both empty", s.Policy, s.Trust)
				}
				if s.Path != path || s.Dir != dir {
					t.Errorf("Path, Dir = %q, %q, want %q, %q", s.Path, s.Dir, path, dir)
				}
			},
		},
		{
			name: "digest, tag and digest, platforms and target",
			yaml: header + "images:\n" +
				"  - ref: registry.example.com/team/api@" + digA + "\n" +
				"  - ref: registry.example.com/team/web:2.0@" + digB + "\n" +
				"    platforms: [linux/amd64, linux/arm/v7]\n" +
				"    target: site/web\n",
			check: func(t *testing.T, s *ImageSet) {
				if len(s.Images) != 2 {
					t.Fatalf("got %d images, want 2", len(s.Images))
				}
				api, web := s.Images[0], s.Images[1]
				if api.Digest != digA || api.Tag != "" || api.Line != 4 {
					t.Errorf("images[0] = %+v", api)
				}
				wantPlat := []Platform{{"linux", "amd64", ""}, {"linux", "arm", "v7"}}
				if web.Digest != digB || web.Tag != "2.0" || web.Target != "site/web" || web.Line != 5 ||
					!reflect.DeepEqual(web.Platforms, wantPlat) {
					t.Errorf("images[1] = %+v", web)
				}
			},
		},
		{
			name: "referrers disabled",
			yaml: header + "images: [{ref: a.io/b}]\nreferrers:\n  enabled: false\n",
			check: func(t *testing.T, s *ImageSet) {
				if s.Referrers.Enabled {
					t.Errorf("Referrers.Enabled = true, want false")
				}
			},
		},
		{
			name: "referrers all",
			yaml: header + "images: [{ref: a.io/b}]\nreferrers:\n  artifactTypes: ['*']\n",
			check: func(t *testing.T, s *ImageSet) {
				want := Referrers{Enabled: true, All: true}
				if !reflect.DeepEqual(s.Referrers, want) {
					t.Errorf("Referrers = %+v, want %+v", s.Referrers, want)
				}
			},
		},
		{
			name: "default mixed with explicit types, deduplicated",
			yaml: header + "images: [{ref: a.io/b}]\nreferrers:\n  artifactTypes:\n" +
				"    - application/vnd.example+json; version=1\n    - default\n    - text/spdx\n    - application/vnd.example+json\n",
			check: func(t *testing.T, s *ImageSet) {
				want := append([]string{"application/vnd.example+json; version=1"}, DefaultArtifactTypes...)
				if !reflect.DeepEqual(s.Referrers.ArtifactTypes, want) {
					t.Errorf("ArtifactTypes = %q, want %q", s.Referrers.ArtifactTypes, want)
				}
				if s.Referrers.All || !s.Referrers.Enabled {
					t.Errorf("Referrers = %+v, want enabled, not all", s.Referrers)
				}
			},
		},
		{
			name: "explicit types only",
			yaml: header + "images: [{ref: a.io/b}]\nreferrers:\n  enabled: true\n  artifactTypes: [application/vnd.example+json]\n",
			check: func(t *testing.T, s *ImageSet) {
				if want := []string{"application/vnd.example+json"}; !reflect.DeepEqual(s.Referrers.ArtifactTypes, want) {
					t.Errorf("ArtifactTypes = %q, want %q", s.Referrers.ArtifactTypes, want)
				}
			},
		},
		{
			name: "paths resolve against the file's directory",
			yaml: header + "images: [{ref: a.io/b}]\ntrust:\n  keys: [keys/release.pub, /etc/airlock/other.pub]\n" +
				"  trustedRoot: trust/trusted_root.json\npolicy: ../policy.yaml\n",
			check: func(t *testing.T, s *ImageSet) {
				wantKeys := []string{filepath.Join(dir, "keys/release.pub"), "/etc/airlock/other.pub"}
				if !reflect.DeepEqual(s.Trust.Keys, wantKeys) {
					t.Errorf("Keys = %q, want %q", s.Trust.Keys, wantKeys)
				}
				if want := filepath.Join(dir, "trust", "trusted_root.json"); s.Trust.TrustedRoot != want {
					t.Errorf("TrustedRoot = %q, want %q", s.Trust.TrustedRoot, want)
				}
				if want := filepath.Join(filepath.Dir(dir), "policy.yaml"); s.Policy != want {
					t.Errorf("Policy = %q, want %q", s.Policy, want)
				}
			},
		},
		{
			name: "same repository with different tags is not a duplicate",
			yaml: header + "images:\n  - ref: a.io/b:1\n  - ref: a.io/b:2\n  - ref: a.io/b:1@" + digA + "\n",
			check: func(t *testing.T, s *ImageSet) {
				if len(s.Images) != 3 {
					t.Errorf("got %d images, want 3", len(s.Images))
				}
			},
		},
		{
			name: "anchors and aliases",
			yaml: header + "images:\n  - ref: a.io/b:1\n    platforms: &p [linux/amd64]\n  - ref: a.io/c:1\n    platforms: *p\n",
			check: func(t *testing.T, s *ImageSet) {
				if want := []Platform{{"linux", "amd64", ""}}; !reflect.DeepEqual(s.Images[1].Platforms, want) {
					t.Errorf("images[1].Platforms = %+v, want %+v", s.Images[1].Platforms, want)
				}
			},
		},
		{
			name: "null sections keep defaults",
			yaml: header + "images: [{ref: a.io/b}]\nreferrers:\ntrust:\npolicy:\n",
			check: func(t *testing.T, s *ImageSet) {
				if !s.Referrers.Enabled || len(s.Referrers.ArtifactTypes) == 0 || s.Policy != "" {
					t.Errorf("got %+v, want defaults", s)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(path, []byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, s)
		})
	}
}

func TestParseErrors(t *testing.T) {
	const ref = "images:\n  - ref: registry.example.com/team/app:1\n"
	tests := []struct {
		name string
		yaml string
		want string // the whole error must start with this
	}{
		{"unknown image field", header + ref + "  - ref: a.io/b\n    platfroms: [linux/amd64]\n",
			"imageset.yaml:6: images[1].platfroms: unknown field; known fields: ref, platforms, target"},
		{"unknown top-level field", header + ref + "refferers: {}\n",
			"imageset.yaml:5: refferers: unknown field; known fields: apiVersion, kind, images, repositories, blocked, referrers, trust, policy"},
		{"unknown referrers field", header + ref + "referrers:\n  enable: false\n",
			"imageset.yaml:6: referrers.enable: unknown field; known fields: enabled, artifactTypes"},
		{"unknown trust field", header + ref + "trust:\n  key: [a.pub]\n",
			"imageset.yaml:6: trust.key: unknown field; known fields: keys, trustedRoot"},
		{"duplicate field", header + ref + "policy: a.yaml\npolicy: b.yaml\n",
			"imageset.yaml:6: policy: field given twice (first on line 5)"},
		{"bad apiVersion", "apiVersion: airlock.dev/v1\nkind: ImageSet\n" + ref,
			`imageset.yaml:1: apiVersion: must be "airlock.dev/v1alpha1", got "airlock.dev/v1"`},
		{"missing apiVersion", "kind: ImageSet\n" + ref,
			`imageset.yaml:1: apiVersion: missing; expected "airlock.dev/v1alpha1"`},
		{"bad kind", "apiVersion: airlock.dev/v1alpha1\nkind: ImageList\n" + ref,
			`imageset.yaml:2: kind: must be "ImageSet", got "ImageList"`},
		{"missing kind", "apiVersion: airlock.dev/v1alpha1\n" + ref,
			`imageset.yaml:1: kind: missing; expected "ImageSet"`},
		{"kind not a string", "apiVersion: airlock.dev/v1alpha1\nkind: [ImageSet]\n" + ref,
			`imageset.yaml:2: kind: must be a string, got a list`},
		{"missing images", header,
			"imageset.yaml:1: images: missing; list at least one image"},
		{"empty images", header + "images: []\n",
			"imageset.yaml:3: images: must list at least one image"},
		{"null images", header + "images:\n",
			"imageset.yaml:3: images: must list at least one image"},
		{"images not a list", header + "images: {ref: a.io/b}\n",
			"imageset.yaml:3: images: must be a list, got a mapping"},
		{"image as a bare string", header + "images:\n  - a.io/b:1\n",
			`imageset.yaml:4: images[0]: must be a mapping, got string "a.io/b:1"; write it as "- ref: a.io/b:1"`},
		{"missing ref", header + ref + "  - platforms: [linux/amd64]\n",
			"imageset.yaml:5: images[1].ref: missing; every image needs a ref"},
		{"ref not a string", header + "images:\n  - ref: 12\n",
			"imageset.yaml:4: images[0].ref: must be a string, got integer 12"},
		{"bad reference", header + "images:\n  - ref: registry.example.com/Team/App:1\n",
			`imageset.yaml:4: images[0].ref: invalid reference "registry.example.com/Team/App:1": repository "Team/App" is invalid: repository names must be lowercase; expected HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX]`},
		{"bad digest algorithm", header + ref + "  - ref: a.io/b@sha1:" + hexA[:40] + "\n",
			`imageset.yaml:5: images[1].ref: invalid reference "a.io/b@sha1:` + hexA[:40] + `": digest "sha1:` + hexA[:40] + `": algorithm must be sha256 or sha512, got "sha1"`},
		{"bad digest length", header + ref + "  - ref: a.io/b@sha256:abc\n",
			`imageset.yaml:5: images[1].ref: invalid reference "a.io/b@sha256:abc": digest "sha256:abc": a sha256 digest has 64 hex characters, got 3`},
		{"duplicate image", header + ref + "  - ref: a.io/b\n  - ref: registry.example.com/team/app:1\n",
			"imageset.yaml:6: images[2]: duplicate of images[0] (line 4): both are registry.example.com/team/app:1"},
		{"duplicate after normalisation", header + "images:\n  - ref: nginx\n  - ref: docker.io/library/nginx:latest\n",
			"imageset.yaml:5: images[1]: duplicate of images[0] (line 4): both are docker.io/library/nginx:latest"},
		{"bad platform", header + ref + "    platforms: [linux/amd64, linux]\n",
			`imageset.yaml:5: images[0].platforms[1]: platform "linux" is invalid: expected OS/ARCH or OS/ARCH/VARIANT`},
		{"platforms on own lines", header + ref + "    platforms:\n      - linux/amd64\n      - Linux/arm64\n",
			`imageset.yaml:7: images[0].platforms[1]: platform "Linux/arm64" is invalid`},
		{"duplicate platform", header + ref + "    platforms: [linux/amd64, linux/amd64]\n",
			"imageset.yaml:5: images[0].platforms[1]: platform linux/amd64 listed twice"},
		{"empty platforms", header + ref + "    platforms: []\n",
			"imageset.yaml:5: images[0].platforms: empty list; leave platforms out to keep all platforms"},
		{"platforms not a list", header + ref + "    platforms: linux/amd64\n",
			`imageset.yaml:5: images[0].platforms: must be a list, got string "linux/amd64"`},
		{"bad target", header + ref + "    target: Site/Web\n",
			`imageset.yaml:5: images[0].target: repository "Site/Web" is invalid: repository names must be lowercase`},
		{"enabled not a bool", header + ref + "referrers:\n  enabled: yes\n",
			`imageset.yaml:6: referrers.enabled: must be true or false, got string "yes"`},
		{"referrers not a mapping", header + ref + "referrers: true\n",
			"imageset.yaml:5: referrers: must be a mapping with fields enabled, artifactTypes, got boolean true"},
		{"empty artifactTypes", header + ref + "referrers:\n  artifactTypes: []\n",
			"imageset.yaml:6: referrers.artifactTypes: must list at least one artifact type"},
		{"null artifactTypes", header + ref + "referrers:\n  artifactTypes:\n",
			"imageset.yaml:6: referrers.artifactTypes: must list at least one artifact type"},
		{"artifactTypes star mixed", header + ref + "referrers:\n  artifactTypes: ['*', default]\n",
			`imageset.yaml:6: referrers.artifactTypes: "*" keeps every artifact type and cannot be combined with others`},
		{"artifactTypes not a media type", header + ref + "referrers:\n  artifactTypes:\n    - default\n    - sbom\n",
			`imageset.yaml:8: referrers.artifactTypes[1]: "sbom" is not a media type`},
		{"empty key path", header + ref + "trust:\n  keys: ['']\n",
			"imageset.yaml:6: trust.keys[0]: empty path"},
		{"keys not a list", header + ref + "trust:\n  keys: a.pub\n",
			`imageset.yaml:6: trust.keys: must be a list, got string "a.pub"`},
		{"empty trustedRoot", header + ref + "trust:\n  trustedRoot: \"\"\n",
			"imageset.yaml:6: trust.trustedRoot: empty path"},
		{"empty policy", header + ref + "policy: ''\n",
			"imageset.yaml:5: policy: empty path"},
		{"policy not a string", header + ref + "policy: {file: p.yaml}\n",
			"imageset.yaml:5: policy: must be a string, got a mapping"},
		{"root not a mapping", "- ref: a.io/b\n",
			"imageset.yaml:1: must be a mapping with fields apiVersion, kind"},
		{"two documents", header + ref + "---\n" + header + ref,
			"imageset.yaml:5: more than one YAML document; an ImageSet file holds exactly one"},
		{"empty file", "",
			"imageset.yaml: file is empty"},
		{"only a comment", "# nothing\n",
			"imageset.yaml: file is empty"},
		{"invalid YAML", header + ref + "policy: a: b\n",
			"imageset.yaml:5: invalid YAML: mapping values are not allowed in this context"},
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
			} else if cerr.File != "imageset.yaml" {
				t.Errorf("Error.File = %q, want imageset.yaml", cerr.File)
			}
		})
	}
}

func TestParseReportsEveryError(t *testing.T) {
	yaml := "apiVersion: v1\nkind: ImageSet\nimages:\n  - ref: a.io/B\n  - ref: a.io/c\n    platfroms: []\n"
	_, err := Parse("imageset.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("Parse succeeded, want errors")
	}
	for _, want := range []string{
		"imageset.yaml:1: apiVersion: ",
		"imageset.yaml:4: images[0].ref: ",
		"imageset.yaml:6: images[1].platfroms: unknown field",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestLoad(t *testing.T) {
	s, err := Load(filepath.Join("testdata", "imageset.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if s.Dir != dir {
		t.Errorf("Dir = %q, want %q", s.Dir, dir)
	}
	var got []string
	for _, img := range s.Images {
		got = append(got, img.String())
	}
	want := []string{
		"registry.example.com/team/app:1.4.2",
		"registry.example.com/team/api@" + digA,
		"registry.example.com/team/web:2.0@" + digB,
		"127.0.0.1:5000/mirror/tools:v1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("images = %q, want %q", got, want)
	}
	web := s.Images[2]
	if web.Target != "site/web" || len(web.Platforms) != 2 || web.Line != 7 {
		t.Errorf("images[2] = %+v, want target site/web, 2 platforms, line 7", web)
	}
	if len(s.Repositories) != 1 || s.Repositories[0].String() != "registry.example.com/team/app" || s.Repositories[0].Tags.Newest != 5 {
		t.Errorf("Repositories = %+v, want registry.example.com/team/app, newest 5", s.Repositories)
	}
	if rule, ok := s.Blocked("registry.example.com/team/app"); !ok || rule != ":latest$" {
		t.Errorf("Blocked(registry.example.com/team/app) = %q, %v; want :latest$, true", rule, ok)
	}
	if !s.Referrers.Wants("application/vnd.example.report+json") || !s.Referrers.Wants("application/spdx+json") {
		t.Errorf("Referrers = %+v, want defaults plus the example report type", s.Referrers)
	}
	if want := []string{filepath.Join(dir, "keys", "release.pub")}; !reflect.DeepEqual(s.Trust.Keys, want) {
		t.Errorf("Keys = %q, want %q", s.Trust.Keys, want)
	}
	if want := filepath.Join(dir, "trust", "trusted_root.json"); s.Trust.TrustedRoot != want {
		t.Errorf("TrustedRoot = %q, want %q", s.Trust.TrustedRoot, want)
	}
	if want := filepath.Join(dir, "policy.yaml"); s.Policy != want {
		t.Errorf("Policy = %q, want %q", s.Policy, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("Load of a missing file: err = %v, want one naming the file", err)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "f.yaml", Line: 3, Field: "images[0].ref", Msg: "bad"}, "f.yaml:3: images[0].ref: bad"},
		{Error{File: "f.yaml", Line: 3, Msg: "bad"}, "f.yaml:3: bad"},
		{Error{File: "f.yaml", Msg: "bad"}, "f.yaml: bad"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
