package sigtest

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

var (
	imageDigest = digest.FromString("an image manifest")
	subject     = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: imageDigest, Size: 17}
)

const (
	identity = "dev@example.com"
	issuer   = "https://accounts.example.com"
)

func loadBundle(t *testing.T, b []byte) *bundle.Bundle {
	t.Helper()
	var pb bundle.Bundle
	if err := pb.UnmarshalJSON(b); err != nil {
		t.Fatalf("bundle does not parse: %v\n%s", err, b)
	}
	return &pb
}

func digestPolicy(t *testing.T, id verify.PolicyOption) verify.PolicyBuilder {
	t.Helper()
	hexBytes, err := hex.DecodeString(imageDigest.Encoded())
	if err != nil {
		t.Fatal(err)
	}
	return verify.NewPolicy(verify.WithArtifactDigest("sha256", hexBytes), id)
}

func keylessVerifier(t *testing.T, trustedRootJSON []byte) *verify.Verifier {
	t.Helper()
	tr, err := root.NewTrustedRootFromJSON(trustedRootJSON)
	if err != nil {
		t.Fatalf("trusted root does not read back: %v", err)
	}
	v, err := verify.NewVerifier(tr,
		verify.WithSignedCertificateTimestamps(1),
		verify.WithTransparencyLog(1),
		verify.WithObserverTimestamps(1))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func identityPolicy(t *testing.T) verify.PolicyBuilder {
	t.Helper()
	id, err := verify.NewShortCertificateIdentity(issuer, "", identity, "")
	if err != nil {
		t.Fatal(err)
	}
	return digestPolicy(t, verify.WithCertificateIdentity(id))
}

func TestStatement(t *testing.T) {
	var st map[string]any
	if err := json.Unmarshal(Statement(imageDigest, CosignSignPredicateType, nil), &st); err != nil {
		t.Fatal(err)
	}
	if st["_type"] != StatementTypeV1 || st["predicateType"] != CosignSignPredicateType {
		t.Fatalf("statement: %v", st)
	}
	if p, ok := st["predicate"].(map[string]any); !ok || len(p) != 0 {
		t.Fatalf("predicate = %v, want {}", st["predicate"])
	}
	sub := st["subject"].([]any)[0].(map[string]any)["digest"].(map[string]any)
	if sub["sha256"] != imageDigest.Encoded() {
		t.Fatalf("subject digest = %v", sub)
	}
}

// (a) a key-based bundle verifies with the key and no timestamps.
func TestKeyBundleVerifies(t *testing.T) {
	k := NewKey(t)
	b := KeyBundle(t, k, Statement(imageDigest, CosignSignPredicateType, nil))
	if strings.Contains(string(b), "tlogEntries\":[{") {
		t.Fatalf("key bundle has tlog entries: %s", b)
	}
	var raw struct {
		MediaType            string
		VerificationMaterial struct{ PublicKey struct{ Hint string } }
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.MediaType != BundleMediaType || raw.VerificationMaterial.PublicKey.Hint != k.Hint() {
		t.Fatalf("bundle = %s", b)
	}

	pub, err := cryptoutils.UnmarshalPEMToPublicKey(k.PublicPEM)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return root.NewExpiringKey(sv, time.Time{}, time.Time{}), nil
	})
	v, err := verify.NewVerifier(tm, verify.WithCurrentTime())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(loadBundle(t, b), digestPolicy(t, verify.WithKey())); err != nil {
		t.Fatalf("key bundle does not verify: %v", err)
	}

	// Another key must not verify it.
	other := NewKey(t)
	osv, _ := signature.LoadVerifier(other.Private.Public(), crypto.SHA256)
	otm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return root.NewExpiringKey(osv, time.Time{}, time.Time{}), nil
	})
	ov, _ := verify.NewVerifier(otm, verify.WithCurrentTime())
	if _, err := ov.Verify(loadBundle(t, b), digestPolicy(t, verify.WithKey())); err == nil {
		t.Fatal("key bundle verified with another key")
	}
}

