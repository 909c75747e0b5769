package verify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"oras.land/oras-go/v2/content"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/referrers"
)

// Media types and annotations of what is verified.
const (
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	DSSEMediaType          = "application/vnd.dsse.envelope.v1+json"
	// SignatureAnnotation holds a legacy .sig layer's base64 signature.
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
	// CertificateAnnotation holds a legacy keyless .sig layer's Fulcio certificate (PEM).
	CertificateAnnotation = "dev.sigstore.cosign/certificate"
	inTotoPayloadType     = "application/vnd.in-toto+json"
)

// maxBlobSize bounds a signature, bundle or envelope read into memory.
const maxBlobSize = 16 << 20

// Referrer is a signature or attestation manifest attached to a manifest of the image.
type Referrer struct {
	Digest   digest.Digest
	Subject  digest.Digest
	Kind     string // signature, attestation, sbom, other
	Manifest []byte
}

// Image is an image to verify, with what is attached to it.
type Image struct {
	// Source is the source reference; Repository its host/path, used to find the policy rule.
	Source     string
	Repository string
	Digest     digest.Digest
	// Platforms names each platform manifest by digest ("linux/amd64").
	Platforms map[digest.Digest]string
	Referrers []Referrer
	// Fetch reads the referrers' layers: a registry repository, an archive, anything that fetches
	// blobs by descriptor.
	Fetch content.Fetcher
}

// Statuses of a Check.
const (
	// StatusValid: verified, by Check.Signer.
	StatusValid = "valid"
	// StatusUnknownSigner: not by any signer of the rule (another key's hint, a key or identity the
	// rule does not list, a signature no trusted key verifies). It does not count, and it does not
	// fail the image by itself.
	StatusUnknownSigner = "unknown-signer"
	// StatusRejected: by a signer of the rule, or claiming to be, but the policy does not accept it
	// (no transparency log entry where the signer has requireTlog, or a log entry with no trusted
	// root to check it). It does not count, and it does not fail the image by itself.
	StatusRejected = "rejected"
	// StatusInvalid: it claims a signer of the rule (that key's hint, a certificate of an allowed
	// identity, or a signature that key verifies) and does not hold: altered, signing another
	// digest, relabelled, unreadable. An invalid check anywhere in the image's graph fails the image.
	StatusInvalid = "invalid"
)

// Check is the outcome of checking one signature or attestation.
type Check struct {
	Referrer digest.Digest `json:"referrer"`
	Subject  digest.Digest `json:"subject"`
	// Covers names the manifest signed: "index" (or "image" for a single manifest), a platform, or
	// for a signature on a referrer its kind and short digest ("sbom 0123456789ab").
	Covers string `json:"covers"`
	// SubjectKind is the kind of referrer signed (sbom, attestation, signature, other), for checks
	// in Result.Referrers; "" when the subject is the image or one of its platform manifests.
	SubjectKind string `json:"subjectKind,omitempty"`
	// Format is "bundle", "legacy-sig" or "legacy-att".
	Format string `json:"format"`
	// PredicateType is, for a valid check, the predicate type of the verified in-toto statement
	// (archive.CosignSignPredicateType for a signature, also a message signature). For a check that is not
	// valid it is what the referrer claims, unverified.
	PredicateType string `json:"predicateType,omitempty"`
	// Signer names the key or keyless identity that made it, when valid.
	Signer string `json:"signer,omitempty"`
	Valid  bool   `json:"valid"`
	// Status is StatusValid, StatusUnknownSigner, StatusRejected or StatusInvalid.
	Status string `json:"status"`
	// Tlog says whether a valid check had a transparency log entry, verified against the trusted root.
	Tlog   bool   `json:"tlog"`
	Reason string `json:"reason,omitempty"`
}

// isSignature reports whether c is an image signature rather than an attestation.
func (c Check) isSignature() bool {
	return c.Format == "legacy-sig" || c.PredicateType == archive.CosignSignPredicateType
}

// Result is the verdict on one image.
type Result struct {
	Source       string        `json:"source"`
	Digest       digest.Digest `json:"digest"`
	Passed       bool          `json:"passed"`
	Rule         string        `json:"rule"`
	Signatures   []Check       `json:"signatures"`
	Attestations []Check       `json:"attestations"`
	// Referrers are the signatures and attestations on referrers of the image (a signature on an
	// SBOM), each with Covers and SubjectKind naming the referrer signed.
	Referrers []Check `json:"referrers,omitempty"`
	// Failures says why the image did not pass; empty when it passed.
	Failures []string `json:"failures,omitempty"`
}

