// Package referrers finds the manifests attached to another manifest (signatures, SBOMs, attestations)
// in a registry: through the OCI 1.1 referrers API, through the referrers tag schema (a sha256-<hex>
// index) where a registry has no such API, and through cosign's legacy sha256-<hex>.sig, .att and .sbom
// tags always. It also tells a referrer's artifact type from the manifest itself.
package referrers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
)

// Method says how a referrer was found.
type Method string

// The ways a referrer is found.
const (
	// API is the OCI 1.1 referrers API (GET /v2/<name>/referrers/<digest>).
	API Method = "api"
	// TagSchema is the referrers tag schema: an index tagged sha256-<hex> listing the referrers.
	TagSchema Method = "tag-schema"
	// CosignTag is one of cosign's legacy tags: sha256-<hex>.sig, .att or .sbom.
	CosignTag Method = "cosign-tag"
)

// CosignSuffixes are the legacy tag suffixes cosign uses for signatures, attestations and SBOMs.
var CosignSuffixes = []string{".sig", ".att", ".sbom"}

// Found is one referrer of a subject.
type Found struct {
	// Descriptor names the referrer manifest (its artifactType is what the listing said, if anything;
	// use ArtifactType on the manifest bytes for filtering).
	Descriptor ocispec.Descriptor
	Subject    digest.Digest
	Method     Method
	// Tag is the cosign legacy tag, for Method CosignTag.
	Tag string
}

// Repository is what discovery needs of a registry repository; *remote.Repository has it.
type Repository interface {
	Referrers(ctx context.Context, desc ocispec.Descriptor, artifactType string, fn func([]ocispec.Descriptor) error) error
	Tags(ctx context.Context, last string, fn func([]string) error) error
	Resolve(ctx context.Context, reference string) (ocispec.Descriptor, error)
}

var _ Repository = (*remote.Repository)(nil)

// Discoverer finds the referrers of manifests in one repository. It lists the repository's tags once,
// for all subjects: cosign's legacy tags are found in that list, and on registries without the
// referrers API a subject without a sha256-<hex> tag in it has no tag-schema index to read. It is safe
// for concurrent use.
type Discoverer struct {
	repo Repository
	api  bool

	tagsMu sync.Mutex
	tags   map[string]struct{} // nil until listed; a failed listing is tried again next time
}

// NewDiscoverer returns a Discoverer for repo; hasAPI says whether the registry serves the referrers
// API (see registry.ProbeReferrers).
func NewDiscoverer(repo Repository, hasAPI bool) *Discoverer {
	return &Discoverer{repo: repo, api: hasAPI}
}

// HasAPI reports whether the referrers API is used.
func (d *Discoverer) HasAPI() bool { return d.api }

// Find lists the referrers of subject: by the API or the tag schema, then by cosign tags.
func (d *Discoverer) Find(ctx context.Context, subject ocispec.Descriptor) ([]Found, error) {
	method := TagSchema
	if d.api {
		method = API
	}
	var out []Found
	seen := map[digest.Digest]bool{}
	tags, err := d.digestTags(ctx)
	if err != nil {
		return nil, err
	}
	if _, listed := tags[TagFor(subject.Digest)]; !d.api && !listed {
		// No sha256-<hex> tag in the repository's tag list: no tag-schema index to read. This saves a
		// request per manifest on registries without the API (the list is read once anyway, for
		// cosign's tags).
		return d.cosignFound(ctx, subject, tags, out, seen)
	}
	err = d.repo.Referrers(ctx, subject, "", func(refs []ocispec.Descriptor) error {
		for _, r := range refs {
			if err := r.Digest.Validate(); err != nil {
				return fmt.Errorf("referrers of %s list an invalid digest %q", subject.Digest, r.Digest)
			}
			if r.Digest == subject.Digest || seen[r.Digest] {
				continue
			}
			seen[r.Digest] = true
			out = append(out, Found{Descriptor: r, Subject: subject.Digest, Method: method})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list referrers of %s (%s): %w", subject.Digest, method, err)
	}
	return d.cosignFound(ctx, subject, tags, out, seen)
}

// cosignFound adds the referrers found through cosign's legacy tags of subject to out.
func (d *Discoverer) cosignFound(ctx context.Context, subject ocispec.Descriptor, tags map[string]struct{}, out []Found, seen map[digest.Digest]bool) ([]Found, error) {
	for _, suffix := range CosignSuffixes {
		tag := TagFor(subject.Digest) + suffix
		if _, ok := tags[tag]; !ok {
			continue
		}
		desc, err := d.repo.Resolve(ctx, tag)
		if errors.Is(err, errdef.ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("resolve cosign tag %s: %w", tag, err)
		}
		if seen[desc.Digest] {
			continue
		}
		seen[desc.Digest] = true
		out = append(out, Found{Descriptor: desc, Subject: subject.Digest, Method: CosignTag, Tag: tag})
	}
	return out, nil
}

// TagFor returns the tag-schema tag of d: sha256-<hex>.
func TagFor(d digest.Digest) string {
	return d.Algorithm().String() + "-" + d.Encoded()
}

func (d *Discoverer) digestTags(ctx context.Context) (map[string]struct{}, error) {
	d.tagsMu.Lock()
	defer d.tagsMu.Unlock()
	if d.tags != nil {
		return d.tags, nil
	}
	tags := map[string]struct{}{}
	err := d.repo.Tags(ctx, "", func(ts []string) error {
		for _, t := range ts {
			if strings.HasPrefix(t, "sha256-") || strings.HasPrefix(t, "sha512-") {
				tags[t] = struct{}{} // tag-schema indexes and cosign's legacy tags
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tags (for cosign and tag-schema tags): %w", err)
	}
	d.tags = tags
	return tags, nil
}