func TestReferrer(t *testing.T) {
	k := NewKey(t)
	b := KeyBundle(t, k, Statement(imageDigest, CosignSignPredicateType, nil))
	mb, layer := Referrer(t, b, CosignSignPredicateType, subject)
	if !bytes.Equal(layer, b) {
		t.Fatal("layer is not the bundle")
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		t.Fatal(err)
	}
	if m.MediaType != ocispec.MediaTypeImageManifest || m.ArtifactType != BundleMediaType ||
		m.Config.MediaType != ocispec.MediaTypeEmptyJSON || m.Config.Digest != ocispec.DescriptorEmptyJSON.Digest ||
		len(m.Layers) != 1 || m.Layers[0].MediaType != BundleMediaType || m.Layers[0].Digest != digest.FromBytes(layer) ||
		m.Subject == nil || m.Subject.Digest != imageDigest ||
		m.Annotations["dev.sigstore.bundle.content"] != "dsse-envelope" ||
		m.Annotations["dev.sigstore.bundle.predicateType"] != CosignSignPredicateType {
		t.Fatalf("referrer manifest: %s", mb)
	}
}

// (b) a keyless bundle verifies against the exported trusted root, with SCT,
// tlog and observer timestamp requirements and the signer's identity.
func TestKeylessBundleVerifies(t *testing.T) {
	s := NewSigstore(t)
	b := s.KeylessBundle(t, identity, issuer, Statement(imageDigest, "https://slsa.dev/provenance/v0.2", map[string]any{"builder": map[string]string{"id": "ci"}}), time.Now())
	res, err := keylessVerifier(t, s.TrustedRootJSON(t)).Verify(loadBundle(t, b), identityPolicy(t))
	if err != nil {
		t.Fatalf("keyless bundle does not verify: %v", err)
	}
	if len(res.VerifiedTimestamps) != 2 {
		t.Errorf("verified timestamps = %+v, want tlog and TSA", res.VerifiedTimestamps)
	}
	if res.Statement == nil || res.Statement.PredicateType != "https://slsa.dev/provenance/v0.2" {
		t.Errorf("statement = %v", res.Statement)
	}

	// Wrong identity or issuer must fail.
	for _, c := range [][2]string{{issuer, "mallory@example.com"}, {"https://evil.example.com", identity}} {
		id, err := verify.NewShortCertificateIdentity(c[0], "", c[1], "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keylessVerifier(t, s.TrustedRootJSON(t)).Verify(loadBundle(t, b), digestPolicy(t, verify.WithCertificateIdentity(id))); err == nil {
			t.Errorf("verified with identity %v", c)
		}
	}
}

