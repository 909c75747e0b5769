package verify

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"google.golang.org/protobuf/encoding/protojson"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
)

// writeKeyPair copies into dir the cosign-style key pair NAME.key (encrypted with password, as
// `cosign generate-key-pair` writes it) and NAME.pub from testdata/keys, where each (name, password)
// a test uses was made once: a P-256 key, PKCS#8, encrypted with go-securesystemslib's
// encrypted.EncryptWithCustomKDFParameters(der, password, encrypted.Legacy) (scrypt N 2^15, which
// cosign's earlier keys carry and LoadSigningKey reads like any other) in a PEM block of type
// sigstorePrivateKeyPEM. Making them in every run was most of verify's test time, paid again for
// every mutant of the mutation gate; TestLoadSigningKey still reads an encrypted key.
func writeKeyPair(t *testing.T, dir, name, password string) (keyPath, pubPath string) {
	t.Helper()
	fixture := name
	if password != "" {
		fixture += "-" + password
	}
	keyPath, pubPath = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	for from, to := range map[string]string{fixture + ".key": keyPath, fixture + ".pub": pubPath} {
		b, err := os.ReadFile(filepath.Join("testdata", "keys", from))
		if err != nil {
			t.Fatalf("key pair fixture: %v", err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return keyPath, pubPath
}

func password(s string) Password { return func() ([]byte, error) { return []byte(s), nil } }

func TestLoadSigningKey(t *testing.T) {
	dir := t.TempDir()
	keyPath, pubPath := writeKeyPair(t, dir, "transfer", "s3cret")
	k, err := LoadSigningKey(keyPath, password("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := LoadKeys([]string{pubPath})
	if err != nil {
		t.Fatal(err)
	}
	if k.Hint != pub[0].Hint {
		t.Errorf("signing key hint %s, public key hint %s", k.Hint, pub[0].Hint)
	}
	if _, err := LoadSigningKey(keyPath, password("wrong")); err == nil || !strings.Contains(err.Error(), "wrong password") {
		t.Errorf("wrong password: got %v", err)
	}
	if _, err := LoadSigningKey(keyPath, nil); err == nil || !strings.Contains(err.Error(), "COSIGN_PASSWORD") {
		t.Errorf("no password: got %v", err)
	}
	if _, err := LoadSigningKey(pubPath, password("")); err == nil || !strings.Contains(err.Error(), "not the public one") {
		t.Errorf("public key given as the signing key: got %v", err)
	}
}

func TestCheckCatalogSignatures(t *testing.T) {
	dir := t.TempDir()
	keyPath, pubPath := writeKeyPair(t, dir, "transfer", "")
	_, otherPub := writeKeyPair(t, dir, "other", "")
	k, err := LoadSigningKey(keyPath, password(""))
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := LoadKeys([]string{pubPath})
	if err != nil {
		t.Fatal(err)
	}
	other, err := LoadKeys([]string{otherPub})
	if err != nil {
		t.Fatal(err)
	}
	cat := digest.FromString("catalog")
	sig := func(d digest.Digest) archive.CatalogSignature {
		b, err := k.SignDigest(d)
		if err != nil {
			t.Fatal(err)
		}
		return archive.CatalogSignature{Manifest: ocispec.Descriptor{Digest: digest.FromBytes(b)}, Bundle: b}
	}
	good := sig(cat)

	// The signature is made to verify; a mismatch of the bundle's digest would be caught first.
	if got := CheckCatalogSignatures([]archive.CatalogSignature{good}, cat, pinned); !got[0].Valid || got[0].Signer != "transfer.pub" {
		t.Fatalf("signed by the pinned key: %+v", got[0])
	}

	got := CheckCatalogSignatures([]archive.CatalogSignature{good}, cat, other)
	if got[0].Valid || !strings.Contains(got[0].Reason, "unknown signer") {
		t.Errorf("signed by an unpinned key: %+v", got[0])
	}

	// Forged hint: the bundle claims the pinned key's hint, so only the cryptography can reject it.
	forged := sig(cat)
	var m map[string]any
	if err := json.Unmarshal(forged.Bundle, &m); err != nil {
		t.Fatal(err)
	}
	m["verificationMaterial"].(map[string]any)["publicKey"].(map[string]any)["hint"] = other[0].Hint
	forged.Bundle, _ = json.Marshal(m)
	got = CheckCatalogSignatures([]archive.CatalogSignature{forged}, cat, other)
	if got[0].Valid || !strings.Contains(got[0].Reason, "does not verify with this key") {
		t.Errorf("hint forged to the pinned key: %+v", got[0])
	}

	// An attestation on the catalog by the pinned key is not a signature of it.
	st, _ := protojson.Marshal(&intoto.Statement{
		Type:          intoto.StatementTypeUri,
		Subject:       []*intoto.ResourceDescriptor{{Digest: map[string]string{"sha256": cat.Encoded()}}},
		PredicateType: "https://slsa.dev/provenance/v1",
		Predicate:     &structpb.Struct{},
	})
	pb, err := sign.Bundle(&sign.DSSEData{Data: st, PayloadType: inTotoPayloadType}, keypair{k}, sign.BundleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	att, _ := protojson.Marshal(pb)
	got = CheckCatalogSignatures([]archive.CatalogSignature{{Bundle: att}}, cat, pinned)
	if got[0].Valid || !strings.Contains(got[0].Reason, "not a signature") {
		t.Errorf("attestation on the catalog: %+v", got[0])
	}

	// A signature of another catalog does not sign this one.
	got = CheckCatalogSignatures([]archive.CatalogSignature{sig(digest.FromString("another catalog"))}, cat, pinned)
	if got[0].Valid || !strings.Contains(got[0].Reason, "signs another digest, not "+cat.String()) {
		t.Errorf("signature over another digest: %+v", got[0])
	}
}

// newArchive writes a directory archive with an empty catalog, signed by each of signers.
func newArchive(t *testing.T, signers ...*SigningKey) string {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "archive")
	l, err := archive.CreateLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	catDesc, err := l.WriteCatalog(ctx, &archive.Catalog{Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range signers {
		b, err := s.SignDigest(catDesc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.AttachCatalogSignature(ctx, catDesc, b, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func forArchive(t *testing.T, dir string, a Anchors) (*Trust, error) {
	t.Helper()
	ctx := context.Background()
	r, err := archive.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cat, catDesc, err := r.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := archive.Check(r, cat); err != nil {
		t.Fatalf("a signed archive must pass Check: %v", err)
	}
	return a.ForArchive(ctx, r, cat, catDesc)
}

func TestAnchorsForArchive(t *testing.T) {
	keys := t.TempDir()
	keyPath, pubPath := writeKeyPair(t, keys, "transfer", "")
	otherKey, _ := writeKeyPair(t, keys, "attacker", "")
	_, releasePub := writeKeyPair(t, keys, "release", "")
	signer, err := LoadSigningKey(keyPath, password(""))
	if err != nil {
		t.Fatal(err)
	}
	attacker, err := LoadSigningKey(otherKey, password(""))
	if err != nil {
		t.Fatal(err)
	}
	signed := newArchive(t, signer)

	tr, err := forArchive(t, signed, Anchors{ArchiveKeys: []string{pubPath}})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Origin.Kind != "archive-signature" || !strings.Contains(tr.Source, "archive signed by transfer.pub (hint "+signer.Hint+")") {
		t.Errorf("signed archive: origin %q, source %q", tr.Origin.Kind, tr.Source)
	}

	if _, err := forArchive(t, signed, Anchors{}); !errors.Is(err, ErrNoAnchor) {
		t.Errorf("no anchor: got %v, want ErrNoAnchor", err)
	}
	tr, err = forArchive(t, signed, Anchors{Insecure: true})
	if err != nil || tr.Origin.Kind != "insecure" || !strings.Contains(tr.Source, "not pinned") {
		t.Errorf("insecure: %v, %+v", err, tr)
	}

	var unverified *UnverifiedArchiveError
	_, err = forArchive(t, newArchive(t), Anchors{ArchiveKeys: []string{pubPath}})
	if !errors.As(err, &unverified) || !strings.Contains(err.Error(), "is not signed") {
		t.Errorf("unsigned archive: got %v", err)
	}
	_, err = forArchive(t, newArchive(t, attacker), Anchors{ArchiveKeys: []string{pubPath}, Insecure: true})
	if !errors.As(err, &unverified) || !strings.Contains(err.Error(), "unknown signer") {
		t.Errorf("archive signed by another key: got %v", err)
	}

	// A valid signature does not carry another beside it that no pinned key verifies: refused, naming
	// the stray one; pinning both keys takes it.
	_, err = forArchive(t, newArchive(t, signer, attacker), Anchors{ArchiveKeys: []string{pubPath}})
	if !errors.As(err, &unverified) || unverified.SignedBy == "" || !strings.Contains(err.Error(), "also carries a signature that no pinned archive key") ||
		!strings.Contains(err.Error(), "(key hint "+attacker.Hint+"): unknown signer") {
		t.Errorf("a valid and a stray signature: got %v", err)
	}
	if _, err := forArchive(t, newArchive(t, attacker, signer), Anchors{ArchiveKeys: []string{pubPath, filepath.Join(keys, "attacker.pub")}}); err != nil {
		t.Errorf("two signatures, both keys pinned: %v", err)
	}

	// Site keys replace the archive's, and combine with the archive key.
	tr, err = forArchive(t, signed, Anchors{ArchiveKeys: []string{pubPath}, Keys: []string{releasePub}})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Origin.Kind != "site" || len(tr.Keys) != 1 || tr.Keys[0].Name != "release.pub" || !strings.HasPrefix(tr.Source, "archive signed by transfer.pub") {
		t.Errorf("archive key and site key: origin %q, keys %v, source %q", tr.Origin.Kind, tr.Keys, tr.Source)
	}
	if _, err := forArchive(t, signed, Anchors{TrustedRoot: "x.json"}); err == nil || !strings.Contains(err.Error(), "alone verifies nothing") {
		t.Errorf("--trusted-root alone: got %v", err)
	}
	// A site policy with a keyless signer needs a site trusted root: the archive's is never used.
	pol := filepath.Join(keys, "policy.yaml")
	if err := os.WriteFile(pol, []byte("apiVersion: airlock.dev/v1alpha1\nkind: Policy\nrules:\n  - match: [\"**\"]\n    signers:\n      - keyless: {issuer: https://issuer, subject: me@example.com}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := forArchive(t, signed, Anchors{ArchiveKeys: []string{pubPath}, Policy: pol}); err == nil || !strings.Contains(err.Error(), "no Sigstore trusted root is pinned at the site") {
		t.Errorf("keyless site policy without a site trusted root: got %v", err)
	}
}

func TestSiteTrustFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("trust.yaml", "apiVersion: airlock.dev/v1alpha1\nkind: SiteTrust\narchiveKeys: [keys/transfer.pub]\nkeys: [/etc/release.pub]\n")
	a, err := LoadSiteTrust(good)
	if err != nil {
		t.Fatal(err)
	}
	if a.ArchiveKeys[0] != filepath.Join(dir, "keys/transfer.pub") || a.Keys[0] != "/etc/release.pub" {
		t.Errorf("paths: %+v", a)
	}
	for name, tc := range map[string]struct{ body, want string }{
		"unknown field": {"apiVersion: airlock.dev/v1alpha1\nkind: SiteTrust\narchiveKey: [a.pub]\n", ":3: archiveKey"},
		"pins nothing":  {"apiVersion: airlock.dev/v1alpha1\nkind: SiteTrust\n", "pins nothing"},
		"wrong kind":    {"apiVersion: airlock.dev/v1alpha1\nkind: ImageSet\nkeys: [a.pub]\n", ":2: kind"},
	} {
		_, err := LoadSiteTrust(write(name+".yaml", tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}
	// Flags win over the file, field by field; AIRLOCK_TRUST names the file when --trust does not.
	t.Setenv(TrustEnv, good)
	m, err := Anchors{Keys: []string{"site.pub"}}.WithFile("")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.ArchiveKeys) != 1 || m.Keys[0] != "site.pub" || m.File != good {
		t.Errorf("merged: %+v", m)
	}
	// Image trust on the command line (keys, a policy or a trusted root, any one of them) replaces
	// the file's as a whole; archive keys alone leave the file's image trust as it is.
	for _, c := range []struct {
		name  string
		flags Anchors
		keys  []string
	}{
		{"archive key flag only", Anchors{ArchiveKeys: []string{"other.pub"}}, []string{"/etc/release.pub"}},
		{"policy flag", Anchors{Policy: "site-policy.yaml"}, nil},
		{"trusted root flag", Anchors{TrustedRoot: "root.json"}, nil},
	} {
		m, err := c.flags.WithFile(good)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(m.Keys, c.keys) || m.Policy != c.flags.Policy || m.TrustedRoot != c.flags.TrustedRoot {
			t.Errorf("%s: merged keys %v, policy %q, trusted root %q; want %v, %q, %q", c.name, m.Keys, m.Policy, m.TrustedRoot, c.keys, c.flags.Policy, c.flags.TrustedRoot)
		}
	}
}

// Images an ImageSet names are verified against what the site pins, or else, with nothing pinned,
// against the ImageSet's own trust section.
func TestAnchorsForImageSet(t *testing.T) {
	dir := t.TempDir()
	_, setKey := writeKeyPair(t, dir, "release", "")
	_, siteKey := writeKeyPair(t, dir, "site", "")
	set := &config.ImageSet{Path: filepath.Join(dir, "imageset.yaml"), Trust: config.Trust{Keys: []string{setKey}}}

	tr, err := (&Anchors{}).ForImageSet(set)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Origin.Kind != "imageset" || len(tr.Keys) != 1 || tr.Keys[0].Name != "release.pub" {
		t.Errorf("nothing pinned: origin %+v, keys %+v; want the ImageSet's release.pub", tr.Origin, tr.Keys)
	}

	tr, err = (&Anchors{Keys: []string{siteKey}}).ForImageSet(set)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Origin.Kind != "site" || len(tr.Keys) != 1 || tr.Keys[0].Name != "site.pub" {
		t.Errorf("site key pinned: origin %+v, keys %+v; want only the site's site.pub", tr.Origin, tr.Keys)
	}

	if _, err := (&Anchors{TrustedRoot: filepath.Join(dir, "trusted_root.json")}).ForImageSet(set); err == nil {
		t.Error("a trusted root alone pinned at the site: no error; want one, not the ImageSet's keys")
	}
}
