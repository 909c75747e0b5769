// Package vocab is airlock's vocabulary: the names and limits its packages must agree on when they
// read and write OCI content. It holds media types, annotation keys, predicate types, size limits and
// the one reading of what a manifest names (ParseSuccessors), and nothing else: it imports only the
// OCI types, so that any package (archive, referrers, verify, the planner, the engine) can use the
// same word without importing another package's behaviour, and none of them imports another just to
// spell a string or read a manifest's edges.
//
// A name belongs here when more than one package reads or writes it. Each constant says where its
// value comes from: the OCI and Sigstore specifications, cosign, distribution, or airlock's own
// archive format.
package vocab

// Sigstore and cosign.
const (
	// BundleMediaType is the media type (and the referrer's artifactType) of a Sigstore bundle v0.3,
	// as cosign v3 attaches one.
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// BundleMediaTypePrefix starts the media type of every version of the Sigstore bundle.
	BundleMediaTypePrefix = "application/vnd.dev.sigstore.bundle"
	// AnnotationBundlePredicateType and AnnotationBundleContent are the annotations cosign v3 puts on
	// a bundle referrer: the in-toto predicate type of what the bundle signs, and what it holds.
	AnnotationBundlePredicateType = "dev.sigstore.bundle.predicateType"
	AnnotationBundleContent       = "dev.sigstore.bundle.content"
	// CosignSignPredicateType is the in-toto predicate type of a cosign v3 signature (not an
	// attestation).
	CosignSignPredicateType = "https://sigstore.dev/cosign/sign/v1"
	// ImportPredicateType is the in-toto predicate type of the import attestation the site signs
	// on load --sign-key (airlock's own; docs/site-signatures.md).
	ImportPredicateType = "https://airlock.dev/import/v1"
	// TrustedRootMediaType is the media type of a Sigstore trusted_root.json.
	TrustedRootMediaType = "application/vnd.dev.sigstore.trustedroot.v0.1+json"
)

// The archive's catalog artifact and the trust material it carries.
const (
	// CatalogArtifactType is the artifactType of the catalog manifest.
	CatalogArtifactType = "application/vnd.airlock.catalog.v1"
	// CatalogMediaType is the media type of the catalog JSON layer.
	CatalogMediaType = "application/vnd.airlock.catalog.v1+json"
	// CatalogRefName is the org.opencontainers.image.ref.name of the catalog in index.json.
	CatalogRefName = "airlock.catalog"
	// KeyMediaType is the media type of a cosign public key (PEM) carried in the catalog.
	KeyMediaType = "application/vnd.airlock.cosign-key.v1+pem"
	// PolicyMediaType is the media type of an airlock policy file.
	PolicyMediaType = "application/vnd.airlock.policy.v1+yaml"
	// ImageSetMediaType is the media type of the ImageSet file the archive was saved from.
	ImageSetMediaType = "application/vnd.airlock.imageset.v1+yaml"
)

// Annotations airlock writes on index.json entries of an archive.
const (
	// AnnotationSubject names, on a referrer's entry, the digest of the manifest it refers to.
	AnnotationSubject = "dev.airlock.subject"
	// AnnotationFoundBy names, on a referrer's entry, how it was discovered.
	AnnotationFoundBy = "dev.airlock.found-by"
	// AnnotationRepository names, on an entry, the source repository.
	AnnotationRepository = "dev.airlock.repository"
	// AnnotationCatalogSignature marks a signature of the catalog; its value is the catalog
	// manifest's digest.
	AnnotationCatalogSignature = "dev.airlock.catalog-signature"
)

// MaxManifestSize bounds a manifest or index: the size a catalog may give one, and what is read into
// memory from an archive or a registry (distribution's own limit is 4 MiB).
const MaxManifestSize = 4 << 20
