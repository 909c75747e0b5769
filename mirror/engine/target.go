package engine

import (
	"context"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/mirror/plan"
)

// Target is where Copy puts content: a registry under a prefix, an OCI layout directory, tar volumes.
// Each image goes to one Store of the target (a repository of a registry; the whole archive for a
// layout or a tar). Adding a target kind is one new file that implements these two interfaces and
// whichever optional abilities below fit.
type Target interface {
	// Store returns the store that receives plan's image. Copy asks once per plan; stores with the
	// same Name are the same store.
	Store(ctx context.Context, ip *plan.ImagePlan) (Store, error)
}

// Store receives the content of one image: oras-go's content.Storage shape for pushing (Exists and
// Push, both for blobs and manifests). Push checks the content against desc's digest as it streams in
// and fails (stores nothing) when it does not match.
type Store interface {
	// Name names the store in reports and messages: a repository ("site:5000/mirror/team/app") or a path.
	Name() string
	// Exists reports whether the store holds desc, complete and right.
	Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error)
	// Push stores the content read from r as desc.
	Push(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error
}

// The four optional abilities of a Store, found by type assertion: how it takes blobs (BlobPusher,
// Mounter) and how it names what it holds (Indexer for an archive, Tagger for a registry). A store
// that names nothing keeps the content only.

// Mounter mounts a blob another store of the same target already holds (a registry's cross-repository
// mount) instead of uploading it. It reports false, and no error, when the target declines: Copy then
// uploads the blob.
type Mounter interface {
	Mount(ctx context.Context, desc ocispec.Descriptor, from Store) (bool, error)
}

// BlobPusher stores a blob reading it itself, from the offset and as often as it needs: open is
// called with the offset to read from. A layout keeps partly received blobs and asks only for the
// rest; a registry that answers a one-request upload with an upload session reads the blob again.
type BlobPusher interface {
	// ChecksOnPush reports whether the push of desc itself finds out whether the store holds it (a
	// registry: the POST that starts the upload mounts the blob from the repository itself, 201
	// where it is there). Copy then leaves out desc's exists-check and pushes it with check set.
	ChecksOnPush(desc ocispec.Descriptor) bool
	// PushBlob stores the blob; held reports a blob the store turned out to hold already (check).
	PushBlob(ctx context.Context, desc ocispec.Descriptor, open func(offset int64) (io.ReadCloser, error), check bool) (held bool, err error)
}

// Tagger names images by tags and makes their referrers findable, as a registry does, and reads both
// back for Copy's last step.
type Tagger interface {
	// AttachReferrers makes the referrers of an image findable beyond pushing them: on a registry
	// with the referrers API nothing more is needed; on one without it, the sha256-<hex> tag-schema
	// index lists them. Copy calls it after the referrers and their subjects are stored, before any tag.
	AttachReferrers(ctx context.Context, ip *plan.ImagePlan) (Attached, error)
	// PushTagged pushes manifest (desc's bytes) and points reference (a tag) at it, in one step
	// (oras-go's registry.ReferencePusher). Copy tags last.
	PushTagged(ctx context.Context, desc ocispec.Descriptor, manifest []byte, reference string) error
	// FetchTagged reads the manifest reference points at with the digest the store names for it, in
	// one request (a registry's GET by tag): where a tag points and what the manifest holds, at once.
	FetchTagged(ctx context.Context, reference string) (ocispec.Descriptor, []byte, error)
	// Fetch reads back what the store holds by its digest: a manifest, or a blob (the site's own
	// attestations, mirror/sitesign.go).
	Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error)
	// Referrers lists the referrers of subject the store holds, of artifactType ("" for any), a
	// page at a time: by the referrers API, or the tag-schema index where there is none (the site's
	// own bundles, mirror/sitebundle.go).
	Referrers(ctx context.Context, subject ocispec.Descriptor, artifactType string, fn func([]ocispec.Descriptor) error) error
}

// Attached says how a store made an image's referrers findable.
type Attached struct {
	// By is "api" or "tag-schema" (referrers.Method).
	By string
	// Indexes counts tag-schema indexes written.
	Indexes int
	// Changed is true when anything was written.
	Changed bool
}

// Indexer is a store that names what it holds in an index of its own (an OCI layout's index.json:
// each image under its source reference, each referrer with its subject and how it was found) rather
// than by tags and referrer indexes. Copy calls Index once per image, where it would attach referrers
// and tag.
type Indexer interface {
	Index(ctx context.Context, ip *plan.ImagePlan) error
}
