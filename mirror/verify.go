package mirror

import (
	"context"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"

	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/verify"
)

// verifyImage describes the planned image (from a registry or an archive) for verification: its
// platforms, its referrers and where to read them.
func verifyImage(p *plan.ImagePlan) verify.Image {
	img := verify.Image{
		Source:     p.Source,
		Repository: p.Image.RepositoryRef(),
		AnyHost:    p.UnsignedName,
		Digest:     p.Root.Desc.Digest,
		Platforms:  map[digest.Digest]string{},
		Fetch:      p.Content,
		Manifest:   p.Root.Manifest,
	}
	for _, c := range p.Root.Children {
		name := c.Platform
		if name == "" {
			name = c.Desc.Digest.Encoded()[:12]
		}
		img.Platforms[c.Desc.Digest] = name
	}
	for _, r := range p.Referrers {
		img.Referrers = append(img.Referrers, verify.Referrer{Digest: r.Desc.Digest, Subject: r.Referrer.Subject, Kind: r.Kind, Manifest: r.Manifest})
	}
	return img
}

// verifyPlans checks every plan against trust and returns the results, in order.
func verifyPlans(ctx context.Context, trust *verify.Trust, plans []*plan.ImagePlan) []verify.Result {
	out := make([]verify.Result, len(plans))
	for i, p := range plans {
		out[i] = trust.Verify(ctx, verifyImage(p))
		if p.Flattened() {
			coversPlatform(&out[i], p)
		}
	}
	return out
}

// coversPlatform names the platform, not "image", as what the checks on a flattened image's manifest
// cover: the tag names one platform manifest of an index left behind.
func coversPlatform(r *verify.Result, p *plan.ImagePlan) {
	for _, list := range [][]verify.Check{r.Signatures, r.Attestations} {
		for i := range list {
			if list[i].Subject == p.Root.Desc.Digest {
				list[i].Covers = p.Root.Platform
			}
		}
	}
}

// gatePlans verifies plans against trust and returns those that pass, in order, the results of those
// by source reference (for the import attestation), and the results of those that do not.
func gatePlans(ctx context.Context, trust *verify.Trust, plans []*plan.ImagePlan) (pass []*plan.ImagePlan, passed map[string]verify.Result, refused []verify.Result) {
	passed = map[string]verify.Result{}
	for i, r := range verifyPlans(ctx, trust, plans) {
		if r.Passed {
			pass, passed[r.Source] = append(pass, plans[i]), r
		} else {
			refused = append(refused, r)
		}
	}
	return pass, passed, refused
}

// gate is gatePlans for save and copy: each image that fails is named to warn (if set), and all of
// them in the error (a failed check).
func gate(ctx context.Context, trust *verify.Trust, plans []*plan.ImagePlan, warn func(string)) ([]*plan.ImagePlan, map[string]verify.Result, error) {
	pass, passed, failed := gatePlans(ctx, trust, plans)
	if len(failed) == 0 {
		return pass, passed, nil
	}
	refused := make([]string, len(failed))
	for i, r := range failed {
		refused[i] = fmt.Sprintf("%s (%s): %s", r.Source, r.Digest, strings.Join(r.Failures, "; "))
		if warn != nil {
			warn(fmt.Sprintf("refused, verification failed: %s: %s", r.Source, strings.Join(r.Failures, "; ")))
		}
	}
	return pass, passed, plan.CheckFailed(fmt.Errorf("%d of %d images failed verification and were not loaded:\n  %s", len(refused), len(plans), strings.Join(refused, "\n  ")))
}

// Signer signs a digest, returning a Sigstore bundle (a *verify.SigningKey).
type Signer interface {
	SignDigest(digest.Digest) ([]byte, error)
}
