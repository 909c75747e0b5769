package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"oras.land/oras-go/v2/content"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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
	// AnyHost chooses the policy rule by Repository's path under any host (Policy.RuleForAnyHost):
	// for an image whose name no pinned key vouches for, loaded where its source host is not kept, so
	// that a name cannot pick a weaker rule for the repository the image lands in.
	AnyHost bool
	Digest  digest.Digest
	// Platforms names each platform manifest by digest ("linux/amd64").
	Platforms map[digest.Digest]string
	Referrers []Referrer
	// Fetch reads the referrers' layers: a registry repository, an archive, anything that fetches
	// blobs by descriptor.
	Fetch content.Fetcher
	// Manifest is the root manifest as read: a Helm chart's provenance is found through it, for the
	// keyring signers of a rule and for the keyring pinned at the site (Trust.Keyring). Without it, a
	// keyring signer is not satisfied.
	Manifest []byte
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
	Tlog bool `json:"tlog"`
	// Key is, for a valid check of a Helm chart's provenance (Format FormatHelmProvenance), the key
	// of the signer's keyring that signed it: "IDENTITY (FINGERPRINT)".
	Key    string `json:"key,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// isSignature reports whether c is an image signature rather than an attestation.
func (c Check) isSignature() bool {
	return c.Format == "legacy-sig" || c.Format == FormatHelmProvenance || c.PredicateType == archive.CosignSignPredicateType
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
	// Provenance is, for a Helm chart artifact verified with a keyring pinned at the site, the check
	// of its provenance file (Trust.Keyring); or else, for a chart whose provenance satisfied a
	// keyring signer of its rule, who signed it; nil otherwise.
	Provenance *Provenance `json:"provenance,omitempty"`
	// Failures says why the image did not pass; empty when it passed.
	Failures []string `json:"failures,omitempty"`
}

// Verify checks img against the trust material and the policy rule for its repository.
func (t *Trust) Verify(ctx context.Context, img Image) Result {
	res := Result{Source: img.Source, Digest: img.Digest}
	rule, err := t.rule(img.Repository, img.AnyHost)
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
		covers, onImage := covers(img, r.Subject)
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
	var chart *imageChart // read once, for the rule's keyring signers and the site's keyring both
	if len(rule.keyringSigners()) > 0 || t.Keyring != nil {
		chart = readImageChart(ctx, img)
	}
	res.judge(img, rule, chart)
	t.siteKeyring(&res, chart)
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
func (t *Trust) rule(repository string, anyHost bool) (*Rule, error) {
	if t.Policy != nil {
		r := t.Policy.RuleFor(repository)
		if anyHost {
			r = t.Policy.RuleForAnyHost(repository)
		}
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

// covers names the manifest of img that subject is: "index" (or "image" for a single manifest) or a
// platform, and false when subject is neither.
func covers(img Image, subject digest.Digest) (string, bool) {
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