func TestKeylessBundleURIIdentityAndPast(t *testing.T) {
	s := NewSigstore(t)
	uri := "https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main"
	past := time.Now().Add(-30 * 24 * time.Hour)
	b := s.KeylessBundleIssuedAt(t, uri, issuer, Statement(imageDigest, CosignSignPredicateType, nil), past, past.Add(time.Minute))
	id, err := verify.NewShortCertificateIdentity(issuer, "", uri, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keylessVerifier(t, s.TrustedRootJSON(t)).Verify(loadBundle(t, b), digestPolicy(t, verify.WithCertificateIdentity(id))); err != nil {
		t.Fatalf("back-dated keyless bundle does not verify: %v", err)
	}
}

// (c) the same bundle fails against another Sigstore's trusted root.
func TestKeylessBundleUnknownRoot(t *testing.T) {
	s, other := NewSigstore(t), NewSigstore(t)
	b := s.KeylessBundle(t, identity, issuer, Statement(imageDigest, CosignSignPredicateType, nil), time.Now())
	_, err := keylessVerifier(t, other.TrustedRootJSON(t)).Verify(loadBundle(t, b), identityPolicy(t))
	if err == nil {
		t.Fatal("keyless bundle verified against another trusted root")
	}
	t.Logf("unknown root: %v", err)
}

// (d) signed at a time outside the leaf's validity fails.
func TestKeylessBundleOutsideLeafValidity(t *testing.T) {
	s := NewSigstore(t)
	for name, at := range map[string]time.Time{
		"after":  time.Now().Add(LeafValidity + time.Hour),
		"before": time.Now().Add(-time.Hour),
	} {
		b := s.KeylessBundle(t, identity, issuer, Statement(imageDigest, CosignSignPredicateType, nil), at)
		_, err := keylessVerifier(t, s.TrustedRootJSON(t)).Verify(loadBundle(t, b), identityPolicy(t))
		if err == nil {
			t.Fatalf("%s: keyless bundle signed outside its certificate's validity verified", name)
		}
		t.Logf("%s: %v", name, err)
	}
}

func TestKeylessWrongDigest(t *testing.T) {
	s := NewSigstore(t)
	b := s.KeylessBundle(t, identity, issuer, Statement(digest.FromString("other"), CosignSignPredicateType, nil), time.Now())
	if _, err := keylessVerifier(t, s.TrustedRootJSON(t)).Verify(loadBundle(t, b), identityPolicy(t)); err == nil {
		t.Fatal("verified against the wrong digest")
	}
}

// (e) a legacy signature verifies over the payload.
func TestLegacySignature(t *testing.T) {
	k := NewKey(t)
	payload, sigB64 := LegacySignature(t, k, "registry.example.com/team/app", imageDigest)
	want := `{"critical":{"identity":{"docker-reference":"registry.example.com/team/app"},"image":{"docker-manifest-digest":"` +
		imageDigest.String() + `"},"type":"cosign container image signature"},"optional":null}`
	if string(payload) != want {
		t.Fatalf("payload = %s", payload)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(k.PublicPEM)
	if err != nil {
		t.Fatal(err)
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload)); err != nil {
		t.Fatalf("legacy signature does not verify: %v", err)
	}
	if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(append(payload, ' '))); err == nil {
		t.Fatal("legacy signature verified a changed payload")
	}

	mb, cfg, layer := LegacySigManifest(t, payload, sigB64)
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		t.Fatal(err)
	}
	if m.Config.MediaType != ocispec.MediaTypeImageConfig || m.Config.Digest != digest.FromBytes(cfg) ||
		len(m.Layers) != 1 || m.Layers[0].MediaType != SimpleSigningMediaType ||
		m.Layers[0].Digest != digest.FromBytes(layer) || !bytes.Equal(layer, payload) ||
		m.Layers[0].Annotations[SignatureAnnotation] != sigB64 {
		t.Fatalf("sig manifest: %s", mb)
	}
}

func TestLegacyAttestation(t *testing.T) {
	k := NewKey(t)
	st := Statement(imageDigest, "https://slsa.dev/provenance/v0.2", map[string]any{"x": 1})
	env := LegacyAttestation(t, k, st)
	var e struct {
		PayloadType string
		Payload     string
		Signatures  []struct{ KeyID, Sig string }
	}
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	payload, _ := base64.StdEncoding.DecodeString(e.Payload)
	if e.PayloadType != InTotoPayloadType || !bytes.Equal(payload, st) || len(e.Signatures) != 1 {
		t.Fatalf("envelope: %s", env)
	}
	sig, _ := base64.StdEncoding.DecodeString(e.Signatures[0].Sig)
	v, _ := signature.LoadVerifier(k.Private.Public(), crypto.SHA256)
	if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(pae(InTotoPayloadType, st))); err != nil {
		t.Fatalf("envelope signature does not verify over the PAE: %v", err)
	}
	mb, cfg, layer := LegacyAttManifest(t, env, "https://slsa.dev/provenance/v0.2")
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		t.Fatal(err)
	}
	if m.Config.Digest != digest.FromBytes(cfg) || len(m.Layers) != 1 || m.Layers[0].MediaType != DSSEMediaType ||
		!bytes.Equal(layer, env) || m.Layers[0].Annotations[PredicateTypeAnnotation] != "https://slsa.dev/provenance/v0.2" {
		t.Fatalf("att manifest: %s", mb)
	}
}
