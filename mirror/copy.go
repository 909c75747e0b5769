package mirror

import (
	"context"
	"fmt"
	"time"

	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/registry"
	"airlock.dev/airlock/verify"
)

// CopySetOptions controls CopySet.
type CopySetOptions struct {
	Plan    plan.PlanOptions
	Publish PublishOptions
	// SparseIndex is SparsePush (or "") or SparseFlatten.
	SparseIndex string
	// Trust, if set, verifies each image first: only those that pass are copied; each that fails is
	// named to Warn.
	Trust *verify.Trust
	Warn  func(string)
	// SignKey, when set, signs every image that passed verification on the target (as load --sign-key
	// does); it needs Trust. Version is airlock's, for the import attestation.
	SignKey SiteSigner
	Version string
}

// CopySetResult is what CopySet did.
type CopySetResult struct {
	Set       *plan.SetPlan
	Flattened []plan.FlattenReport
	Report    *PublishReport
	// Refused names the images that failed verification and were not copied (a failed check; nil: none).
	Refused error
	// SiteSigned lists the manifests signed on the target (SignKey).
	SiteSigned []SiteSignature
}

// CopySet copies an image set from registry to registry with no archive between: plan (as Save
// does), flatten if asked, verify (only the images that pass go on), publish (as Load does).
func CopySet(ctx context.Context, set *config.ImageSet, regs *registry.Registries, o CopySetOptions) (*CopySetResult, error) {
	if o.SignKey != nil && (o.Trust == nil || (o.Trust.Policy == nil && len(o.Trust.Keys) == 0)) {
		return nil, ErrSignUnverified
	}
	sp, err := plan.PlanSet(ctx, set, regs, o.Plan)
	if err != nil {
		return nil, fmt.Errorf("copy: nothing copied: %w", err)
	}
	res := &CopySetResult{Set: sp}
	plans, flattened, err := applySparse(o.SparseIndex, sp.Plans)
	if err != nil {
		return nil, err
	}
	res.Flattened = flattened
	imp := siteImport{trust: o.Trust, version: o.Version, time: time.Now(), namedBy: "the image set"}
	if o.Trust != nil {
		if plans, imp.results, res.Refused = gate(ctx, o.Trust, plans, o.Warn); len(plans) == 0 {
			return nil, res.Refused
		}
	}
	res.Report, res.SiteSigned, err = signAndPublish(ctx, plans, regs, o.Publish, o.SignKey, imp)
	return res, err
}
