package verify

import (
	"context"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/verify/internal/sigtest"
)

// Tests from the first honest mutation run of the make-test gate (issue 20, docs/mutation.md): each
// kills mutants that lived once gremlins ran the tests for real.

// referrerParent names what a referrer is attached to: "index" for the root of a multi-platform
// image, "image" for a single manifest, the platform, or the short digest of another referrer.
// Kills evaluate.go:100 (len(img.Platforms) > 0 as >= 0, and as <= 0).
func TestReferrerParent(t *testing.T) {
	sbom := digest.FromString("an SBOM")
	index := newFixture().img
	single := Image{Digest: indexDigest}
	for _, c := range []struct {
		name    string
		img     Image
		subject digest.Digest
		want    string
	}{
		{"on the index of two platforms", index, indexDigest, "index"},
		{"on a single manifest", single, indexDigest, "image"},
		{"on a single-platform index", Image{Digest: indexDigest, Platforms: map[digest.Digest]string{amd64: "linux/amd64"}}, indexDigest, "index"},
		{"on a platform manifest", index, arm64, "linux/arm64"},
		{"on another referrer", index, sbom, sbom.Encoded()[:12]},
	} {
		if got := referrerParent(c.img, Referrer{Digest: digest.FromString("r"), Subject: c.subject}); got != c.want {
			t.Errorf("%s: referrerParent = %q, want %q", c.name, got, c.want)
		}
	}
}

// An unsigned SBOM on the index, or on a single-manifest image, is named by what it is attached to
// in the failure that requireSignedReferrers gives.
func TestUnsignedReferrerNamesItsParent(t *testing.T) {
	key := sigtest.NewKey(t)
	for _, c := range []struct {
		name   string
		single bool
		want   string
	}{
		{"index", false, "(on index): the rule requires signed sbom referrers"},
		{"single manifest", true, "(on image): the rule requires signed sbom referrers"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture()
			if c.single {
				f.img.Platforms = nil
			}
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), archive.CosignSignPredicateType)
			s := f.sbom(t, indexDigest)
			tr := keyTrust(t, key)
			tr.Policy = keyPolicy()
			tr.Policy.Rules[0].RequireSignedReferrers = []string{"sbom"}
			res := tr.Verify(context.Background(), f.img)
			want := "sbom " + s.Encoded()[:12] + " " + c.want
			if res.Passed || len(res.Failures) != 1 || !strings.Contains(res.Failures[0], want) {
				t.Errorf("passed %v, failures %q; want one failure containing %q", res.Passed, res.Failures, want)
			}
		})
	}
}

// A "*" within a segment: the text a middle part matched is consumed (a*b*b needs two b's), and a
// star may stand for nothing, so the segment may be exactly the text around it (a*b matches ab).
// Kills policy.go polMatchSegment's s[i+len(part):] as i-len(part), and len(s) >= len(last) as >.
func TestMatchSegmentStars(t *testing.T) {
	for _, c := range []struct {
		pattern, repo string
		want          bool
	}{
		{"registry.example.com/team/a*b*b", "registry.example.com/team/axb", false},
		{"registry.example.com/team/a*b*b", "registry.example.com/team/axbb", true},
		{"registry.example.com/team/a*b*b", "registry.example.com/team/abb", true},
		{"registry.example.com/team/ab*bc*c", "registry.example.com/team/abbcxc", true},
		{"registry.example.com/team/ab*bc*c", "registry.example.com/team/abbc", false},
		{"registry.example.com/team/a*b", "registry.example.com/team/ab", true},
		{"registry.example.com/team/a*b", "registry.example.com/team/a", false},
		{"registry.example.com/team/app*", "registry.example.com/team/app", true},
		{"registry.example.com/team/*app", "registry.example.com/team/app", true},
		{"registry.example.com/team/*app", "registry.example.com/team/ap", false},
	} {
		if got := MatchRepository(c.pattern, c.repo); got != c.want {
			t.Errorf("MatchRepository(%q, %q) = %v, want %v", c.pattern, c.repo, got, c.want)
		}
	}
}

// A check on the root names it "index" when the image has platforms (even one) and "image" for a
// single manifest; a check on a platform manifest names the platform.
// Kills verify.go covers(): len(img.Platforms) > 0 as >= 0, and as <= 0.
func TestCheckCovers(t *testing.T) {
	key := sigtest.NewKey(t)
	for _, c := range []struct {
		name      string
		platforms map[digest.Digest]string
		subject   digest.Digest
		want      string
	}{
		{"index of two platforms", map[digest.Digest]string{amd64: "linux/amd64", arm64: "linux/arm64"}, indexDigest, "index"},
		{"index of one platform", map[digest.Digest]string{amd64: "linux/amd64"}, indexDigest, "index"},
		{"single manifest", nil, indexDigest, "image"},
		{"platform manifest", map[digest.Digest]string{amd64: "linux/amd64", arm64: "linux/arm64"}, arm64, "linux/arm64"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture()
			f.img.Platforms = c.platforms
			f.bundle(t, c.subject, sigtest.KeyBundle(t, key, signStmt(c.subject)), archive.CosignSignPredicateType)
			res := keyTrust(t, key).Verify(context.Background(), f.img)
			if len(res.Signatures) != 1 || !res.Signatures[0].Valid || res.Signatures[0].Covers != c.want {
				t.Errorf("signature checks %+v; want one valid, covering %q", res.Signatures, c.want)
			}
		})
	}
}
