package verify

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"airlock.dev/airlock/archive"
)

// checkBundle verifies a Sigstore bundle with sigstore-go against each signer of the rule. What it
// is (a signature or an attestation of some predicate type) comes only from the verified content:
// the predicate type of the in-toto statement, or archive.CosignSignPredicateType for a message signature.
// The referrer manifest's predicateType annotation is not signed: when it disagrees with the
// verified content, the bundle was relabelled and is invalid.
func (t *Trust) checkBundle(c *Check, blob []byte, rule *Rule, annotations map[string]string) {
	labelled := annotations[archive.AnnotationBundlePredicateType]
	c.PredicateType = labelled // unverified until a signer verifies it
	if c.PredicateType == "" {
		c.PredicateType = archive.CosignSignPredicateType // a bundle without the annotation is a signature
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(blob); err != nil {
		c.invalid("invalid Sigstore bundle: " + err.Error())
		return
	}
	hexDigest, err := hex.DecodeString(c.Subject.Encoded())
	if err != nil {
		c.invalid("subject digest: " + err.Error())
		return
	}
	var a attempts
	for _, s := range rule.Signers {
		if s.IsKeyring() {
			continue // it vouches for charts' provenance only (keyringsigner.go)
		}
		res, err := t.verifyBundle(&b, s, hexDigest)
		if err != nil {
			a.add(s.Name, err)
			continue
		}
		pt, what := archive.CosignSignPredicateType, "a message signature"
		if res.Statement != nil {
			pt, what = res.Statement.GetPredicateType(), "an in-toto statement of predicate type "+res.Statement.GetPredicateType()
		}
		if labelled != "" && labelled != pt {
			c.invalid(fmt.Sprintf("relabelled: the referrer manifest's annotation says predicate type %s, but what %s signed is %s (the annotation is not signed)",
				labelled, s.Name, what))
			return
		}
		c.PredicateType = pt
		c.valid(s.Name, bundleHasTlog(&b))
		return
	}
	a.fail(c, "the rule has no key or keyless signer")
}

func bundleHasTlog(b *bundle.Bundle) bool {
	entries, err := b.TlogEntries()
	return err == nil && len(entries) > 0
}

// verifyBundle verifies b over artifactDigest (sha256) as made by s. A key-based bundle without a
// transparency log entry verifies with the key alone, unless s.RequireTlog; with an entry, the entry
// is verified against the trusted root too. A keyless bundle needs the trusted root, a transparency
// log entry and an allowed identity. Errors of type *signerError say the bundle is not by s or not
// accepted for s; any other error means it claims s and does not verify.
func (t *Trust) verifyBundle(b *bundle.Bundle, s Signer, artifactDigest []byte) (*sgverify.VerificationResult, error) {
	artifact := sgverify.WithArtifactDigest("sha256", artifactDigest)
	hasTlog := bundleHasTlog(b)
	if s.Keyless() {
		return t.verifyKeylessBundle(b, s, artifact)
	}
	k := t.key(filepath.Base(s.Key))
	if k == nil {
		return nil, notSigner("key %s is not among the trusted keys", s.Key)
	}
	pub := b.GetVerificationMaterial().GetPublicKey()
	if pub == nil {
		return nil, notSigner("a keyless signature (it carries a certificate), not one made with a key")
	}
	hint := pub.GetHint()
	if hint != "" && hint != k.Hint {
		return nil, notSigner("signed by a different key (key hint %s), not by this one (hint %s)", hint, k.Hint)
	}
	keys := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return root.NewExpiringKey(k.verifier, time.Time{}, time.Time{}), nil // no validity window
	})
	var material root.TrustedMaterial = keys
	opts := []sgverify.VerifierOption{sgverify.WithCurrentTime()}
	if hasTlog {
		if t.TrustedRoot == nil {
			return nil, rejected("the bundle has a transparency log entry, and there is no trusted root to check it against")
		}
		material = root.TrustedMaterialCollection{t.TrustedRoot, keys}
		opts = []sgverify.VerifierOption{sgverify.WithTransparencyLog(1), sgverify.WithIntegratedTimestamps(1)}
	}
	v, err := sgverify.NewVerifier(material, opts...)
	if err != nil {
		return nil, err
	}
	res, err := v.Verify(b, sgverify.NewPolicy(artifact, sgverify.WithKey()))
	if err != nil {
		switch whyRefused(b, material, artifactDigest) {
		case badSignature:
			if hint == "" {
				return nil, notSigner("the signature does not verify with this key: signed by another key, or altered (the bundle names no key hint) (%v)", err)
			}
			return nil, fmt.Errorf("the signature does not verify with this key, whose hint the bundle names: the bundle or its payload was altered (%w)", err)
		case otherDigest:
			return nil, fmt.Errorf("the signature is valid, but it signs another digest, not sha256:%x (%w)", artifactDigest, err)
		}
		return nil, err
	}
	if s.RequireTlog && !hasTlog {
		return nil, rejected("no transparency log entry, and the policy requires one for this signer (requireTlog: true): sign with the transparency log, or drop requireTlog")
	}
	return res, nil
}

