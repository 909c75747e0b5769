package mirror

import (
	"context"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/referrers"
)

// CatalogRepository is where load keeps each archive's catalog on the site registry, under the
// prefix: the site's record of what came in, and signed by whom.
const CatalogRepository = "airlock/catalog"

// CatalogTag is the tag a catalog created at t is kept under: its creation time, UTC.
func CatalogTag(t time.Time) string { return t.UTC().Format("20060102T150405Z") }

// CatalogPlan plans keeping the archive's catalog (the manifest, its catalog.json and trust files)
// on the site registry, with its signatures attached as referrers, tagged by creation time.
func CatalogPlan(ctx context.Context, r *archive.Reader, cat *archive.Catalog, catDesc ocispec.Descriptor, sigs []archive.CatalogSignature) (*ImagePlan, error) {
	w := &walker{repo: r, repoName: CatalogRepository, seen: map[digest.Digest]*Node{}}
	var sparse bool
	root, err := w.manifest(ctx, ocispec.Descriptor{MediaType: catDesc.MediaType, Digest: catDesc.Digest, Size: catDesc.Size}, nil, 0, &sparse)
	if err != nil {
		return nil, fmt.Errorf("archive %s, catalog %s: %w", r.Path, catDesc.Digest, err)
	}
	root.Desc.ArtifactType = archive.CatalogArtifactType
	tag := CatalogTag(cat.Created)
	plan := &ImagePlan{
		Image:  config.Image{Registry: "airlock", Repository: CatalogRepository, Tag: tag, Target: CatalogRepository},
		Source: "airlock catalog " + tag,
		Root:   root,
		repo:   r,
	}
	for _, s := range sigs {
		n, err := w.manifest(ctx, s.Manifest, nil, 0, &sparse)
		if err != nil {
			return nil, fmt.Errorf("archive %s, catalog signature %s: %w", r.Path, s.Manifest.Digest, err)
		}
		n.ArtifactType, n.Kind = archive.BundleMediaType, "signature"
		n.Desc.ArtifactType = archive.BundleMediaType
		n.Referrer = &referrers.Found{Descriptor: n.Desc, Subject: catDesc.Digest, Method: referrers.API}
		plan.Referrers = append(plan.Referrers, n)
	}
	return plan, nil
}
