package mirror

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/registry"
)

// plansOnRegistry finds each of images in the registry it was loaded into (mapped under to as load maps
// it; by tag and, when the entry pins it, by digest) and discovers its referrers there, all of them.
// The plans keep the images' source names. A failed check wraps ErrCheckFailed.
func plansOnRegistry(ctx context.Context, regs *registry.Registries, images []archive.Image, to string, keepHost bool, log *slog.Logger) ([]*plan.ImagePlan, error) {
	planner := &plan.Planner{Registries: regs, Referrers: config.Referrers{Enabled: true, All: true}, Log: log}
	var plans []*plan.ImagePlan
	for _, img := range images {
		src, err := config.ParseReference(img.Source)
		if err != nil {
			return nil, err
		}
		src.Target = img.Target
		name, err := engine.TargetRepository(to, keepHost, src)
		if err != nil {
			return nil, err
		}
		host, path, _ := strings.Cut(name, "/")
		at := config.Image{Registry: host, Repository: path, Tag: src.Tag, Digest: img.Digest}
		if at.Digest == "" {
			at.Digest = src.Digest
		}
		platform, err := flattenedAt(ctx, regs, name, img)
		if err != nil {
			return nil, err
		}
		if platform != nil {
			at.Digest = platform.Digest // loaded with --sparse-index=flatten: the tag names the platform
		}
		p, err := planner.Plan(ctx, at)
		if err != nil {
			return nil, err
		}
		p.Image, p.Source = src, img.Source
		if platform != nil {
			p.Root.Platform = platform.Platform
		}
		plans = append(plans, p)
	}
	return plans, nil
}

// flattenedAt returns the one platform manifest of img when img is a sparse index that was loaded
// into the repository name flattened (--sparse-index=flatten): its tag names that manifest or,
// untagged, the repository lacks the index and holds the manifest. Otherwise nil.
func flattenedAt(ctx context.Context, regs *registry.Registries, name string, img archive.Image) (*archive.Platform, error) {
	if !img.Sparse || len(img.Platforms) != 1 {
		return nil, nil
	}
	repo, err := regs.Target(name)
	if err != nil {
		return nil, err
	}
	pl := img.Platforms[0]
	if img.Tag != "" {
		d, err := repo.Resolve(ctx, img.Tag)
		if err != nil || d.Digest != pl.Digest {
			return nil, nil // not flattened, or missing: planning says which
		}
		return &pl, nil
	}
	if _, err := repo.Resolve(ctx, img.Digest.String()); !errors.Is(err, errdef.ErrNotFound) {
		return nil, nil
	}
	if _, err := repo.Resolve(ctx, pl.Digest.String()); err != nil {
		return nil, nil
	}
	return &pl, nil
}

// archivedContent lists the manifests and blobs of plans that the archive r holds (a delta lacks its
// base's), each with the image it belongs to, for archive.HashBlobs.
func archivedContent(ctx context.Context, r *archive.Reader, plans []*plan.ImagePlan) []archive.OwnedBlob {
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
