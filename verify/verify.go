package verify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"airlock.dev/airlock/archive"
)

// Media types and annotations of what is verified.
const (
	BundleMediaType        = "application/vnd.dev.sigstore.bundle.v0.3+json"
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	DSSEMediaType          = "application/vnd.dsse.envelope.v1+json"
	// SignatureAnnotation holds a legacy .sig layer's base64 signature.
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
	// CertificateAnnotation holds a legacy keyless .sig layer's Fulcio certificate (PEM).
	CertificateAnnotation = "dev.sigstore.cosign/certificate"
	// CosignSignPredicateType marks a cosign v3 bundle that is an image signature, not an attestation.
	CosignSignPredicateType = "https://sigstore.dev/cosign/sign/v1"
	inTotoPayloadType       = "application/vnd.in-toto+json"
)

// maxBlobSize bounds a signature, bundle or envelope read into memory.
const maxBlobSize = 16 << 20

// Fetcher reads blobs.
type Fetcher interface {
	Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error)
}

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
	// Fetch reads the referrers' layers.
	Fetch Fetcher
}

// Check is the outcome of checking one signature or attestation.
type Check struct {
	Referrer digest.Digest `json:"referrer"`
	Subject  digest.Digest `json:"subject"`
	// Covers names the manifest signed: "index" (or "image" for a single manifest) or a platform.
	Covers string `json:"covers"`
	// Format is "bundle", "legacy-sig" or "legacy-att".
	Format        string `json:"format"`
	PredicateType string `json:"predicateType,omitempty"`
	// Signer names the key or keyless identity that made it, when valid.
	Signer string `json:"signer,omitempty"`
	Valid  bool   `json:"valid"`
	Reason string `json:"reason,omitempty"`
}

// Result is the verdict on one image.
type Result struct {
	Source       string        `json:"source"`
	Digest       digest.Digest `json:"digest"`
	Passed       bool          `json:"passed"`
	Rule         string        `json:"rule"`
	Signatures   []Check       `json:"signatures"`
	Attestations []Check       `json:"attestations"`
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
	for _, r := range img.Referrers {
		covers, ok := t.covers(img, r.Subject)
		if !ok || (r.Kind != "signature" && r.Kind != "attestation") {
			continue // attached to an SBOM or another referrer: it does not sign the image
		}
		for _, c := range t.checkReferrer(ctx, img, r, rule) {
			c.Covers = covers
			if c.PredicateType == CosignSignPredicateType || c.Format == "legacy-sig" {
				res.Signatures = append(res.Signatures, c)
			} else {
				res.Attestations = append(res.Attestations, c)
			}
		}
	}
	res.Failures = evaluate(img, rule, res.Signatures, res.Attestations)
	res.Passed = len(res.Failures) == 0
	return res
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

// checkReferrer verifies one referrer against each signer of the rule; the first that verifies wins.
func (t *Trust) checkReferrer(ctx context.Context, img Image, r Referrer, rule *Rule) []Check {
	var m ocispec.Manifest
	if err := json.Unmarshal(r.Manifest, &m); err != nil || len(m.Layers) == 0 {
		return []Check{{Referrer: r.Digest, Subject: r.Subject, Reason: "unreadable referrer manifest"}}
	}
	var out []Check
	for _, layer := range m.Layers {
		c := Check{Referrer: r.Digest, Subject: r.Subject}
		blob, err := readBlob(ctx, img.Fetch, layer)
		if err != nil {
			c.Reason = err.Error()
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

func readBlob(ctx context.Context, f Fetcher, desc ocispec.Descriptor) ([]byte, error) {
	b, err := archive.ReadVerified(ctx, f, desc, maxBlobSize)
	if err != nil {
		return nil, fmt.Errorf("read layer %s: %w", desc.Digest, err)
	}
	return b, nil
}

// checkBundle verifies a Sigstore bundle with sigstore-go against each signer of the rule.
func (t *Trust) checkBundle(c *Check, blob []byte, rule *Rule, annotations map[string]string) {
	c.PredicateType = annotations["dev.sigstore.bundle.predicateType"]
	if c.PredicateType == "" {
		c.PredicateType = CosignSignPredicateType // a bundle without the annotation is a signature
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(blob); err != nil {
		c.Reason = "invalid Sigstore bundle: " + err.Error()
		return
	}
	hexDigest, err := hex.DecodeString(c.Subject.Encoded())
	if err != nil {
		c.Reason = "subject digest: " + err.Error()
		return
	}
	var reasons []string
	for _, s := range rule.Signers {
		res, err := t.verifyBundle(&b, s, hexDigest)
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("%s: %v", s.Name, err))
			continue
		}
		if res.Statement != nil {
			c.PredicateType = res.Statement.GetPredicateType()
		}
		c.Valid, c.Signer, c.Reason = true, s.Name, ""
		return
	}
	c.Reason = strings.Join(reasons, "; ")
}

func (t *Trust) verifyBundle(b *bundle.Bundle, s Signer, artifactDigest []byte) (*sgverify.VerificationResult, error) {
	artifact := sgverify.WithArtifactDigest("sha256", artifactDigest)
	hasTlog := false
	if entries, err := b.TlogEntries(); err == nil && len(entries) > 0 {
		hasTlog = true
	}
	if s.Keyless() {
		if t.TrustedRoot == nil {
			return nil, errors.New("a keyless signer needs a Sigstore trusted root (trust.trustedRoot), and there is none")
		}
		v, err := sgverify.NewVerifier(t.TrustedRoot,
			sgverify.WithSignedCertificateTimestamps(1), sgverify.WithTransparencyLog(1), sgverify.WithObserverTimestamps(1))
		if err != nil {
			return nil, err
		}
		id, err := sgverify.NewShortCertificateIdentity(s.Issuer, s.IssuerRegExp, s.Subject, s.SubjectRegExp)
		if err != nil {
			return nil, err
		}
		return v.Verify(b, sgverify.NewPolicy(artifact, sgverify.WithCertificateIdentity(id)))
	}
	k := t.key(filepath.Base(s.Key))
	if k == nil {
		return nil, fmt.Errorf("key %s is not among the trusted keys", s.Key)
	}
	keys := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return root.NewExpiringKey(k.verifier, time0, time0), nil
	})
	var material root.TrustedMaterial = keys
	opts := []sgverify.VerifierOption{sgverify.WithCurrentTime()}
	if hasTlog {
		if t.TrustedRoot == nil {
			return nil, errors.New("the bundle has a transparency log entry, and there is no trusted root to check it against")
		}
		material = root.TrustedMaterialCollection{t.TrustedRoot, keys}
		opts = []sgverify.VerifierOption{sgverify.WithTransparencyLog(1), sgverify.WithIntegratedTimestamps(1)}
	}
	if hint := b.GetVerificationMaterial().GetPublicKey().GetHint(); hint != "" && hint != k.Hint {
		return nil, fmt.Errorf("signed by a different key (key hint %s), not by this one (hint %s)", hint, k.Hint)
	}
	v, err := sgverify.NewVerifier(material, opts...)
	if err != nil {
		return nil, err
	}
	res, err := v.Verify(b, sgverify.NewPolicy(artifact, sgverify.WithKey()))
	if err != nil && strings.Contains(err.Error(), "could not verify envelope") {
		return nil, fmt.Errorf("the signature does not verify with this key: the bundle or its payload was altered (%w)", err)
	}
	return res, err
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
// does not, it sets c.Reason.
func signsSubject(c *Check, payload []byte) bool {
	var ss simpleSigning
	if err := json.Unmarshal(payload, &ss); err != nil {
		c.Reason = "signed payload is not a cosign simple-signing document"
		return false
	}
	if ss.Critical.Image.DockerManifestDigest != c.Subject.String() {
		c.Reason = fmt.Sprintf("the signature is valid but signs %s, not %s", ss.Critical.Image.DockerManifestDigest, c.Subject)
		return false
	}
	return true
}

// checkLegacySig verifies a cosign simple-signing signature: with each key signer, or, when the
// layer carries a Fulcio certificate, with each keyless signer (checkLegacyKeylessSig).
func (t *Trust) checkLegacySig(c *Check, payload []byte, annotations map[string]string, rule *Rule) {
	c.PredicateType = CosignSignPredicateType
	sig, err := base64.StdEncoding.DecodeString(annotations[SignatureAnnotation])
	if err != nil || len(sig) == 0 {
		c.Reason = "no signature annotation on the layer"
		return
	}
	if annotations[CertificateAnnotation] != "" {
		t.checkLegacyKeylessSig(c, payload, sig, annotations, rule)
		return
	}
	var reasons []string
	for _, s := range rule.Signers {
		if s.Keyless() {
			continue
		}
		k := t.key(filepath.Base(s.Key))
		if k == nil {
			reasons = append(reasons, fmt.Sprintf("%s: not among the trusted keys", s.Name))
			continue
		}
		if err := k.verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload)); err != nil {
			reasons = append(reasons, fmt.Sprintf("%s: %v", s.Name, err))
			continue
		}
		if signsSubject(c, payload) {
			c.Valid, c.Signer, c.Reason = true, s.Name, ""
		}
		return
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "the rule has no key signer")
	}
	c.Reason = strings.Join(reasons, "; ")
}

