package verify

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// Annotations of a legacy keyless .sig layer (cosign v2's default), besides SignatureAnnotation and
// CertificateAnnotation.
const (
	// ChainAnnotation holds the PEM intermediates (and root) of the certificate. It is not trusted:
	// the chain comes from the trusted root.
	ChainAnnotation = "dev.sigstore.cosign/chain"
	// RekorBundleAnnotation holds cosign's Rekor bundle: the entry and its signed entry timestamp.
	RekorBundleAnnotation = "dev.sigstore.cosign/bundle"
)

// bundleV01MediaType is the Sigstore bundle version that allows a tlog entry with only an inclusion
// promise, which is all cosign v2 kept.
const bundleV01MediaType = "application/vnd.dev.sigstore.bundle+json;version=0.1"

// rekorBundle is cosign's pkg/cosign/bundle.RekorBundle as it is stored in RekorBundleAnnotation.
type rekorBundle struct {
	SignedEntryTimestamp []byte
	Payload              struct {
		Body           string `json:"body"` // base64 of the canonicalized entry
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"` // hex
	}
}

// legacyKeyless is a legacy keyless signature converted into a Sigstore bundle.
type legacyKeyless struct {
	bundle         *bundle.Bundle
	leaf           *x509.Certificate
	logID          string
	integratedTime time.Time
}

// checkLegacyKeylessSig verifies a cosign v2 keyless simple-signing signature (Fulcio certificate and
// Rekor bundle in the layer annotations) with each keyless signer of the rule. The signature is
// converted into a v0.1 Sigstore bundle (message signature over the payload, the leaf certificate,
// the hashedrekord entry with its inclusion promise) and verified with sigstore-go against the
// trusted root: SCT, Fulcio chain at the integrated time, SET, entry matching the signature, and
// the signer's identity.
func (t *Trust) checkLegacyKeylessSig(c *Check, payload, sig []byte, annotations map[string]string, rule *Rule) {
	if !slices.ContainsFunc(rule.Signers, Signer.Keyless) {
		c.Status, c.Reason = StatusUnknownSigner, "keyless signature (Fulcio certificate), and the rule has no keyless signer"
		return
	}
	if t.TrustedRoot == nil {
		c.Status, c.Reason = StatusRejected, "a keyless signature needs a Sigstore trusted root (trust.trustedRoot), and there is none"
		return
	}
	lk, err := legacyKeylessBundle(payload, sig, annotations)
	if err != nil {
		c.invalid(err.Error())
		return
	}
	// The identity first: a certificate of an identity the rule does not allow is another signer's,
	// whatever else is wrong with it; one the rule allows must verify in full.
	sum, err := certificate.SummarizeCertificate(lk.leaf)
	if err != nil {
		c.invalid("unreadable certificate: " + err.Error())
		return
	}
	var a attempts
	for _, s := range rule.Signers {
		if !s.Keyless() {
			continue
		}
		_, err := t.verifyKeyless(lk.bundle, lk.leaf, sum, s, sgverify.WithArtifact(bytes.NewReader(payload)))
		var se *signerError
		switch {
		case errors.As(err, &se):
			a.add(s.Name, err)
			continue
		case err != nil:
			// Everything but the identity is the same for every signer.
			c.invalid(t.legacyKeylessReason(err, lk))
			return
		}
		if signsSubject(c, payload) {
			c.valid(s.Name, true)
		}
		return
	}
	a.fail(c, "the rule has no keyless signer")
}

