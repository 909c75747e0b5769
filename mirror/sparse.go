package mirror

import (
	"fmt"
	"strings"

	"airlock.dev/airlock/archive"
)

// SparseRefusalHint says what to do when a target refuses a sparse index (an index whose platform
// manifests a platform filter left out at save): the registry settings that accept it, or flatten.
func SparseRefusalHint() string {
	return "the target refuses a sparse index (a platform filter at save left some of its platform manifests out; " +
		"airlock never rewrites an index, digests never change): load with --sparse-index=flatten to tag the one " +
		"platform manifest saved instead, or let the registry accept sparse indexes (distribution: " +
		"validation.manifests.indexes.platforms: none; zot and Harbor refuse them; see docs/disconnected-site.md)"
}

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

// refusalWords are what registries say when they refuse an index whose manifests they lack.
var refusalWords = []string{"manifest blob unknown", "MANIFEST_BLOB_UNKNOWN", "manifest invalid", "MANIFEST_INVALID", "blob unknown", "400"}

// AnnotateSparseRefusals adds SparseRefusalHint to the error of each failed image of rep (in the order
// of plans) whose plan is a sparse index and whose error reads as a refused manifest, unless it names
// --sparse-index already. It reports whether it added any.
func AnnotateSparseRefusals(plans []*ImagePlan, rep *PublishReport) bool {
	if rep == nil || len(rep.Images) != len(plans) {
		return false
	}
	added := false
	for i, p := range plans {
		ir := &rep.Images[i]
		if !p.Sparse || ir.Status != "failed" || strings.Contains(ir.Error, "--sparse-index") {
			continue
		}
		for _, w := range refusalWords {
			if strings.Contains(ir.Error, w) {
				ir.Error += "; " + SparseRefusalHint()
				added = true
				break
			}
		}
	}
	return added
}