// Verify checks img against the trust material and the policy rule for its repository.
func (t *Trust) Verify(ctx context.Context, img Image) Result {
	res := Result{Source: img.Source, Digest: img.Digest}
	rule, err := t.rule(img.Repository)
	if err != nil {
		res.Failures = append(res.Failures, err.Error())
		return res
	}
	res.Rule = rule.Name
	byDigest := make(map[digest.Digest]Referrer, len(img.Referrers))
	for _, r := range img.Referrers {
		byDigest[r.Digest] = r
	}
	for _, r := range img.Referrers {
		if r.Kind != referrers.KindSignature && r.Kind != referrers.KindAttestation {
			continue // an SBOM or another artifact signs nothing
		}
		covers, onImage := t.covers(img, r.Subject)
		subjectKind := ""
		if !onImage {
			sub, ok := byDigest[r.Subject]
			if !ok {
				continue // attached to something that is not part of this image
			}
			subjectKind = sub.Kind
			covers = sub.Kind + " " + shortDigest(sub.Digest)
		}
		for _, c := range t.checkReferrer(ctx, img, r, rule) {
			c.Covers = covers
			switch {
			case !onImage:
				c.SubjectKind = subjectKind
				res.Referrers = append(res.Referrers, c)
			case c.isSignature():
				res.Signatures = append(res.Signatures, c)
			default:
				res.Attestations = append(res.Attestations, c)
			}
		}
	}
	res.Failures = evaluate(img, rule, &res)
	res.Passed = len(res.Failures) == 0
	return res
}

func shortDigest(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}

// rule returns the policy rule for repository, or the default rule: any one of the keys.
func (t *Trust) rule(repository string) (*Rule, error) {
	if t.Policy != nil {
		r := t.Policy.RuleFor(repository)
		if r == nil {
			return nil, fmt.Errorf("no rule of policy %s matches %s: add a rule (match: [%q]) or fix the patterns", t.Policy.Path, repository, repository)
		}
		return r, nil
	}
	if len(t.Keys) == 0 {
		return nil, errors.New("no keys and no policy to verify against: give --key or --policy, or save with trust.keys in the ImageSet")
	}
	r := &Rule{Name: "default: signed by one of the keys", Require: Requirement{Count: 1}}
	for _, k := range t.Keys {
		r.Signers = append(r.Signers, Signer{Name: k.Name, Key: k.Name})
	}
	return r, nil
}

func (t *Trust) covers(img Image, subject digest.Digest) (string, bool) {
	if subject == img.Digest {
		if len(img.Platforms) > 0 {
			return "index", true
		}
		return "image", true
	}
	p, ok := img.Platforms[subject]
	return p, ok
}

// signerError is why a signature does not count for one signer, with what that says about it:
// StatusUnknownSigner (not made by this signer) or StatusRejected (the policy does not accept it).
// Any other error means the signature is invalid.
type signerError struct {
	status string
	msg    string
}

func (e *signerError) Error() string { return e.msg }

func notSigner(format string, args ...any) error {
	return &signerError{status: StatusUnknownSigner, msg: fmt.Sprintf(format, args...)}
}

func rejected(format string, args ...any) error {
	return &signerError{status: StatusRejected, msg: fmt.Sprintf(format, args...)}
}

// statusRank orders the statuses of failed attempts: the worst one describes the check.
var statusRank = map[string]int{StatusUnknownSigner: 1, StatusRejected: 2, StatusInvalid: 3}

// attempts collects why a signature did not verify with each signer of the rule.
type attempts struct {
	status  string
	reasons []string
}

// add records the failure err of signer name.
func (a *attempts) add(name string, err error) {
	status := StatusInvalid
	var se *signerError
	var idErr *sgverify.ErrNoMatchingCertificateIdentity
	switch {
	case errors.As(err, &se):
		status = se.status
	case errors.As(err, &idErr):
		status = StatusUnknownSigner
	}
	if statusRank[status] > statusRank[a.status] {
		a.status = status
	}
	a.reasons = append(a.reasons, fmt.Sprintf("%s: %v", name, err))
}

// fail sets c from the attempts; none is the reason when no signer was tried.
func (a *attempts) fail(c *Check, none string) {
	if len(a.reasons) == 0 {
		c.Status, c.Reason = StatusUnknownSigner, none
		return
	}
	c.Status, c.Reason = a.status, strings.Join(a.reasons, "; ")
}

