package mirror

import (
	"fmt"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/internal/atomicfile"
	"airlock.dev/airlock/mirror/plan"
)

// PinnedName is the name of the pinned image set in an archive's catalog (Trust.ImageSet).
const PinnedName = "imageset.pinned.yaml"

// pinnedImages returns the images of plans, each pinned by the digest it resolved to.
func pinnedImages(plans []*plan.ImagePlan) []config.Image {
	var images []config.Image
	for _, p := range plans {
		if p.Made {
			continue
		}
		img := p.Image
		img.Digest = p.Root.Desc.Digest
		images = append(images, img)
	}
	return images
}

// pinnedFile is the image set stored in the archive: the one saved from, pinned by digest, written as
// if beside that file (its trust paths read as that file's do). It stands in for the file as written,
// so the catalog carries one ImageSet blob: the one that reproduces the archive.
func pinnedFile(set *config.ImageSet, plans []*plan.ImagePlan, charts ...config.Chart) (*trustFile, error) {
	path := set.Path
	if path == "" {
		path = "imageset.yaml"
	}
	b, err := set.Pinned(path, pinnedImages(plans), charts...)
	if err != nil {
		return nil, err
	}
	return &trustFile{name: PinnedName, mediaType: archive.ImageSetMediaType, data: b}, nil
}

// writePinned writes the image set of plans, every image pinned by digest, to path (see
// config.ImageSet.Pinned), atomically (internal/atomicfile): path is never half-written.
func writePinned(set *config.ImageSet, plans []*plan.ImagePlan, path string, charts ...config.Chart) error {
	b, err := set.Pinned(path, pinnedImages(plans), charts...)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("--pin-out: %w", err)
	}
	return nil
}

// pinnedCharts are the chart versions the charts entries from HTTP repositories picked, each pinned
// to its exact version and index digest, with findImages off: the images they ran are pinned among
// the images. OCI charts are pinned as images.
func pinnedCharts(set *config.ImageSet, reports []plan.ChartReport) []config.Chart {
	var out []config.Chart
	for i, r := range reports {
		if i >= len(set.Charts) || set.Charts[i].Repo == "" {
			continue
		}
		for _, c := range r.Charts {
			pc := set.Charts[i]
			pc.Version, pc.Digest, pc.FindImages = c.Version, c.ChartDigest.String(), false
			pc.Newest, pc.Values, pc.ValuesFiles, pc.ValuesFileNames = 1, nil, nil, nil
			pc.IncludeDisabled, pc.IncludeAllDisabled = nil, false
			out = append(out, pc)
		}
	}
	return out
}
