package archive

import (
	"time"

	"airlock.dev/airlock/vocab"
	"github.com/opencontainers/go-digest"
)

// Media types and names of the catalog artifact, and the annotations of index.json entries: aliases of
// package vocab's, where the names shared between packages live.
const (
	CatalogArtifactType  = vocab.CatalogArtifactType
	CatalogMediaType     = vocab.CatalogMediaType
	CatalogRefName       = vocab.CatalogRefName
	KeyMediaType         = vocab.KeyMediaType
	TrustedRootMediaType = vocab.TrustedRootMediaType
	PolicyMediaType      = vocab.PolicyMediaType
	ImageSetMediaType    = vocab.ImageSetMediaType
	AnnotationSubject    = vocab.AnnotationSubject
	AnnotationFoundBy    = vocab.AnnotationFoundBy
	AnnotationRepository = vocab.AnnotationRepository
)

// Catalog describes an archive: what was saved, from where, how each referrer was found, and the trust
// material carried with it. It is stored as a JSON layer of the catalog artifact.
type Catalog struct {
	Tool      Tool       `json:"tool"`
	Created   time.Time  `json:"created"`
	Images    []Image    `json:"images"`
	Referrers []Referrer `json:"referrers"`
	Trust     Trust      `json:"trust"`
	Totals    Totals     `json:"totals"`
	// Base is the catalog digest of the archive this one is a delta of; empty for a full archive.
	Base digest.Digest `json:"base,omitempty"`
	// Contents lists, sorted, every manifest and blob digest of the images: those in the archive and,
	// for a delta, those its base holds. A later `save --since` needs only this catalog.
	Contents []digest.Digest `json:"contents,omitempty"`
	// LeftOut lists what the image set named but the archive does not hold, and why: images and
	// repositories that did not resolve when the archive was saved with --keep-going.
	LeftOut []LeftOut `json:"leftOut,omitempty"`
	// Blocked lists the images the image set's blocked list kept out, each with its rule.
	Blocked []Blocked `json:"blocked,omitempty"`
	// Charts lists the Helm charts of the image set's charts entries: each is also one of Images (its
	// OCI chart artifact), and names the images it brought, each with why.
	Charts []Chart `json:"charts,omitempty"`
}

// Chart is one Helm chart version that a charts entry of the image set picked.
type Chart struct {
	// Entry names the charts entry: "REPO NAME" for an HTTP chart repository, "oci://REF" for an
	// OCI chart.
	Entry   string `json:"entry"`
	Name    string `json:"name"`
	Version string `json:"version"`
	// Source is the chart artifact's reference among Images.
	Source string        `json:"source"`
	Digest digest.Digest `json:"digest"`
	// ChartDigest is the sha256 of the chart's .tgz: for an HTTP chart repository, the digest its
	// index.yaml gives, checked when the chart was fetched.
	ChartDigest digest.Digest `json:"chartDigest"`
	// Provenance is true when the chart's .prov file travels with it (a layer of the artifact).
	Provenance  bool   `json:"provenance,omitempty"`
	KubeVersion string `json:"kubeVersion,omitempty"`
	// Images lists the images the chart runs, found by rendering it and in its Chart.yaml
	// annotations, each with every reason it was found.
	Images []ChartImage `json:"images,omitempty"`
	// Skipped lists the subcharts left out, each with the condition or tag that disabled it.
	Skipped []string `json:"skipped,omitempty"`
}

// ChartImage is one image a chart runs, as the image set saved it, with why.
type ChartImage struct {
	Source  string   `json:"source"`
	Reasons []string `json:"reasons"`
	// Blocked is the blocked rule that kept the image out of the archive, if one did.
	Blocked string `json:"blocked,omitempty"`
}

// LeftOut is an image or a repository of the image set that is not in the archive.
type LeftOut struct {
	// Source is the image reference, or the repository name for a repositories entry whose tags
	// could not be listed.
	Source string `json:"source"`
	// Line is the line of its entry in the ImageSet file; 0 if unknown.
	Line   int    `json:"line,omitempty"`
	Reason string `json:"reason"`
}

// Blocked is an image that a rule of the image set's blocked list kept out of the archive.
type Blocked struct {
	Source string `json:"source"`
	// Rule is the blocked entry that matched, as written in the ImageSet file.
	Rule string `json:"rule"`
	// Charts names the charts that run the image, when charts brought it ("app 1.4.2").
	Charts []string `json:"charts,omitempty"`
}

// CatalogFile is the catalog with its digest (the catalog manifest's), as `airlock inspect --format
// json` prints it; `save --since` reads it in place of the previous archive.
type CatalogFile struct {
	Digest digest.Digest `json:"digest"`
	Catalog
}

// Tool names the program that wrote the archive.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Image is one entry of the resolved image set.
type Image struct {
	// Source is the reference as resolved, e.g. registry.example.com/team/app:1.4.2.
	Source     string        `json:"source"`
	Repository string        `json:"repository"`
	Tag        string        `json:"tag,omitempty"`
	Digest     digest.Digest `json:"digest"`
	MediaType  string        `json:"mediaType"`
	Size       int64         `json:"size"`
	// Platforms lists the platform manifests saved. Empty for a single-platform image.
	Platforms []Platform `json:"platforms,omitempty"`
	// Sparse is true when a platform filter left some of the index's manifests out of the archive.
	Sparse bool `json:"sparse,omitempty"`
	// Target is the per-image target repository path from the ImageSet, if any.
	Target string `json:"target,omitempty"`
}

// Platform is one platform manifest of an index.
type Platform struct {
	Platform  string        `json:"platform"`
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
}

// Referrer is a manifest attached to another one: a signature, attestation, SBOM...
type Referrer struct {
	Digest       digest.Digest `json:"digest"`
	MediaType    string        `json:"mediaType"`
	Size         int64         `json:"size"`
	ArtifactType string        `json:"artifactType,omitempty"`
	// Kind is "signature", "attestation", "sbom" or "other".
	Kind       string        `json:"kind"`
	Subject    digest.Digest `json:"subject"`
	Repository string        `json:"repository"`
	// FoundBy is how it was discovered: "api", "tag-schema" or "cosign-tag".
	FoundBy string `json:"foundBy"`
	// Tag is the cosign legacy tag (sha256-<hex>.sig, .att, .sbom) for FoundBy "cosign-tag".
	Tag string `json:"tag,omitempty"`
}

// Trust lists the trust material carried in the archive, each a blob of the catalog artifact.
type Trust struct {
	Keys        []File `json:"keys,omitempty"`
	TrustedRoot *File  `json:"trustedRoot,omitempty"`
	Policy      *File  `json:"policy,omitempty"`
	// ImageSet is the resolved image set, every image pinned by digest (imageset.pinned.yaml,
	// written from the ImageSet file the archive was saved from): a save from it moves exactly the
	// images of this archive.
	ImageSet *File `json:"imageSet,omitempty"`
}

// File is a file carried as a blob.
type File struct {
	Name      string        `json:"name"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	MediaType string        `json:"mediaType"`
}

// Totals counts what the archive holds.
type Totals struct {
	Images    int   `json:"images"`
	Manifests int   `json:"manifests"`
	Referrers int   `json:"referrers"`
	Blobs     int   `json:"blobs"`
	Bytes     int64 `json:"bytes"`
}
