package mirror

import (
	"context"
	"log/slog"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/registry"
)

// CatalogImage is the catalog entry naming img as it would be saved: its source, repository, tag,
// pinned digest and target, nothing resolved.
func CatalogImage(img config.Image) archive.Image {
	return archive.Image{Source: img.String(), Repository: img.RepositoryRef(), Tag: img.Tag, Digest: img.Digest, Target: img.Target}
}

// PlansOnRegistry finds each of images in the registry it was loaded into (mapped under to as load maps
// it; by tag and, when the entry pins it, by digest) and discovers its referrers there, all of them.
// The plans keep the images' source names. A failed check wraps ErrCheckFailed.
func PlansOnRegistry(ctx context.Context, regs *registry.Registries, images []archive.Image, to string, keepHost bool, log *slog.Logger) ([]*ImagePlan, error) {
	planner := &Planner{Registries: regs, Referrers: config.Referrers{Enabled: true, All: true}, Log: log}
	var plans []*ImagePlan
	for _, img := range images {
		src, err := config.ParseReference(img.Source)
		if err != nil {
			return nil, err
		}
		src.Target = img.Target
		name, err := TargetRepository(to, keepHost, src)
		if err != nil {
			return nil, err
		}
		host, path, _ := strings.Cut(name, "/")
		at := config.Image{Registry: host, Repository: path, Tag: src.Tag, Digest: img.Digest}
		if at.Digest == "" {
			at.Digest = src.Digest
		}
		p, err := planner.Plan(ctx, at)
		if err != nil {
			return nil, err
		}
		p.Image, p.Source = src, img.Source
		plans = append(plans, p)
	}
	return plans, nil
}

// ArchivedContent lists the manifests and blobs of plans that the archive r holds (a delta lacks its
// base's), each with the image it belongs to, for archive.HashBlobs.
func ArchivedContent(ctx context.Context, r *archive.Reader, plans []*ImagePlan) []archive.OwnedBlob {
	var ds []archive.OwnedBlob
	for _, p := range plans {
		for _, n := range p.Nodes() {
			for _, d := range append([]ocispec.Descriptor{n.Desc}, n.Blobs...) {
				if ok, err := r.Exists(ctx, d); err == nil && ok {
					ds = append(ds, archive.OwnedBlob{Desc: d, Image: p.Source})
				}
			}
		}
	}
	return ds
}
