package plan

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

// CatalogTag is the tag the catalog d created at t is kept under: its creation time, UTC, and its
// digest, so that no other catalog (an unsigned one claiming the same time) can take its place.
func CatalogTag(t time.Time, d digest.Digest) string {
	return t.UTC().Format("20060102T150405Z") + "-" + d.Encoded()
}

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
	tag := CatalogTag(cat.Created, catDesc.Digest)
	ip := &ImagePlan{
		Image:   config.Image{Registry: "airlock", Repository: CatalogRepository, Tag: tag, Target: CatalogRepository},
		Source:  "airlock catalog " + tag,
		Root:    root,
		Content: r,
	}
	if ip.Referrers, err = w.referrers(ctx, catalogSignatures{catalog: catDesc.Digest, sigs: sigs}, []*Node{root}); err != nil {
		return nil, fmt.Errorf("archive %s, catalog %s: %w", r.Path, catDesc.Digest, err)
	}
	return ip, nil
}

// catalogSignatures is the referrer source of an archive's catalog: its signatures (Sigstore
// bundles), found through index.json, attached through the referrers API.
type catalogSignatures struct {
	catalog digest.Digest
	sigs    []archive.CatalogSignature
}

func (s catalogSignatures) Referrers(_ context.Context, subject ocispec.Descriptor) ([]referrers.Found, error) {
	if subject.Digest != s.catalog {
		return nil, nil
	}
	var out []referrers.Found
	for _, sig := range s.sigs {
		d := ocispec.Descriptor{MediaType: sig.Manifest.MediaType, Digest: sig.Manifest.Digest, Size: sig.Manifest.Size, ArtifactType: archive.BundleMediaType}
		out = append(out, referrers.Found{Descriptor: d, Subject: s.catalog, Method: referrers.API})
	}
	return out, nil
}

func (catalogSignatures) Describe(referrers.Found, []byte) (Label, bool, error) {
	return Label{ArtifactType: archive.BundleMediaType, Kind: "signature"}, true, nil
}
