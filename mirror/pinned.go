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
	images := make([]config.Image, len(plans))
	for i, p := range plans {
		images[i] = p.Image
		images[i].Digest = p.Root.Desc.Digest
	}
	return images
}

// pinnedFile is the image set stored in the archive: the one saved from, pinned by digest, written as
// if beside that file (its trust paths read as that file's do). It stands in for the file as written,
// so the catalog carries one ImageSet blob: the one that reproduces the archive.
func pinnedFile(set *config.ImageSet, plans []*plan.ImagePlan) (*trustFile, error) {
	path := set.Path
	if path == "" {
		path = "imageset.yaml"
	}
	b, err := set.Pinned(path, pinnedImages(plans))
	if err != nil {
		return nil, err
	}
	return &trustFile{name: PinnedName, mediaType: archive.ImageSetMediaType, data: b}, nil
}

// writePinned writes the image set of plans, every image pinned by digest, to path (see
// config.ImageSet.Pinned), atomically (internal/atomicfile): path is never half-written.
func writePinned(set *config.ImageSet, plans []*plan.ImagePlan, path string) error {
	b, err := set.Pinned(path, pinnedImages(plans))
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("--pin-out: %w", err)
	}
	return nil
}
