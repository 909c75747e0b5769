package engine

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/registry/remote"

	"airlock.dev/airlock/config"
)

// TargetReference is how an image lands in repo: "repo:tag", or "repo@digest" when it has no tag.
func TargetReference(repo, tag string, d digest.Digest) string {
	if tag != "" {
		return repo + ":" + tag
	}
	return repo + "@" + d.String()
}

// TargetRepository maps a source image to its repository under to (HOST[:PORT][/PREFIX]): the image's
// own target if the ImageSet sets one, else PREFIX/<source path>, or PREFIX/<source host>/<source path>
// with keepHost (a port becomes "-PORT", since ':' may not appear in a repository name).
func TargetRepository(to string, keepHost bool, img config.Image) (string, error) {
	to = strings.TrimSuffix(to, "/")
	host, prefix, _ := strings.Cut(to, "/")
	if host == "" {
		return "", fmt.Errorf("--to %q: want HOST[:PORT]/PREFIX, e.g. registry.site:5000/mirror", to)
	}
	var path string
	switch {
	case img.Target != "":
		path = img.Target
	case keepHost:
		path = strings.ReplaceAll(strings.ToLower(img.Registry), ":", "-") + "/" + img.Repository
	default:
		path = img.Repository
	}
	name := host + "/" + path
	if prefix != "" {
		name = host + "/" + prefix + "/" + path
	}
	if _, err := remote.NewRepository(name); err != nil {
		return "", fmt.Errorf("target for %s: %q is not a valid repository: %w", img, name, err)
	}
	return name, nil
}