// checkLegacyAtt verifies a cosign legacy DSSE attestation with each key signer.
func (t *Trust) checkLegacyAtt(c *Check, blob []byte, rule *Rule) {
	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
		Signatures  []struct {
			Sig string `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(blob, &env); err != nil || len(env.Signatures) == 0 {
		c.Reason = "not a DSSE envelope"
		return
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		c.Reason = "DSSE payload is not base64"
		return
	}
	var st struct {
		PredicateType string `json:"predicateType"`
		Subject       []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	_ = json.Unmarshal(payload, &st)
	c.PredicateType = st.PredicateType
	pae := dssePAE(env.PayloadType, payload)
	var reasons []string
	for _, s := range rule.Signers {
		if s.Keyless() {
			continue
		}
		k := t.key(filepath.Base(s.Key))
		if k == nil {
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
			reasons = append(reasons, s.Name+": signature does not verify")
			continue
		}
		if env.PayloadType != inTotoPayloadType {
			c.Reason = "DSSE payload type " + env.PayloadType + " is not an in-toto statement"
			return
		}
		for _, sub := range st.Subject {
			if sub.Digest[c.Subject.Algorithm().String()] == c.Subject.Encoded() {
				c.Valid, c.Signer, c.Reason = true, s.Name, ""
				return
			}
		}
		c.Reason = fmt.Sprintf("the attestation is valid but its subject is not %s", c.Subject)
		return
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "no key signer of the rule")
	}
	c.Reason = strings.Join(reasons, "; ")
}

func dssePAE(payloadType string, payload []byte) []byte {
	return []byte(fmt.Sprintf("DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(payload), payload))
}

// evaluate applies the rule: enough distinct signers with valid signatures over the image (the index,
// or every platform manifest), and each required attestation type verified.
func evaluate(img Image, rule *Rule, sigs, atts []Check) []string {
	var failures []string
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
	return failures
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