// invalid marks c invalid, for reason.
func (c *Check) invalid(reason string) {
	c.Valid, c.Signer, c.Status, c.Reason = false, "", StatusInvalid, reason
}

// valid marks c valid, by signer.
func (c *Check) valid(signer string, tlog bool) {
	c.Valid, c.Signer, c.Status, c.Tlog, c.Reason = true, signer, StatusValid, tlog, ""
}

// checkReferrer verifies one referrer against each signer of the rule; the first that verifies wins.
func (t *Trust) checkReferrer(ctx context.Context, img Image, r Referrer, rule *Rule) []Check {
	var m ocispec.Manifest
	if err := json.Unmarshal(r.Manifest, &m); err != nil || len(m.Layers) == 0 {
		c := Check{Referrer: r.Digest, Subject: r.Subject}
		c.invalid("unreadable referrer manifest")
		return []Check{c}
	}
	var out []Check
	for _, layer := range m.Layers {
		c := Check{Referrer: r.Digest, Subject: r.Subject}
		blob, err := readBlob(ctx, img.Fetch, layer)
		if err != nil {
			c.invalid(err.Error())
			out = append(out, c)
			continue
		}
		switch {
		case strings.HasPrefix(layer.MediaType, "application/vnd.dev.sigstore.bundle"):
			c.Format = "bundle"
			t.checkBundle(&c, blob, rule, m.Annotations)
		case layer.MediaType == SimpleSigningMediaType:
			c.Format = "legacy-sig"
			t.checkLegacySig(&c, blob, layer.Annotations, rule)
		case layer.MediaType == DSSEMediaType:
			c.Format = "legacy-att"
			t.checkLegacyAtt(&c, blob, rule)
		default:
			continue
		}
		out = append(out, c)
	}
	return out
}

