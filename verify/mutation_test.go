package verify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/verify/internal/sigtest"
	"github.com/opencontainers/go-digest"
)

// Cases found by mutation testing (make mutate, docs/mutation.md): each fails, with its reason, when
// the branch that reports it is broken or never reached.
func TestVerifyReasonsMutation(t *testing.T) {
	key := sigtest.NewKey(t)
	cases := []struct {
		name   string
		setup  func(t *testing.T, f *fixture) *Trust
		reason string // a failure or check reason must contain this
		not    string // and none may contain this
	}{
		{"nothing attached", func(t *testing.T, f *fixture) *Trust {
			return keyTrust(t, key)
		}, "no signature found", "only attestations"},
		{"only an attestation, no signature", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, sigtest.Statement(indexDigest, spdx, nil)), spdx)
			return keyTrust(t, key)
		}, "no signature found, only attestations (an attestation is not a signature)", ""},
		{"a bundle layer that is not a bundle", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, []byte(`{"mediaType": 7}`), archive.CosignSignPredicateType)
			return keyTrust(t, key)
		}, "invalid Sigstore bundle: ", ""},
		{"legacy .att whose in-toto payload is not a statement", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), archive.CosignSignPredicateType)
			f.legacyAtt(t, indexDigest, sigtest.LegacyEnvelope(t, key, inTotoPayloadType, []byte(`{"_type":"https://example.com/not-in-toto","predicateType":"`+spdx+`"}`)), spdx)
			tr := keyTrust(t, key)
			tr.Policy = keyPolicy(spdx)
			return tr
		}, "the signed DSSE payload is not an in-toto statement with a predicate type", ""},
		{"legacy .att under requireTlog", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), archive.CosignSignPredicateType)
			f.legacyAtt(t, indexDigest, sigtest.LegacyAttestation(t, key, sigtest.Statement(indexDigest, spdx, nil)), spdx)
			tr := keyTrust(t, key)
			tr.Policy = keyPolicy(spdx)
			tr.Policy.Rules[0].Signers[0].RequireTlog = true
			return tr
		}, "release.pub: " + fmt.Sprintf(legacyNoTlog, ".att"), ""},
		{"legacy .sig and .att under a rule whose key is not among the trusted keys", func(t *testing.T, f *fixture) *Trust {
			payload, sig := sigtest.LegacySignature(t, key, "registry.example.com/team/app", indexDigest)
			m, _, layer := sigtest.LegacySigManifest(t, payload, sig)
			f.attach(indexDigest, m, layer)
			f.legacyAtt(t, indexDigest, sigtest.LegacyAttestation(t, key, sigtest.Statement(indexDigest, spdx, nil)), spdx)
			tr := keyTrust(t, key)
			tr.Policy = keyPolicy(spdx)
			tr.Policy.Rules[0].Signers = []Signer{{Name: "absent.pub", Key: "/keys/absent.pub"}}
			return tr
		}, "absent.pub: not among the trusted keys", "the rule has no key signer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture()
			tr := c.setup(t, f)
			res := tr.Verify(context.Background(), f.img)
			if res.Passed {
				t.Fatalf("passed; checks %+v %+v", res.Signatures, res.Attestations)
			}
			all := strings.Join(res.Failures, "\n")
			for _, ch := range append(res.Signatures, res.Attestations...) {
				all += "\n" + ch.Reason
			}
			if !strings.Contains(all, c.reason) {
				t.Errorf("no reason mentions %q:\n%s", c.reason, all)
			}
			if c.not != "" && strings.Contains(all, c.not) {
				t.Errorf("a reason mentions %q:\n%s", c.not, all)
			}
		})
	}
}

// A catalog signature that is not a Sigstore bundle is named as such, whatever the pinned keys.
func TestCheckCatalogSignatureNotABundle(t *testing.T) {
	keys := keyTrust(t, sigtest.NewKey(t)).Keys
	cat := digest.FromString("catalog")
	sig := archive.CatalogSignature{Bundle: []byte(`{"mediaType": 7}`)}
	sig.Manifest.Digest = digest.FromString("signature manifest")
	res := checkCatalogSignature(sig, cat, keys)
	if res.Valid || !strings.HasPrefix(res.Reason, "not a Sigstore bundle: ") || res.Digest != sig.Manifest.Digest {
		t.Fatalf("got %+v, want invalid, digest %s, reason \"not a Sigstore bundle: ...\"", res, sig.Manifest.Digest)
	}
}

// Keys a policy names (key: FILE) are trusted beside --key; one that cannot be read is named with the
// policy's file and line.
func TestTrustFromFilesPolicyKeys(t *testing.T) {
	dir := t.TempDir()
	k := sigtest.NewKey(t)
	if err := os.WriteFile(filepath.Join(dir, "release.pub"), k.PublicPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(name, keyFile string) string {
		p := filepath.Join(dir, name)
		pol := "apiVersion: airlock.dev/v1alpha1\nkind: Policy\nrules:\n  - name: all\n    match: [\"**\"]\n    signers:\n      - key: " + keyFile + "\n"
		if err := os.WriteFile(p, []byte(pol), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	tr, err := TrustFromFiles(nil, "", write("policy.yaml", "release.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Keys) != 1 || tr.Keys[0].Name != "release.pub" || tr.Keys[0].Hint != k.Hint() {
		t.Fatalf("keys %+v, want release.pub (hint %s) from the policy", tr.Keys, k.Hint())
	}
	// The same key given with --key is not loaded twice.
	tr, err = TrustFromFiles([]string{filepath.Join(dir, "release.pub")}, "", filepath.Join(dir, "policy.yaml"))
	if err != nil || len(tr.Keys) != 1 {
		t.Fatalf("keys %+v, err %v; want release.pub once", tr.Keys, err)
	}

	missing := write("missing.yaml", "absent.pub")
	_, err = TrustFromFiles(nil, "", missing)
	if err == nil || !strings.Contains(err.Error(), missing+":4: signer key: ") || !strings.Contains(err.Error(), "absent.pub") {
		t.Fatalf("err = %v, want %s:4: signer key: ... absent.pub", err, missing)
	}

	if err := os.WriteFile(filepath.Join(dir, "bad.pub"), []byte("not a key"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = TrustFromFiles(nil, "", write("bad.yaml", "bad.pub"))
	if err == nil || !strings.Contains(err.Error(), "bad.pub") {
		t.Fatalf("err = %v, want one naming bad.pub", err)
	}

	_, err = TrustFromFiles(nil, filepath.Join(dir, "absent_root.json"), "")
	if err == nil || !strings.HasPrefix(err.Error(), "trusted root "+filepath.Join(dir, "absent_root.json")+": ") {
		t.Fatalf("err = %v, want trusted root %s: ...", err, filepath.Join(dir, "absent_root.json"))
	}
}
