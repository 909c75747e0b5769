package plan

import (
	"context"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
)

// PlansFromArchive rebuilds the plan of every image in an archive from its catalog and the manifests
// it holds, each read back and checked against its digest. A manifest the catalog promises but the
// archive lacks is an error that names it.
func PlansFromArchive(ctx context.Context, r *archive.Reader, cat *archive.Catalog) ([]*ImagePlan, error) {
	return PlansFromDelta(ctx, r, cat, nil)
}

// PlansFromDelta is PlansFromArchive for a delta archive (saved with --since): what the archive lacks
// is read from base(image), normally the target repository that holds the base archive's content.
func PlansFromDelta(ctx context.Context, r *archive.Reader, cat *archive.Catalog, base func(img config.Image) (content.ReadOnlyStorage, error)) ([]*ImagePlan, error) {
	refs := newCatalogReferrers(cat)
	present := func(d ocispec.Descriptor) bool {
		ok, err := r.Exists(ctx, d)
		return err == nil && ok
	}
	var plans []*ImagePlan
	for _, img := range cat.Images {
		ci, err := config.ParseReference(img.Source)
		if err != nil {
			return nil, fmt.Errorf("catalog image %q: %w", img.Source, err)
		}
		ci.Target = img.Target
		var src Source = r
		pres := present
		if base != nil {
			b, err := base(ci)
			if err != nil {
				return nil, err
			}
			ls := &layered{top: r, base: b}
			src = ls
			pres = func(d ocispec.Descriptor) bool {
				if present(d) {
					return true
				}
				found, err := b.Exists(ctx, d) // in the base, on the target
				return err == nil && found
			}
		}
		w := &walker{repo: src, repoName: img.Repository, seen: map[digest.Digest]*Node{}, present: pres}
		ip := &ImagePlan{Image: ci, Source: img.Source, Content: src}
		root := ocispec.Descriptor{MediaType: img.MediaType, Digest: img.Digest, Size: img.Size}
		if ip.Root, err = w.manifest(ctx, root, nil, 0, &ip.Sparse); err != nil {
			return nil, fmt.Errorf("archive %s, image %s: %w", r.Path, img.Source, err)
		}
		if ip.Sparse && !img.Sparse {
			return nil, fmt.Errorf("archive %s, image %s: platform manifests of index %s are missing, but the catalog says all were saved: the archive is damaged; save it again", r.Path, img.Source, img.Digest)
		}
		// Referrers, recursively, in the order the catalog lists them under each subject.
		if ip.Referrers, err = w.referrers(ctx, refs, ip.Nodes()); err != nil {
			return nil, fmt.Errorf("archive %s, image %s: %w", r.Path, img.Source, err)
		}
		plans = append(plans, ip)
	}
	return plans, nil
}

// layered reads from a delta archive, and what it lacks from the base (the target registry).
type layered struct {
	top  *archive.Reader
	base content.Fetcher
}

func (l *layered) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	if ok, err := l.top.Exists(ctx, d); err == nil && ok {
		return l.top.Fetch(ctx, d)
	}
	rc, err := l.base.Fetch(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("%s is neither in the delta archive nor on the target: load the base archive first (%w)", d.Digest, err)
	}
	return rc, nil
}

func (l *layered) Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error) {
	return l.top.Resolve(ctx, ref)
}
