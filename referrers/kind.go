package referrers

import (
	"encoding/json"
	"strings"
)

// Kinds of referrer, as counted in summaries and shown by inspect.
const (
	KindSignature   = "signature"
	KindAttestation = "attestation"
	KindSBOM        = "sbom"
	KindOther       = "other"
)

// BundlePredicateTypeAnnotation is set by cosign v3 on a Sigstore bundle referrer to the predicate type
// of the DSSE statement inside; cosign's own signatures use CosignSignPredicateType.
const BundlePredicateTypeAnnotation = "dev.sigstore.bundle.predicateType"

// CosignSignPredicateType is the predicate type cosign v3 gives an image signature bundle.
const CosignSignPredicateType = "https://sigstore.dev/cosign/sign/v1"

// Kind tells whether a referrer manifest is a signature, an attestation, an SBOM or something else,
// from its artifact type and, for Sigstore bundles, the predicate type annotation cosign sets.
func Kind(manifest []byte) string {
	at := strings.ToLower(ArtifactType(manifest))
	switch {
	case strings.HasPrefix(at, "application/vnd.dev.sigstore.bundle"):
		var m struct {
			Annotations map[string]string `json:"annotations"`
		}
		_ = json.Unmarshal(manifest, &m)
		if pt := m.Annotations[BundlePredicateTypeAnnotation]; pt != "" && pt != CosignSignPredicateType {
			return KindAttestation
		}
		return KindSignature
	case strings.Contains(at, "simplesigning"), strings.Contains(at, "cosign.artifact.sig"):
		return KindSignature
	case strings.Contains(at, "dsse"), strings.Contains(at, "in-toto"), strings.Contains(at, "cosign.artifact.att"):
		return KindAttestation
	case strings.Contains(at, "spdx"), strings.Contains(at, "cyclonedx"), strings.Contains(at, "sbom"), strings.Contains(at, "syft"):
		return KindSBOM
	}
	return KindOther
}
