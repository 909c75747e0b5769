package mirror

import (
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/verify"
)

// SigningCheck is what a signing station checked of an archive before it signs the archive's catalog
// (see CheckForSigning).
type SigningCheck struct {
	// Archive is the archive's path; Catalog the catalog checked, the one SignArchive signs.
	Archive string
	Catalog ocispec.Descriptor
	// Trust is the image trust given at the station that the images were verified against; nil when
	// only the content was checked (content only: the images' signatures were not looked at).
	Trust *verify.Trust
	// Results is the verdict on each image the archive holds, in catalog order (empty for content
	// only).
	Results []verify.Result
	// InBase lists the images of a delta archive (saved with --since) whose manifests the delta does
	// not hold: its base holds them, and the site reads them from the registry the base was loaded
	// into. They were not checked here.
	InBase []archive.Image
}

// Failed returns the results of the images that failed verification.
func (c *SigningCheck) Failed() []verify.Result {
	var out []verify.Result
	for _, r := range c.Results {
		if !r.Passed {
			out = append(out, r)
		}
	}
	return out
}

// Passed reports whether the archive may be signed: its content agrees with its catalog (or
// CheckForSigning would have returned an error) and no image failed verification.
func (c *SigningCheck) Passed() bool { return len(c.Failed()) == 0 }

// CheckForSigning checks the archive at path (a directory or tar volumes) before its catalog is
// signed: every manifest and blob is hashed against the catalog (archive.VerifyContents), and then,
// unless trust is nil, every image is verified against trust exactly as verify checks an archive.
//
// trust must be the image trust given at the signing station (verify.Anchors.Site): never the
// archive's own keys, trusted root or policy, since an archive never vouches for itself, and a
// catalog signed after checking the images against the archive's own trust would let whoever wrote
// the archive vouch for it through the station's key. trust nil checks the content only.
//
// An archive that cannot be opened is an error; a damaged or inconsistent archive wraps
// ErrCheckFailed; images that fail verification are reported in the results (see Passed), and an
// image whose manifests cannot be read back from the archive fails with the reason.
func CheckForSigning(ctx context.Context, path string, trust *verify.Trust) (*SigningCheck, error) {
	r, err := plan.OpenArchive(ctx, path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cat, catDesc, err := r.Catalog(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", plan.ErrCheckFailed, path, err)
	}
	if err := archive.VerifyContents(ctx, r, cat); err != nil {
		return nil, fmt.Errorf("%w: %w", plan.ErrCheckFailed, err)
	}
	c := &SigningCheck{Archive: path, Catalog: catDesc, Trust: trust}
	if trust == nil {
		return c, nil
	}
	var plans []*plan.ImagePlan
	var at []int // the index in c.Results of each plan's result
	for _, img := range cat.Images {
		root := ocispec.Descriptor{MediaType: img.MediaType, Digest: img.Digest, Size: img.Size}
		if cat.Base != "" {
			if held, err := r.Exists(ctx, root); err == nil && !held {
				c.InBase = append(c.InBase, img)
				continue
			}
		}
		// One image at a time, so that an image that cannot be read back fails alone, named.
		one := *cat
		one.Images = []archive.Image{img}
		p, err := plan.PlansFromArchive(ctx, r, &one)
		if err != nil {
			c.Results = append(c.Results, verify.Result{Source: img.Source, Digest: img.Digest,
				Failures: []string{fmt.Sprintf("cannot be read back from the archive to verify: %v", err)}})
			continue
		}
		plans = append(plans, p...)
		at = append(at, len(c.Results))
		c.Results = append(c.Results, verify.Result{})
	}
	for i, res := range verifyPlans(ctx, trust, plans) {
		c.Results[at[i]] = res
	}
	return c, nil
}

// SignArchive signs the catalog of the archive that c checked with key (see archive.Sign), and returns the signature's
// descriptor. It refuses, writing nothing, when an image failed the check, or when the archive's
// catalog is no longer the one checked.
func SignArchive(ctx context.Context, c *SigningCheck, key Signer) (ocispec.Descriptor, error) {
	if failed := c.Failed(); len(failed) > 0 {
		return ocispec.Descriptor{}, fmt.Errorf("%w: %s: %d of %d images failed verification: not signed", plan.ErrCheckFailed, c.Archive, len(failed), len(c.Results))
	}
	return archive.Sign(ctx, c.Archive, func(d ocispec.Descriptor) ([]byte, error) {
		if d.Digest != c.Catalog.Digest {
			return nil, fmt.Errorf("%w: %s: its catalog is now %s, not %s as checked: it changed while it was checked; not signed", plan.ErrCheckFailed, c.Archive, d.Digest, c.Catalog.Digest)
		}
		return key.SignDigest(d.Digest)
	})
}