// legacyKeylessBundle converts a legacy keyless signature into a Sigstore bundle.
func legacyKeylessBundle(payload, sig []byte, annotations map[string]string) (*legacyKeyless, error) {
	certs, err := cryptoutils.LoadCertificatesFromPEM(strings.NewReader(annotations[CertificateAnnotation]))
	if err != nil || len(certs) == 0 {
		return nil, errors.New("the certificate annotation does not hold a PEM certificate")
	}
	leaf := certs[0]
	raw := annotations[RekorBundleAnnotation]
	if raw == "" {
		return nil, errors.New("keyless signature without a Rekor bundle annotation (signed without the transparency log): it cannot be verified offline")
	}
	var rb rekorBundle
	if err := json.Unmarshal([]byte(raw), &rb); err != nil {
		return nil, fmt.Errorf("unreadable Rekor bundle annotation: %v", err)
	}
	body, err := base64.StdEncoding.DecodeString(rb.Payload.Body)
	if err != nil || len(body) == 0 {
		return nil, errors.New("the Rekor bundle annotation: the entry body is not base64")
	}
	var kv struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(body, &kv); err != nil || kv.Kind == "" || kv.APIVersion == "" {
		return nil, errors.New("the Rekor bundle annotation: the entry body is not a Rekor entry")
	}
	logID, err := hex.DecodeString(rb.Payload.LogID)
	if err != nil || len(logID) == 0 {
		return nil, errors.New("the Rekor bundle annotation: the log ID is not hex")
	}
	if len(rb.SignedEntryTimestamp) == 0 {
		return nil, errors.New("the Rekor bundle annotation: no signed entry timestamp")
	}
	sum := sha256.Sum256(payload)
	pb := &protobundle.Bundle{
		MediaType: bundleV01MediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			// The chain annotation is not used: intermediates come from the trusted root.
			Content: &protobundle.VerificationMaterial_X509CertificateChain{
				X509CertificateChain: &protocommon.X509CertificateChain{
					Certificates: []*protocommon.X509Certificate{{RawBytes: leaf.Raw}},
				},
			},
			TlogEntries: []*protorekor.TransparencyLogEntry{{
				LogIndex:          rb.Payload.LogIndex,
				LogId:             &protocommon.LogId{KeyId: logID},
				KindVersion:       &protorekor.KindVersion{Kind: kv.Kind, Version: kv.APIVersion},
				IntegratedTime:    rb.Payload.IntegratedTime,
				InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: rb.SignedEntryTimestamp},
				CanonicalizedBody: body,
			}},
		},
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
			Signature:     sig,
		}},
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return nil, fmt.Errorf("the Rekor bundle annotation does not make a valid Sigstore bundle: %v", err)
	}
	return &legacyKeyless{bundle: b, leaf: leaf, logID: rb.Payload.LogID, integratedTime: time.Unix(rb.Payload.IntegratedTime, 0).UTC()}, nil
}

// legacyKeylessReason turns a sigstore-go verification error, other than an identity mismatch, into
// the reason a legacy keyless signature is not valid.
func (t *Trust) legacyKeylessReason(err error, lk *legacyKeyless) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "integrated time outside certificate validity"):
		return fmt.Sprintf("certificate not valid at the transparency log's integrated time %s (valid %s to %s)",
			lk.integratedTime.Format(time.RFC3339), lk.leaf.NotBefore.UTC().Format(time.RFC3339), lk.leaf.NotAfter.UTC().Format(time.RFC3339))
	case strings.Contains(msg, "not enough verified log entries"):
		if _, known := t.TrustedRoot.RekorLogs()[lk.logID]; !known {
			return fmt.Sprintf("unknown transparency log %s: the trusted root has no such Rekor log", lk.logID)
		}
		return "the Rekor signed entry timestamp does not verify: the entry was altered or is outside the log key's validity"
	case strings.Contains(msg, "hashedrekord entry digest") && strings.Contains(msg, "does not match"):
		return "bad signature: the payload was altered, its sha256 is not the digest the Rekor entry logged"
	case strings.Contains(msg, "transparency log signature does not match"):
		return "bad signature: the signature annotation is not the signature the Rekor entry logged (altered)"
	case strings.Contains(msg, "transparency log certificate does not match"):
		return "the certificate annotation is not the certificate the Rekor entry logged (altered)"
	case strings.Contains(msg, "hashedrekord"):
		return "the Rekor entry is not a hashedrekord entry of this signature (" + msg + ")"
	case strings.Contains(msg, "failed to verify leaf certificate"):
		return fmt.Sprintf("the certificate is not issued by a Fulcio CA of the trusted root valid at %s", lk.integratedTime.Format(time.RFC3339))
	case strings.Contains(msg, "failed to verify signed certificate timestamp"):
		return "the certificate has no valid SCT from a CT log of the trusted root (" + msg + ")"
	case strings.Contains(msg, "failed to verify signature"):
		return "bad signature: it does not verify over the payload with the certificate's key (the payload or signature was altered)"
	}
	return "keyless verification failed: " + msg
}

// certIdentity names a Fulcio certificate's identity: its SAN and OIDC issuer.
func certIdentity(leaf *x509.Certificate) string {
	s, err := certificate.SummarizeCertificate(leaf)
	if err != nil {
		return "an unreadable identity (" + err.Error() + ")"
	}
	return fmt.Sprintf("%s (issuer %s)", s.SubjectAlternativeName, s.Issuer)
}
