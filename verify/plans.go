package verify

import (
	"context"

	"github.com/opencontainers/go-digest"

	"airlock.dev/airlock/mirror"
)

// ImageFromPlan describes a planned image (from a registry or an archive) for verification.
func ImageFromPlan(p *mirror.ImagePlan) Image {
	img := Image{
		Source:     p.Source,
		Repository: p.Image.RepositoryRef(),
		Digest:     p.Root.Desc.Digest,
		Platforms:  map[digest.Digest]string{},
		Fetch:      p.Content(),
	}
	for _, c := range p.Root.Children {
		name := c.Platform
		if name == "" {
			name = c.Desc.Digest.Encoded()[:12]
		}
		img.Platforms[c.Desc.Digest] = name
	}
	for _, r := range p.Referrers {
		img.Referrers = append(img.Referrers, Referrer{Digest: r.Desc.Digest, Subject: r.Referrer.Subject, Kind: r.Kind, Manifest: r.Manifest})
	}
	return img
}

// Plans verifies every plan and returns the results, in order.
func (t *Trust) Plans(ctx context.Context, plans []*mirror.ImagePlan) []Result {
	out := make([]Result, len(plans))
	for i, p := range plans {
		out[i] = t.Verify(ctx, ImageFromPlan(p))
	}
	return out
}