func readBlob(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor) ([]byte, error) {
	b, err := archive.ReadVerified(ctx, f, desc, maxBlobSize)
	if err != nil {
		return nil, fmt.Errorf("read layer %s: %w", desc.Digest, err)
	}
	return b, nil
}

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
	a.fail(c, "the rule has no signer")
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
		return root.NewExpiringKey(k.verifier, time0, time0), nil
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
		msg := err.Error()
		switch {
		case strings.Contains(msg, "could not verify envelope"), strings.Contains(msg, "could not verify message"):
			if hint == "" {
				return nil, notSigner("the signature does not verify with this key: signed by another key, or altered (the bundle names no key hint) (%v)", err)
			}
			return nil, fmt.Errorf("the signature does not verify with this key, whose hint the bundle names: the bundle or its payload was altered (%w)", err)
		case strings.Contains(msg, "does not match any digest in statement"), strings.Contains(msg, "does not match digests in statement"),
			strings.Contains(msg, "artifact does not match digest"):
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
	id, err := sgverify.NewShortCertificateIdentity(s.Issuer, s.IssuerRegExp, s.Subject, s.SubjectRegExp)
	if err != nil {
		return nil, err
	}
	vc, err := b.VerificationContent()
	if err != nil {
		return nil, err
	}
	leaf := vc.Certificate()
	if leaf == nil {
		return nil, notSigner("signed with a key, not a keyless signature (no certificate)")
	}
	// The identity first: a certificate of another identity says who signed, whatever else is wrong.
	sum, err := certificate.SummarizeCertificate(leaf)
	if err != nil {
		return nil, fmt.Errorf("unreadable certificate: %w", err)
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

// simpleSigning is cosign's legacy signature payload.
type simpleSigning struct {
	Critical struct {
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
}

// signsSubject reports whether a verified simple-signing payload names c's subject digest; when it
// does not, it marks c invalid.
func signsSubject(c *Check, payload []byte) bool {
	var ss simpleSigning
	if err := json.Unmarshal(payload, &ss); err != nil {
		c.invalid("signed payload is not a cosign simple-signing document")
		return false
	}
	if ss.Critical.Image.DockerManifestDigest != c.Subject.String() {
		c.invalid(fmt.Sprintf("the signature is valid but signs %s, not %s", ss.Critical.Image.DockerManifestDigest, c.Subject))
		return false
	}
	return true
}

// legacyNoTlog is why a legacy key-based signature or attestation does not satisfy requireTlog.
const legacyNoTlog = "the policy requires a transparency log entry for this signer (requireTlog: true), and a key-based legacy cosign %s is checked without one: sign with cosign v3 (a Sigstore bundle) and the transparency log, or drop requireTlog"

// checkLegacySig verifies a cosign simple-signing signature: with each key signer, or, when the
// layer carries a Fulcio certificate, with each keyless signer (checkLegacyKeylessSig).
func (t *Trust) checkLegacySig(c *Check, payload []byte, annotations map[string]string, rule *Rule) {
	c.PredicateType = archive.CosignSignPredicateType
	sig, err := base64.StdEncoding.DecodeString(annotations[SignatureAnnotation])
	if err != nil || len(sig) == 0 {
		c.invalid("no signature annotation on the layer")
		return
	}
	if annotations[CertificateAnnotation] != "" {
		t.checkLegacyKeylessSig(c, payload, sig, annotations, rule)
		return
	}
	var a attempts
	for _, s := range rule.Signers {
		if s.Keyless() {
			continue
		}
		k := t.key(filepath.Base(s.Key))
		if k == nil {
			a.add(s.Name, notSigner("not among the trusted keys"))
			continue
		}
		if err := k.verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload)); err != nil {
			// A legacy signature names no key: one that no key verifies is another signer's, or altered.
			a.add(s.Name, notSigner("does not verify with this key (another signer's, or altered): %v", err))
			continue
		}
		if !signsSubject(c, payload) {
			return
		}
		if s.RequireTlog {
			c.Status, c.Reason = StatusRejected, s.Name+": "+fmt.Sprintf(legacyNoTlog, ".sig")
			return
		}
		c.valid(s.Name, false)
		return
	}
	a.fail(c, "the rule has no key signer")
}

// attStatement is the part of an in-toto statement that is checked.
type attStatement struct {
	Type          string `json:"_type"`
	PredicateType string `json:"predicateType"`
	Subject       []struct {
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
}

// checkLegacyAtt verifies a cosign legacy DSSE attestation with each key signer: the envelope's
// signature over the pre-authentication encoding, an in-toto payload, and the statement's subject.
// Its predicate type comes from the verified statement.
func (t *Trust) checkLegacyAtt(c *Check, blob []byte, rule *Rule) {
	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
		Signatures  []struct {
			Sig string `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(blob, &env); err != nil || len(env.Signatures) == 0 {
		c.invalid("not a DSSE envelope")
		return
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		c.invalid("DSSE payload is not base64")
		return
	}
	var st attStatement
	stErr := json.Unmarshal(payload, &st)
	c.PredicateType = st.PredicateType // unverified until a signer verifies it
	pae := dssePAE(env.PayloadType, payload)
	var a attempts
	for _, s := range rule.Signers {
		if s.Keyless() {
			continue
		}
		k := t.key(filepath.Base(s.Key))
		if k == nil {
			a.add(s.Name, notSigner("not among the trusted keys"))
			continue
		}
		ok := false
		for _, sg := range env.Signatures {
			raw, err := base64.StdEncoding.DecodeString(sg.Sig)
			if err == nil && k.verifier.VerifySignature(bytes.NewReader(raw), bytes.NewReader(pae)) == nil {
				ok = true
				break
			}
		}
		if !ok {
			a.add(s.Name, notSigner("the DSSE signature does not verify with this key (another signer's, or altered)"))
			continue
		}
		switch {
		case env.PayloadType != inTotoPayloadType:
			c.invalid("DSSE payload type " + env.PayloadType + " is not an in-toto statement")
		case stErr != nil || !strings.HasPrefix(st.Type, "https://in-toto.io/Statement/") || st.PredicateType == "":
			c.invalid("the signed DSSE payload is not an in-toto statement with a predicate type")
		case !statementNames(st, c.Subject):
			c.invalid(fmt.Sprintf("the attestation is valid but its subject is not %s", c.Subject))
		case s.RequireTlog:
			c.Status, c.Reason = StatusRejected, s.Name+": "+fmt.Sprintf(legacyNoTlog, ".att")
		default:
			c.valid(s.Name, false)
		}
		return
	}
	a.fail(c, "the rule has no key signer (legacy attestations are verified with keys only)")
}

// statementNames reports whether one of st's subjects has digest d.
func statementNames(st attStatement, d digest.Digest) bool {
	for _, sub := range st.Subject {
		if v, ok := sub.Digest[d.Algorithm().String()]; ok && v == d.Encoded() {
			return true
		}
	}
	return false
}

func dssePAE(payloadType string, payload []byte) []byte {
	return []byte(fmt.Sprintf("DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(payload), payload))
}

// evaluate applies the rule: enough distinct signers with valid signatures over the image (the index,
// or every platform manifest), each required attestation type verified, no invalid signature or
// attestation anywhere in the image's graph, and a valid signature on each referrer of a kind the
// rule requires signed.
func evaluate(img Image, rule *Rule, res *Result) []string {
	var failures []string
	sigs, atts := res.Signatures, res.Attestations
	signers := coveringSigners(img, sigs, "")
	if !rule.Require.Satisfied(len(signers), len(rule.Signers)) {
		var msg string
		switch {
		case len(sigs) == 0 && len(atts) > 0:
			msg = "no signature found, only attestations (an attestation is not a signature)"
		case len(sigs) == 0:
			msg = "no signature found"
		default:
			names := sortedKeys(signers)
			if len(names) == 0 {
				names = []string{"none"}
			}
			msg = fmt.Sprintf("signatures: %s of %s required; valid signatures over the image from: %s",
				rule.Require, signerNames(rule), strings.Join(names, ", "))
		}
		failures = append(failures, msg)
	}
	for _, pt := range rule.Attestations {
		if len(coveringSigners(img, atts, pt)) == 0 {
			msg := "attestation " + pt + ": none found"
			for _, c := range atts {
				if c.PredicateType == pt {
					msg = "attestation " + pt + ": none valid"
				}
			}
			failures = append(failures, msg)
		}
	}
	for _, list := range [][]Check{sigs, atts, res.Referrers} {
		for _, c := range list {
			if c.Status != StatusInvalid {
				continue
			}
			what := "attestation"
			if c.isSignature() {
				what = "signature"
			}
			failures = append(failures, fmt.Sprintf("invalid %s on %s (referrer %s): %s", what, c.Covers, shortDigest(c.Referrer), c.Reason))
		}
	}
	failures = append(failures, unsignedReferrers(img, rule, res.Referrers)...)
	return failures
}

// unsignedReferrers names each referrer of a kind in rule.RequireSignedReferrers that carries no
// valid signature by a signer of the rule.
func unsignedReferrers(img Image, rule *Rule, checks []Check) []string {
	var failures []string
	seen := map[digest.Digest]bool{}
	for _, kind := range rule.RequireSignedReferrers {
		for _, r := range img.Referrers {
			if r.Kind != kind || seen[r.Digest] {
				continue
			}
			seen[r.Digest] = true
			var found []string
			signed := false
			for _, c := range checks {
				if c.Subject != r.Digest || !c.isSignature() {
					continue
				}
				signed = signed || c.Valid
				found = append(found, c.Status)
			}
			if signed {
				continue
			}
			msg := "none found"
			if len(found) > 0 {
				msg = "found only: " + strings.Join(found, ", ")
			}
			failures = append(failures, fmt.Sprintf("%s %s (on %s): the rule requires signed %s referrers, and it has no valid signature by %s; %s",
				kind, shortDigest(r.Digest), referrerParent(img, r), kind, signerNames(rule), msg))
		}
	}
	return failures
}

// referrerParent names what r is attached to: the index, the image, a platform or another referrer.
func referrerParent(img Image, r Referrer) string {
	if r.Subject == img.Digest {
		if len(img.Platforms) > 0 {
			return "index"
		}
		return "image"
	}
	if p, ok := img.Platforms[r.Subject]; ok {
		return p
	}
	return shortDigest(r.Subject)
}

// coveringSigners returns the signers whose valid checks (of predicate type pt, if set) cover the
// image: the root digest, or every platform manifest.
func coveringSigners(img Image, checks []Check, pt string) map[string]bool {
	root := map[string]bool{}
	perPlatform := map[digest.Digest]map[string]bool{}
	for _, c := range checks {
		if !c.Valid || (pt != "" && c.PredicateType != pt) {
			continue
		}
		if c.Subject == img.Digest {
			root[c.Signer] = true
		} else {
			if perPlatform[c.Subject] == nil {
				perPlatform[c.Subject] = map[string]bool{}
			}
			perPlatform[c.Subject][c.Signer] = true
		}
	}
	if len(img.Platforms) > 0 && len(perPlatform) == len(img.Platforms) {
		var common map[string]bool
		for _, set := range perPlatform {
			if common == nil {
				common = map[string]bool{}
				for s := range set {
					common[s] = true
				}
				continue
			}
			for s := range common {
				if !set[s] {
					delete(common, s)
				}
			}
		}
		for s := range common {
			root[s] = true
		}
	}
	return root
}

func signerNames(r *Rule) string {
	names := make([]string, len(r.Signers))
	for i, s := range r.Signers {
		names[i] = s.Name
	}
	return "[" + strings.Join(names, ", ") + "]"
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
