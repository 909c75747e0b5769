package mirror

import (
	"fmt"
	"os"
	"path/filepath"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
)

// PinnedName is the name of the pinned image set in an archive's catalog (Trust.ImageSet).
const PinnedName = "imageset.pinned.yaml"

// pinnedImages returns the images of plans, each pinned by the digest it resolved to.
func pinnedImages(plans []*ImagePlan) []config.Image {
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
func pinnedFile(set *config.ImageSet, plans []*ImagePlan) (*trustFile, error) {
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

// WritePinned writes the image set of plans, every image pinned by digest, to path (see
// config.ImageSet.Pinned): written to a temporary file beside it, then renamed, so that path is
// never half-written.
func WritePinned(set *config.ImageSet, plans []*ImagePlan, path string) error {
	b, err := set.Pinned(path, pinnedImages(plans))
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("--pin-out: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("--pin-out: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("--pin-out: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("--pin-out: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("--pin-out: %w", err)
	}
	return nil
}
