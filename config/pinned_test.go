package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestBlocked(t *testing.T) {
	s, err := Parse("imageset.yaml", []byte(header+"images: [{ref: a.io/b}]\nblocked:\n"+
		"  - '^registry\\.example\\.com/team/app:1\\.4\\.2$'\n"+
		"  - '-debug$'\n"+
		"  - '^docker\\.io/library/'\n"+
		"  - '@sha256:"+hexB+"$'\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ref, rule string
	}{
		{"registry.example.com/team/app:1.4.2", `^registry\.example\.com/team/app:1\.4\.2$`},
		{"registry.example.com/team/app:1.4.2@" + digA, `^registry\.example\.com/team/app:1\.4\.2$`}, // pinning does not unblock
		{"registry.example.com/team/app:1.4.3", ""},
		{"registry.example.com/team/app:1.4.2-debug", "-debug$"},
		{"nginx:1.27", `^docker\.io/library/`}, // canonical form
		{"registry.example.com/team/app:2.0@" + digB, "@sha256:" + hexB + "$"},
		{"registry.example.com/team/app@" + digA, ""},
		{"not a reference:-debug", "-debug$"}, // matched as given
	} {
		rule, blocked := s.Blocked(tt.ref)
		if rule != tt.rule || blocked != (tt.rule != "") {
			t.Errorf("Blocked(%q) = %q, %v; want %q, %v", tt.ref, rule, blocked, tt.rule, tt.rule != "")
		}
	}
	if rule, blocked := (&ImageSet{}).Blocked("a.io/b:1"); blocked || rule != "" {
		t.Errorf("no blocked list: Blocked = %q, %v, want nothing blocked", rule, blocked)
	}
}

func TestExpand(t *testing.T) {
	s, err := Parse("imageset.yaml", []byte(header+
		"images:\n  - ref: registry.example.com/team/app:1.4.2\n    platforms: [linux/arm64]\n  - ref: a.io/tools:debug\n"+
		issueRepository+"  - name: a.io/web\n"+
		"blocked: [':debug$', '^a\\.io/web:2\\.0\\.0$']\n"))
	if err != nil {
		t.Fatal(err)
	}
	images, blocked := s.Expand(map[string][]string{
		"registry.example.com/team/app": {"1.4.2", "1.4.3"},
		"a.io/web":                      {"2.0.0", "1.0.0", "1.0.0"},
		"a.io/other":                    {"9"}, // not a repository of the set
	})
	var got []string
	for _, img := range images {
		got = append(got, img.String()+" "+strings.Join(platformStrings(img.Platforms), ","))
	}
	want := []string{
		"registry.example.com/team/app:1.4.2 linux/arm64", // the images entry wins over the picked tag
		"registry.example.com/team/app:1.4.3 linux/amd64",
		"a.io/web:1.0.0 ",
	}
	if !slices.Equal(got, want) {
		t.Errorf("images:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	wantBlocked := []BlockedImage{
		{Image: s.Images[1], Rule: ":debug$"},
		{Image: s.Repositories[1].Image("2.0.0"), Rule: `^a\.io/web:2\.0\.0$`},
	}
	if !reflect.DeepEqual(blocked, wantBlocked) {
		t.Errorf("blocked = %+v, want %+v", blocked, wantBlocked)
	}
}

// pin gives every image a digest made from its reference, as the engine would after resolving.
func pin(images []Image) []Image {
	out := slices.Clone(images)
	for i := range out {
		out[i].Digest = digest.FromString(out[i].String())
	}
	return out
}

func TestPinnedRoundTrip(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "imageset.yaml")
	data := header + "images:\n  - ref: registry.example.com/team/app:1.4.2\n    platforms: [linux/arm64, linux/arm/v7]\n" +
		"  - ref: registry.example.com/team/api@" + digA + "\n" +
		"  - ref: nginx\n    target: site/nginx\n" +
		issueRepository + "blocked: ['-debug$', '^a\\.io/']\n" +
		"referrers:\n  artifactTypes: [default, application/vnd.example+json]\n" +
		"trust:\n  keys: [keys/release.pub, /etc/airlock/other.pub]\n  trustedRoot: trust/trusted_root.json\n" +
		"policy: policy.yaml\n"
	s, err := Parse(src, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	picked, _ := s.Repositories[0].Pick([]string{"1.4.3", "1.4.2", "1.5.0-rc.1", "2.0.0", "1.0.0"})
	images, _ := s.Expand(map[string][]string{s.Repositories[0].String(): picked})
	resolved := pin(images)

	out := filepath.Join(dir, "imageset.pinned.yaml")
	b, err := s.Pinned(out, resolved)
	if err != nil {
		t.Fatalf("Pinned: %v", err)
	}
	again, err := Parse(out, b)
	if err != nil {
		t.Fatalf("the pinned file does not parse: %v\n%s", err, b)
	}
	if len(again.Repositories) != 0 {
		t.Errorf("pinned file has repositories %+v, want them expanded", again.Repositories)
	}
	if got, want := imageKeys(again.Images), imageKeys(resolved); !slices.Equal(got, want) {
		t.Errorf("pinned images:\n  %s\nwant:\n  %s\nfile:\n%s", strings.Join(got, "\n  "), strings.Join(want, "\n  "), b)
	}
	for _, img := range again.Images {
		if img.Digest == "" {
			t.Errorf("%s is not pinned by digest", img.Ref)
		}
	}
	if !reflect.DeepEqual(again.Referrers, s.Referrers) || !reflect.DeepEqual(again.Trust, s.Trust) || again.Policy != s.Policy {
		t.Errorf("pinned referrers, trust, policy = %+v, %+v, %q; want %+v, %+v, %q",
			again.Referrers, again.Trust, again.Policy, s.Referrers, s.Trust, s.Policy)
	}
	if got, want := joinPatterns(again.BlockedRules), joinPatterns(s.BlockedRules); got != want {
		t.Errorf("pinned blocked = %q, want %q", got, want)
	}
	for _, want := range []string{"policy: policy.yaml\n", "- keys/release.pub\n", "- /etc/airlock/other.pub\n",
		"ref: registry.example.com/team/app:1.4.2@sha256:", "platforms: [linux/arm64, linux/arm/v7]\n",
		"artifactTypes:\n    - default\n    - application/vnd.example+json\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("pinned file does not contain %q:\n%s", want, b)
		}
	}
	// Pinning the pinned set again gives the same file.
	if b2, err := again.Pinned(out, again.Images); err != nil || string(b2) != strings.Replace(string(b), src, out, 1) {
		t.Errorf("pinning the pinned file again: err %v, file\n%s\nwant\n%s", err, b2, b)
	}
}

// imageKeys describes each image by everything a save uses: reference, platforms and target.
func imageKeys(images []Image) []string {
	var out []string
	for _, img := range images {
		out = append(out, img.String()+" "+strings.Join(platformStrings(img.Platforms), ",")+" "+img.Target)
	}
	return out
}

func TestPinnedReferrers(t *testing.T) {
	for _, section := range []string{"", "referrers:\n  enabled: false\n", "referrers:\n  artifactTypes: ['*']\n",
		"referrers:\n  artifactTypes: [text/spdx]\n"} {
		s, err := Parse("imageset.yaml", []byte(header+"images: [{ref: a.io/b}]\n"+section))
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.Pinned("imageset.pinned.yaml", pin(s.Images))
		if err != nil {
			t.Fatalf("%q: Pinned: %v", section, err)
		}
		again, err := Parse("imageset.pinned.yaml", b)
		if err != nil || !reflect.DeepEqual(again.Referrers, s.Referrers) {
			t.Errorf("%q: pinned referrers %+v (err %v), want %+v\n%s", section, again.Referrers, err, s.Referrers, b)
		}
	}
}

func TestPinnedErrors(t *testing.T) {
	s, err := Parse("imageset.yaml", []byte(header+"images: [{ref: a.io/b}, {ref: a.io/c}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		images []Image
		want   string
	}{
		{"no digest", s.Images, "a.io/b:latest has no digest"},
		{"twice", pin([]Image{s.Images[0], s.Images[0]}), "is listed twice"},
		{"nothing", nil, "nothing to pin"},
	} {
		if _, err := s.Pinned("out.yaml", tt.images); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

func TestPinnedFileSaves(t *testing.T) {
	// The pinned file is an ordinary ImageSet: Load reads it from disk.
	dir := t.TempDir()
	s, err := Parse(filepath.Join(dir, "imageset.yaml"), []byte(header+issueRepository))
	if err != nil {
		t.Fatal(err)
	}
	picked, _ := s.Repositories[0].Pick(issueTags)
	images, _ := s.Expand(map[string][]string{s.Repositories[0].String(): picked})
	out := filepath.Join(dir, "imageset.pinned.yaml")
	b, err := s.Pinned(out, pin(images))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"registry.example.com/team/app:1.4.2@" + digest.FromString("registry.example.com/team/app:1.4.2").String() +
		" linux/amd64 site/app"}
	if got := imageKeys(again.Images); !slices.Equal(got, want) {
		t.Errorf("images = %q, want %q", got, want)
	}
}

func TestPinnedPathsElsewhere(t *testing.T) {
	// A pinned file written in another directory names the trust files by absolute path, and still
	// resolves to the same files.
	dir := t.TempDir()
	s, err := Parse(filepath.Join(dir, "set", "imageset.yaml"), []byte(header+"images: [{ref: a.io/b}]\n"+
		"trust:\n  keys: [keys/release.pub]\npolicy: policy.yaml\n"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "pinned", "imageset.yaml")
	b, err := s.Pinned(out, pin(s.Images))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"policy: " + filepath.Join(dir, "set", "policy.yaml") + "\n",
		"- " + filepath.Join(dir, "set", "keys", "release.pub") + "\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("pinned file does not contain %q:\n%s", want, b)
		}
	}
	again, err := Parse(out, b)
	if err != nil || again.Policy != s.Policy || !slices.Equal(again.Trust.Keys, s.Trust.Keys) {
		t.Errorf("pinned elsewhere: policy %q, keys %q (err %v); want %q, %q", again.Policy, again.Trust.Keys, err, s.Policy, s.Trust.Keys)
	}
}

// TestPinnedSetBuiltInCode pins a set built in code, with no referrer types: the file names the
// default types (a file never has none) and reads back.
func TestPinnedSetBuiltInCode(t *testing.T) {
	img, err := ParseReference("registry.example.com/team/app:1.4.2")
	if err != nil {
		t.Fatal(err)
	}
	set := &ImageSet{Images: []Image{img}}
	img.Digest = digest.Digest("sha256:" + strings.Repeat("a", 64))
	b, err := set.Pinned(filepath.Join(t.TempDir(), "pinned.yaml"), []Image{img})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "- default") {
		t.Errorf("pinned file does not name the default types:\n%s", b)
	}
}

// Expand judges each image as Blocked judges its reference: an image pinned by digest is still
// blocked by a rule on its tag, and a rule on the digest blocks a tag-and-digest entry.
func TestExpandBlocksAsBlocked(t *testing.T) {
	s, err := Parse("imageset.yaml", []byte(header+
		"images:\n  - ref: registry.example.com/team/app:1.4.2@"+digA+"\n  - ref: nginx:1.27\n  - ref: a.io/web:2.0@"+digB+"\n  - ref: a.io/ok:1\n"+
		"blocked: ['^registry\\.example\\.com/team/app:1\\.4\\.2$', '^docker\\.io/library/', '^a\\.io/web@sha256:']\n"))
	if err != nil {
		t.Fatal(err)
	}
	images, blocked := s.Expand(nil)
	if len(images) != 1 || images[0].String() != "a.io/ok:1" {
		t.Errorf("images = %v, want only a.io/ok:1", images)
	}
	if len(blocked) != 3 {
		t.Fatalf("blocked = %+v, want 3", blocked)
	}
	for _, b := range blocked {
		if rule, ok := s.Blocked(b.Image.String()); !ok || rule != b.Rule {
			t.Errorf("Expand blocked %s by %q; Blocked says %q, %v", b.Image, b.Rule, rule, ok)
		}
	}
}

// TestPinnedTrustSection: the pinned file has a trust section exactly when the set has trust: keys
// alone are kept, and a set without trust gets none (not an empty one).
func TestPinnedTrustSection(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "imageset.pinned.yaml")
	for _, c := range []struct {
		trust string
		want  []string
		not   string
	}{
		{"trust:\n  keys: [keys/release.pub]\n", []string{"trust:\n", "- keys/release.pub\n"}, "trustedRoot"},
		{"", nil, "trust"},
	} {
		s, err := Parse(filepath.Join(dir, "imageset.yaml"), []byte(header+"images: [{ref: a.io/b}]\n"+c.trust))
		if err != nil {
			t.Fatal(err)
		}
		images, _ := s.Expand(nil)
		b, err := s.Pinned(out, pin(images))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range c.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("trust %q: pinned file lacks %q:\n%s", c.trust, w, b)
			}
		}
		if strings.Contains(string(b), c.not) {
			t.Errorf("trust %q: pinned file has %q:\n%s", c.trust, c.not, b)
		}
	}
}
