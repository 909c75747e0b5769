package verify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"airlock.dev/airlock/config"
	"airlock.dev/airlock/verify/internal/sigtest"
)

// TestTrustDescriptions: the trust line every report carries ("trust: ...", and Origin in JSON) names
// exactly what the trust holds: keys only when there are keys, a policy and a trusted root only when
// given, and Origin.TrustedRoot true only with a trusted root; for the site's trust, an ImageSet's
// and an archive's own.
func TestTrustDescriptions(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	_, pub := writeKeyPair(t, dir, "release", "")
	root := write("trusted_root.json", sigtest.NewSigstore(t).TrustedRootJSON(t))
	keyless := write("keyless.yaml", []byte("apiVersion: airlock.dev/v1alpha1\nkind: Policy\nrules:\n  - match: [\"**\"]\n    signers:\n      - keyless: {issuer: https://issuer.example, subject: someone@example.com}\n"))

	for _, c := range []struct {
		name     string
		a        Anchors
		has, not []string
		root     bool
	}{
		{"site keys", Anchors{Keys: []string{pub}, File: "trust.yaml"}, []string{"site: keys release.pub (hint ", "(site trust file trust.yaml)"}, []string{"policy", "trusted root"}, false},
		{"site keyless policy", Anchors{Policy: keyless, TrustedRoot: root}, []string{"site: policy " + keyless, "trusted root " + root}, []string{"keys", "site trust file"}, true},
	} {
		tr, err := c.a.Site()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		checkTrustLine(t, c.name, tr, c.has, c.not, c.root)
	}

	for _, c := range []struct {
		name     string
		trust    config.Trust
		policy   string
		has, not []string
		root     bool
	}{
		{"imageset keys", config.Trust{Keys: []string{pub}}, "", []string{"ImageSet imageset.yaml: keys release.pub (hint "}, nil, false},
		{"imageset keyless policy", config.Trust{TrustedRoot: root}, keyless, []string{"ImageSet imageset.yaml"}, []string{"keys"}, true},
	} {
		tr, err := TrustFromImageSet(&config.ImageSet{Path: "imageset.yaml", Trust: c.trust, Policy: c.policy})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		checkTrustLine(t, c.name, tr, c.has, c.not, c.root)
	}

	// An archive vouching for itself, with no trust material of its own.
	tr, err := forArchive(t, newArchive(t), Anchors{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	checkTrustLine(t, "insecure archive", tr, []string{"not pinned (--insecure-archive-trust): no keys"}, []string{"policy", "trusted root"}, false)
	if got := describeArchiveTrust(&Trust{Policy: &Policy{Path: "/x/policy.yaml"}}); got != "no keys, policy policy.yaml" {
		t.Errorf("archive trust with a policy: %q", got)
	}
}

func checkTrustLine(t *testing.T, name string, tr *Trust, has, not []string, root bool) {
	t.Helper()
	for _, h := range has {
		if !strings.Contains(tr.Source, h) {
			t.Errorf("%s: trust %q lacks %q", name, tr.Source, h)
		}
	}
	for _, n := range not {
		if strings.Contains(tr.Source, n) {
			t.Errorf("%s: trust %q names %q", name, tr.Source, n)
		}
	}
	if tr.Origin.TrustedRoot != root {
		t.Errorf("%s: Origin.TrustedRoot %v, want %v", name, tr.Origin.TrustedRoot, root)
	}
}
