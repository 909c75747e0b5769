package referrers

import (
	"encoding/json"
	"strings"

	"airlock.dev/airlock/vocab"
)

// Kinds of referrer, as counted in summaries and shown by inspect.
const (
	KindSignature   = "signature"
	KindAttestation = "attestation"
	KindSBOM        = "sbom"
	KindOther       = "other"
)

// Kind tells whether a referrer manifest is a signature, an attestation, an SBOM or something else,
// from its artifact type and, for Sigstore bundles, the predicate type annotation cosign sets
// (vocab.AnnotationBundlePredicateType; cosign's own signatures use vocab.CosignSignPredicateType).
func Kind(manifest []byte) string {
	at := strings.ToLower(ArtifactType(manifest))
	switch {
	case strings.HasPrefix(at, vocab.BundleMediaTypePrefix):
		var m struct {
			Annotations map[string]string `json:"annotations"`
		}
		_ = json.Unmarshal(manifest, &m)
		if pt := m.Annotations[vocab.AnnotationBundlePredicateType]; pt != "" && pt != vocab.CosignSignPredicateType {
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
