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

// Store receives the content of one image: oras-go's content.Storage shape for pushing (Exists,
// Push, both for blobs and manifests) plus tagging. Push checks the content against desc's digest as
// it streams in and fails (stores nothing) when it does not match.
type Store interface {
	// Name names the store in reports and messages: a repository ("site:5000/mirror/team/app") or a path.
	Name() string
	// Exists reports whether the store holds desc, complete and right.
	Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error)
	// Push stores the content read from r as desc.
	Push(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error
	// Tag points reference (a tag) at desc, which the store holds. Copy tags last.
	Tag(ctx context.Context, desc ocispec.Descriptor, reference string) error
}

// Optional abilities of a Store, found by type assertion.

// Mounter mounts a blob another store of the same target already holds (a registry's cross-repository
// mount) instead of uploading it. It reports false, and no error, when the target declines: Copy then
// uploads the blob.
type Mounter interface {
	Mount(ctx context.Context, desc ocispec.Descriptor, from Store) (bool, error)
}

// ResumablePusher keeps partly received blobs and asks only for the rest (archive.Layout does): open
// is called with the offset to read from. It returns how many bytes open's reader delivered.
type ResumablePusher interface {
	PushResumable(ctx context.Context, desc ocispec.Descriptor, open func(offset int64) (io.ReadCloser, error)) (int64, error)
}

// ReferencePusher pushes a manifest and tags it in one step (oras-go's registry.ReferencePusher):
// Copy uses it for tags, since it has the bytes at hand, rather than Tag.
type ReferencePusher interface {
	PushReference(ctx context.Context, desc ocispec.Descriptor, r io.Reader, reference string) error
}

// ReferrerAttacher makes the referrers of an image findable beyond pushing them: on a registry with
// the referrers API nothing more is needed; on one without it, the sha256-<hex> tag-schema index
// lists them. Copy calls it after the referrers and their subjects are stored, before any tag.
type ReferrerAttacher interface {
	AttachReferrers(ctx context.Context, ip *plan.ImagePlan) (Attached, error)
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

// ReadBacker reads back what was stored, for Copy's last step: every manifest is compared with the
// source bytes and every tag resolved.
type ReadBacker interface {
	FetchManifest(ctx context.Context, desc ocispec.Descriptor) ([]byte, error)
	Resolve(ctx context.Context, reference string) (ocispec.Descriptor, error)
}
