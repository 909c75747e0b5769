package mirror

import (
	"fmt"
	"strings"

	"airlock.dev/airlock/archive"
)

// SparseSaveNotice is what save says, once, when a platform filter left indexes sparse.
func SparseSaveNotice(images []archive.Image) string {
	var names []string
	for _, img := range images {
		if img.Sparse {
			names = append(names, img.Source)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf("note: %d image(s) saved with a platform filter keep their index as it is, with only the chosen platforms (a sparse index: %s). "+
		"The site registry must accept sparse indexes (distribution: validation.manifests.indexes.platforms: none; zot and Harbor refuse them), "+
		"or load with --sparse-index=flatten (one platform saved: its manifest is tagged instead of the index)",
		len(names), strings.Join(names, ", "))
}
