package mirror

import (
	"github.com/opencontainers/go-digest"
)

// TargetReference is how an image lands in repo: "repo:tag", or "repo@digest" when it has no tag.
func TargetReference(repo, tag string, d digest.Digest) string {
	if tag != "" {
		return repo + ":" + tag
	}
	return repo + "@" + d.String()
}
