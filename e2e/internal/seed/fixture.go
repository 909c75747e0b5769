// Package seed pushes a realistic signed, attested multi-platform image into a registry,
// using the real cosign CLI (key-based, offline) and oras-go, and reports the digest of
// everything it created, so end-to-end tests can check that airlock moved all of it.
package seed

import (
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Kind names one referrer the fixture creates.
type Kind string

// The referrers a Fixture holds, one of each.
const (
	// IndexSignature is a cosign signature on the index, new bundle format (an OCI 1.1 referrer).
	IndexSignature Kind = "bundle-signature-on-index"
	// Amd64Signature is a cosign signature on the linux/amd64 manifest, new bundle format.
	Amd64Signature Kind = "bundle-signature-on-amd64"
	// IndexAttestation is a cosign SLSA provenance attestation on the index, new bundle format.
	IndexAttestation Kind = "attestation-on-index"
	// IndexSBOM is an SPDX JSON SBOM pushed with oras-go, subject the index.
	IndexSBOM Kind = "sbom-on-index"
	// SBOMSignature is a cosign signature on the SBOM manifest: a referrer of a referrer.
	SBOMSignature Kind = "signature-on-sbom"
	// LegacySignature is a cosign signature on the index in the legacy format, found only
	// through the tag sha256-<hex>.sig.
	LegacySignature Kind = "legacy-signature-on-index"
)

// Kinds lists every Kind, in the order the fixture creates them.
var Kinds = []Kind{IndexSignature, Amd64Signature, IndexAttestation, IndexSBOM, SBOMSignature, LegacySignature}

// Discovery says how a referrer can be found on the registry it was seeded into.
type Discovery string

// Ways a referrer is found.
const (
	// ByAPI: the registry's OCI 1.1 referrers API lists it.
	ByAPI Discovery = "api"
	// ByTagSchema: the sha256-<hex> tag-schema index of its subject lists it.
	ByTagSchema Discovery = "tag-schema"
	// ByCosignTag: only cosign's legacy sha256-<hex>.sig tag points at it.
	ByCosignTag Discovery = "cosign-tag"
)

// Artifact types and media types the fixture uses.
const (
	// SBOMArtifactType is the artifactType of the SBOM referrer.
	SBOMArtifactType = "application/spdx+json"
	// BundleArtifactType is the artifactType cosign v3 gives bundle signatures and attestations.
	BundleArtifactType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// KeyPassword is the password of the generated cosign private key.
	KeyPassword = "airlock-e2e"
)

// Platforms are the platforms of the fixture's index, in index order.
var Platforms = []string{"linux/amd64", "linux/arm64"}

// Referrer is one manifest the fixture attached to the image.
type Referrer struct {
	Kind Kind
	// Manifest describes the referrer manifest. Its ArtifactType is what the manifest
	// itself says, or its config media type when it says nothing (as the referrers API
	// reports it): the legacy signature has none.
	Manifest ocispec.Descriptor
	// Subject is the digest of the manifest this one refers to (for LegacySignature, the
	// digest its tag names).
	Subject digest.Digest
	// Found says how the referrer is discovered on this registry.
	Found Discovery
	// Tag is the legacy cosign tag (sha256-<hex>.sig), for LegacySignature only.
	Tag string
	// Blobs are the referrer manifest's config and layers.
	Blobs []ocispec.Descriptor
}

// Fixture is what Build pushed into Host/Repo.
type Fixture struct {
	Host, Repo, Tag string
	// Index is the two-platform image index, tagged Tag; IndexDigest is its digest.
	Index       ocispec.Descriptor
	IndexDigest digest.Digest
	// Platforms maps "linux/amd64" and "linux/arm64" to the platform manifests.
	Platforms map[string]ocispec.Descriptor
	// ImageBlobs are the configs and layers of the platform manifests, each once (the
	// base layer is shared).
	ImageBlobs []ocispec.Descriptor
	// Referrers holds every referrer created, by kind.
	Referrers map[Kind]Referrer
	// ReferrersAPI reports whether the registry serves the OCI 1.1 referrers API.
	ReferrersAPI bool
	// PublicKeyPath and PrivateKeyPath are the cosign key pair (password KeyPassword).
	PublicKeyPath, PrivateKeyPath string
}

// Ref returns the image reference host/repo:tag.
func (f *Fixture) Ref() string { return f.Host + "/" + f.Repo + ":" + f.Tag }

// DigestRef returns host/repo@d.
func (f *Fixture) DigestRef(d digest.Digest) string { return f.Host + "/" + f.Repo + "@" + d.String() }
