package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/registry"
	"airlock.dev/airlock/verify"
)

// VerifyOptions controls VerifyTarget.
type VerifyOptions struct {
	// Anchors is the trust pinned at the site.
	Anchors verify.Anchors
	// Archive names the images of a registry target by an archive's catalog; ImageSet by an ImageSet
	// file (its trust section then gives the trust, unless the site pins its own).
	Archive, ImageSet string
	// KeepHost: the registry keeps source hosts as path elements (as load --keep-host).
	KeepHost bool
	// Registries is asked for a client only when the target is a registry.
	Registries func() (*registry.Registries, error)
	Log        *slog.Logger
	// Warn receives what the operator must read on stderr (an archive vouching for itself).
	Warn func(string)
}

// VerifyTarget verifies the images of target (an archive, or a registry whose images are named by
// o.Archive or o.ImageSet) against the trust pinned at the site, in one order: open, check (for an
// archive, every byte hashed), trust, plan (an unsigned catalog's names decide nothing), verify. It
// returns each image's result and the trust they were verified against.
func VerifyTarget(ctx context.Context, target string, o VerifyOptions) ([]verify.Result, *verify.Trust, error) {
	form, err := plan.FormOf(target)
	if err != nil {
		return nil, nil, err
	}
	archivePath := o.Archive
	if form != plan.FormRegistry {
		archivePath = target
	} else if o.Archive == "" && o.ImageSet == "" {
		return nil, nil, fmt.Errorf("verify %s: name the images with --archive ARCHIVE or -c IMAGESET", target)
	}
	var plans []*plan.ImagePlan
	var trust *verify.Trust
	var images []archive.Image
	unsignedNames := archivePath != "" && len(o.Anchors.ArchiveKeys) == 0
	if archivePath != "" {
		r, err := plan.OpenArchive(ctx, archivePath)
		if err != nil {
			return nil, nil, err
		}
		defer r.Close() // the plans read the archive's blobs until Verify returns
		var cat *archive.Catalog
		if cat, trust, err = checkArchive(ctx, r, archivePath == target, o); err != nil {
			return nil, nil, err
		}
		if archivePath == target {
			if plans, err = plan.PlansFromArchive(ctx, r, cat); err != nil {
				return nil, nil, plan.CheckFailed(err)
			}
		}
		for _, img := range cat.Images {
			if unsignedNames {
				img.Target = "" // no pinned key vouches for it: the site's mapping decides
			}
			images = append(images, img)
		}
	} else {
		set, err := config.Load(o.ImageSet)
		if err != nil {
			return nil, nil, err
		}
		if trust, err = o.Anchors.ForImageSet(set); err != nil {
			return nil, nil, err
		}
		if images, err = imageSetImages(set); err != nil {
			return nil, nil, err
		}
	}
	if plans == nil {
		regs, err := o.Registries()
		if err != nil {
			return nil, nil, err
		}
		if plans, err = plansOnRegistry(ctx, regs, images, target, o.KeepHost, o.Log); err != nil {
			if errors.Is(err, plan.ErrCheckFailed) {
				return nil, nil, plan.CheckFailed(err)
			}
			return nil, nil, err
		}
	}
	if unsignedNames {
		dropUnsignedNames(plans, o.KeepHost)
	}
	return verifyPlans(ctx, trust, plans), trust, nil
}

// checkArchive checks the archive r: every byte hashed when it is the target (whole), its catalog and
// index checked when it only names a registry's images; and resolves the trust its images are
// verified against (archiveTrust).
func checkArchive(ctx context.Context, r *archive.Reader, whole bool, o VerifyOptions) (*archive.Catalog, *verify.Trust, error) {
	cat, catDesc, err := r.Catalog(ctx)
	if err != nil {
		return nil, nil, err
	}
	if whole {
		// Every byte: each manifest and blob the catalog lists, layers included, against its
		// digest; index.json, the manifests and the catalog must agree.
		err = archive.VerifyContents(ctx, r, cat)
	} else {
		err = archive.Check(r, cat)
	}
	if err != nil {
		return nil, nil, err
	}
	trust, err := archiveTrust(ctx, o.Anchors, r, cat, catDesc, o.Warn)
	return cat, trust, err
}

// archiveTrust resolves the trust an archive's images are verified against (verify.Anchors.ForArchive):
// an archive no pinned key signed is a failed check; an archive vouching for itself is warned of.
func archiveTrust(ctx context.Context, a verify.Anchors, r *archive.Reader, cat *archive.Catalog, catDesc ocispec.Descriptor, warn func(string)) (*verify.Trust, error) {
	t, err := a.ForArchive(ctx, r, cat, catDesc)
	var unverified *verify.UnverifiedArchiveError
	switch {
	case errors.As(err, &unverified):
		return nil, plan.CheckFailed(err)
	case err != nil:
		return nil, err
	}
	if t.Origin.Kind == "insecure" && warn != nil {
		warn(verify.InsecureWarning)
	}
	return t, nil
}

// pinnedChartImages names the chart artifacts of the charts entries of a pinned image set (exact
// version, findImages: false), as save named them; an entry that finds its images by rendering the
// chart is refused, as a repositories entry is: only the chart repository knows what it renders to.
func pinnedChartImages(set *config.ImageSet) ([]config.Image, error) {
	var out []config.Image
	for i, c := range set.Charts {
		if c.FindImages {
			return nil, fmt.Errorf("verify -c %s: charts[%d] (%s, line %d) finds its images by rendering the chart, which only its repository serves, and verify makes no call but to the target; verify the pinned image set that save writes (save --pin-out FILE, then verify -c FILE), or the archive", set.Path, i, c.String(), c.Line)
		}
		if c.Repo == "" {
			out = append(out, *c.Ref)
			continue
		}
		img, err := plan.ChartSource(c, c.Version)
		if err != nil {
			return nil, fmt.Errorf("verify -c %s: charts[%d]: %w", set.Path, i, err)
		}
		out = append(out, img)
	}
	return out, nil
}

// imageSetImages lists the images of an ImageSet as a catalog would, for verify -c: only images named
// by reference, since listing a repository's tags would ask the source registry.
func imageSetImages(set *config.ImageSet) ([]archive.Image, error) {
	if len(set.Repositories) > 0 {
		r := set.Repositories[0]
		return nil, fmt.Errorf("verify -c %s: repositories[0] (%s, line %d) names tags only the source registry can list, and verify makes no call but to the target; verify the pinned image set that save writes (save --pin-out FILE, then verify -c FILE), or the archive", set.Path, r.String(), r.Line)
	}
	charts, err := pinnedChartImages(set)
	if err != nil {
		return nil, err
	}
	expanded, _ := plan.WithImages(set, charts).Expand(nil)
	images := make([]archive.Image, 0, len(expanded))
	for _, img := range expanded {
		// The catalog entry naming img as it would be saved: its source, repository, tag, pinned
		// digest and target, nothing resolved.
		images = append(images, archive.Image{Source: img.String(), Repository: img.RepositoryRef(), Tag: img.Tag, Digest: img.Digest, Target: img.Target})
	}
	return images, nil
}