// verifyKeylessBundle verifies a keyless bundle made by the identity s allows.
func (t *Trust) verifyKeylessBundle(b *bundle.Bundle, s Signer, artifact sgverify.ArtifactPolicyOption) (*sgverify.VerificationResult, error) {
	if t.TrustedRoot == nil {
		return nil, rejected("a keyless signer needs a Sigstore trusted root (trust.trustedRoot), and there is none")
	}
	vc, err := b.VerificationContent()
	if err != nil {
		return nil, err
	}
	leaf := vc.Certificate()
	if leaf == nil {
		return nil, notSigner("signed with a key, not a keyless signature (no certificate)")
	}
	sum, err := certificate.SummarizeCertificate(leaf)
	if err != nil {
		return nil, fmt.Errorf("unreadable certificate: %w", err)
	}
	return t.verifyKeyless(b, leaf, sum, s, artifact)
}

// verifyKeyless verifies b, whose Fulcio certificate leaf sum summarizes, as made by the identity s
// allows: the identity first (a certificate of another identity says who signed, whatever else is
// wrong, and is a *signerError), then sigstore-go against the trusted root (SCT, Fulcio chain,
// transparency log entry).
func (t *Trust) verifyKeyless(b *bundle.Bundle, leaf *x509.Certificate, sum certificate.Summary, s Signer, artifact sgverify.ArtifactPolicyOption) (*sgverify.VerificationResult, error) {
	id, err := sgverify.NewShortCertificateIdentity(s.Issuer, s.IssuerRegExp, s.Subject, s.SubjectRegExp)
	if err != nil {
		return nil, err
	}
	if err := id.Verify(sum); err != nil {
		return nil, notSigner("identity not allowed: the certificate is for %s", certIdentity(leaf))
	}
	v, err := sgverify.NewVerifier(t.TrustedRoot,
		sgverify.WithSignedCertificateTimestamps(1), sgverify.WithTransparencyLog(1), sgverify.WithObserverTimestamps(1))
	if err != nil {
		return nil, err
	}
	return v.Verify(b, sgverify.NewPolicy(artifact, sgverify.WithCertificateIdentity(id)))
}

// refusal is why sigstore-go refused a bundle, as whyRefused finds it.
type refusal int

const (
	refusedOtherwise refusal = iota // neither below: the transparency log, the bundle's form, ...
	badSignature                    // its signature does not verify with the key
	otherDigest                     // it signs another digest than the subject's
)

// whyRefused tells why a bundle that sigstore-go refused was refused, from the bundle itself rather
// than from the words of sigstore-go's error (which has no error types for these): a message
// signature over another digest, or a DSSE statement none of whose subjects is artifactDigest, signs
// another digest; a signature that fails sigstore-go's signature check alone (the envelope, or the
// message over its own digest), against the same key material, does not verify. The checks come in
// the order sigstore-go makes them: a message's digest before its signature, an envelope's
// signature before its subjects.
func whyRefused(b *bundle.Bundle, material root.TrustedMaterial, artifactDigest []byte) refusal {
	content, err := b.SignatureContent()
	if err != nil {
		return refusedOtherwise
	}
	vc, err := b.VerificationContent()
	if err != nil {
		return refusedOtherwise
	}
	if msg := content.MessageSignatureContent(); msg != nil {
		if !bytes.Equal(msg.Digest(), artifactDigest) {
			return otherDigest
		}
		digests := []sgverify.ArtifactDigest{{Algorithm: "sha256", Digest: artifactDigest}}
		if sgverify.VerifySignatureWithArtifactDigests(content, vc, material, digests) != nil {
			return badSignature
		}
		return refusedOtherwise
	}
	env := content.EnvelopeContent()
	if env == nil {
		return refusedOtherwise
	}
	if sgverify.VerifySignature(content, vc, material) != nil {
		return badSignature
	}
	st, err := env.Statement()
	if err != nil {
		return refusedOtherwise
	}
	want := hex.EncodeToString(artifactDigest)
	for _, subj := range st.GetSubject() {
		if subj.GetDigest()["sha256"] == want {
			return refusedOtherwise
		}
	}
	return otherDigest
}
