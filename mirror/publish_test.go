package mirror

import (
	"strings"
	"testing"

	"airlock.dev/airlock/config"
)

func TestTargetRepository(t *testing.T) {
	img := func(ref, target string) config.Image {
		i, err := config.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		i.Target = target
		return i
	}
	cases := []struct {
		to       string
		keepHost bool
		img      config.Image
		want     string
	}{
		{"site:5000/mirror", false, img("registry.example.com/team/app:1.4.2", ""), "site:5000/mirror/team/app"},
		{"site:5000/mirror/", false, img("registry.example.com/team/app:1.4.2", ""), "site:5000/mirror/team/app"},
		{"site:5000", false, img("registry.example.com/team/app:1.4.2", ""), "site:5000/team/app"},
		{"site:5000/mirror", true, img("registry.example.com/team/app:1.4.2", ""), "site:5000/mirror/registry.example.com/team/app"},
		{"site:5000/mirror", true, img("127.0.0.1:5000/team/app:v1", ""), "site:5000/mirror/127.0.0.1-5000/team/app"},
		{"site:5000/mirror", false, img("registry.example.com/team/app:1.4.2", "platform/app"), "site:5000/mirror/platform/app"},
		{"site:5000/mirror", false, img("nginx", ""), "site:5000/mirror/library/nginx"},
	}
	for _, c := range cases {
		got, err := TargetRepository(c.to, c.keepHost, c.img)
		if err != nil || got != c.want {
			t.Errorf("TargetRepository(%q, %v, %s) = %q, %v; want %q", c.to, c.keepHost, c.img, got, err, c.want)
		}
	}
	if _, err := TargetRepository("/mirror", false, img("registry.example.com/team/app:1", "")); err == nil || !strings.Contains(err.Error(), "HOST[:PORT]/PREFIX") {
		t.Errorf("an empty host: %v", err)
	}
	if _, err := TargetRepository("site:5000/Mirror", false, img("registry.example.com/team/app:1", "")); err == nil {
		t.Errorf("an upper-case prefix was accepted")
	}
}

func TestCheckCollisions(t *testing.T) {
	a := ImageReport{Source: "a.example.com/team/app:v1", Target: "site/team/app:v1", Tag: "v1", Digest: "sha256:aaaa"}
	b := ImageReport{Source: "b.example.com/team/app:v1", Target: "site/team/app:v1", Tag: "v1", Digest: "sha256:bbbb"}
	same := ImageReport{Source: "c.example.com/team/app:v1", Target: "site/team/app:v1", Tag: "v1", Digest: "sha256:aaaa"}
	if err := checkCollisions([]ImageReport{a, same}); err != nil {
		t.Errorf("the same digest twice is no collision: %v", err)
	}
	err := checkCollisions([]ImageReport{a, b})
	if err == nil || !strings.Contains(err.Error(), "--keep-host") || !strings.Contains(err.Error(), "b.example.com/team/app:v1") {
		t.Errorf("collision: %v", err)
	}
}
