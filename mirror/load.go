package mirror

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/registry"
	"airlock.dev/airlock/verify"
)

// LoadOptions controls Load.
type LoadOptions struct {
	Publish PublishOptions
	// Anchors is the trust pinned at the site; VerifyImages asks for each image's signatures to be
	// verified too (implied by keys, a policy or a trusted root pinned at the site).
	Anchors      verify.Anchors
	VerifyImages bool
	// SparseIndex is SparsePush (or "") or SparseFlatten.
	SparseIndex string
	// KeepCatalog keeps the catalog, with the signatures that verified, at PREFIX/airlock/catalog.
	KeepCatalog bool
	// AllowOlder lets an archive move a tag that a newer signed catalog set (a rollback).
	AllowOlder bool
	Regs       *registry.Registries
	// Kept lists the catalogs the site kept, when Publish.Target is set (tests; nil: none).
	Kept func(ctx context.Context) ([]KeptCatalog, error)
	// Warn receives what the operator must read on stderr (an archive vouching for itself).
	Warn func(string)
	// SignKey, when set, signs every image that passed verification on the site (siteSign); it needs
	// trust pinned at the site, and implies VerifyImages. Version is airlock's, for the import
	// attestation.
	SignKey SiteSigner
	Version string
}

// ErrSignUnverified is load --sign-key with nothing pinned to verify the images against.
var ErrSignUnverified = errors.New("--sign-key signs only what was verified against pinned trust, and nothing is pinned: give --archive-key (load), --key (or --policy) or --trust; nothing was pushed")

// LoadResult is what Load did.
type LoadResult struct {
	Catalog *archive.Catalog
	// Trust is the trust the run verified against, as reported: nil when nothing was verified.
	Trust     *verify.Trust
	Flattened []plan.FlattenReport
	Report    *PublishReport
	// Refused lists the images not loaded, each with its reason: failed verification, or a rollback.
	Refused []string
	// KeptAt is where the catalog was kept ("" when it was not).
	KeptAt   string
	KeptSigs int
	// SiteSigned lists the manifests signed on the site (SignKey).
	SiteSigned []SiteSignature
}

// Load pushes an archive into the site registry, in one order: open, check (the archive agrees with
// its catalog), trust (the catalog's signature against the pinned archive keys), plan (from the
// verified manifests; an unsigned catalog's names decide nothing), hash (every digest a signed
// catalog lists), verify (each image against the pinned trust; only those that pass go on), rollback
// (no tag a newer signed catalog set is moved back), hash (what will be pushed), push, keep (the
// catalog and only the signatures that verified). Nothing is written before verification passes.
func Load(ctx context.Context, path string, o LoadOptions) (*LoadResult, error) {
	r, err := plan.OpenArchive(ctx, path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cat, catDesc, err := r.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	res := &LoadResult{Catalog: cat}
	if err := archive.Check(r, cat); err != nil {
		return nil, err
	}
	trust, verifyImages, err := o.trust(ctx, r, cat, catDesc)
	if err != nil {
		return nil, err
	}
	// A catalog that a pinned archive key signed vouches for what it names; any other is input.
	signed := len(o.Anchors.ArchiveKeys) > 0
	res.Trust = reportedTrust(trust, signed, verifyImages)
	plans, err := o.plans(ctx, r, cat, signed)
	if err != nil {
		return nil, err
	}
	if plans, res.Flattened, err = applySparse(o.SparseIndex, plans); err != nil {
		return nil, err
	}
	if signed {
		// The signature vouches for every digest the catalog lists: hash all of them before any push.
		if err := archive.VerifyContents(ctx, r, cat); err != nil {
			return nil, err
		}
	}
	imp := siteImport{trust: trust, catalog: catDesc.Digest, version: o.Version, time: time.Now(), namedBy: "a catalog no pinned archive key signed"}
	if signed {
		imp.namedBy = "a catalog signed by a pinned archive key"
	}
	if verifyImages {
		var refused []verify.Result
		plans, imp.results, refused = gatePlans(ctx, trust, plans)
		for _, f := range refused {
			res.Refused = append(res.Refused, fmt.Sprintf("verification failed: %s (%s): %s", f.Source, f.Digest, strings.Join(f.Failures, "; ")))
		}
	}
	if signed && !o.AllowOlder && !o.Publish.DryRun {
		var rolled []string
		if plans, rolled, err = o.noRollback(ctx, plans, cat, catDesc); err != nil {
			return nil, err
		}
		res.Refused = append(res.Refused, rolled...)
	}
	if len(plans) == 0 {
		return res, plan.CheckFailed(fmt.Errorf("nothing loaded: %d image(s) refused:\n  %s", len(res.Refused), strings.Join(res.Refused, "\n  ")))
	}
	if len(r.Volumes) == 0 {
		// A directory: hash what will be pushed before anything is (blobs VerifyContents checked are
		// not read again). Blobs of tar volumes were hashed when the archive was opened
		// (archive.Open); one that did not match there refused the archive.
		if err := archive.HashBlobs(ctx, r, archivedContent(ctx, r, plans)); err != nil {
			return nil, err
		}
	}
	res.Report, res.SiteSigned, err = signAndPublish(ctx, plans, o.Regs, o.Publish, o.SignKey, imp)
	if err != nil || res.Report == nil || o.Publish.DryRun || !o.KeepCatalog {
		return res, err
	}
	if err := o.keep(ctx, r, cat, catDesc, trust, res); err != nil {
		// The images are in: a part was not done, not nothing (exit 1).
		return res, plan.CheckFailed(fmt.Errorf("the images were loaded, but keeping the catalog at %s failed: %w; run load again, or pass --no-catalog", plan.CatalogRepository, err))
	}
	return res, nil
}

// trust is the trust the archive's images are verified against (archiveTrust), nil when nothing is
// pinned to verify anything; verifyImages says whether the images' own signatures are verified
// (VerifyImages, implied by keys, a policy or a trusted root pinned at the site, or a SignKey).
func (o *LoadOptions) trust(ctx context.Context, r *archive.Reader, cat *archive.Catalog, catDesc ocispec.Descriptor) (trust *verify.Trust, verifyImages bool, err error) {
	a := o.Anchors
	verifyImages = o.VerifyImages || len(a.Keys) > 0 || a.Policy != "" || a.TrustedRoot != "" || o.SignKey != nil
	switch {
	case o.SignKey != nil && !a.Pinned():
		return nil, false, ErrSignUnverified
	case verifyImages || a.Pinned() || a.Insecure:
		trust, err = archiveTrust(ctx, a, r, cat, catDesc, o.Warn)
		return trust, verifyImages, err
	case o.Warn != nil:
		o.Warn("load: nothing verified: no trust is pinned (--archive-key, --key, --trust or AIRLOCK_TRUST); the archive is loaded as it is, each blob checked against its digest")
	}
	return nil, false, nil
}

// plans plans the images of the archive from its verified manifests. For a delta, what it lacks must
// already be on the target, loaded from its base. An unsigned catalog's per-image targets are not
// used: the site's mapping (--to and the source path) alone says where an image lands, and the
// policy rule is the one for that repository under any host (see verify.Image.AnyHost).
func (o *LoadOptions) plans(ctx context.Context, r *archive.Reader, cat *archive.Catalog, signed bool) ([]*plan.ImagePlan, error) {
	var base func(config.Image) (content.ReadOnlyStorage, error)
	if cat.Base != "" {
		base = func(img config.Image) (content.ReadOnlyStorage, error) {
			if !signed {
				img.Target = ""
			}
			name, err := engine.TargetRepository(o.Publish.To, o.Publish.KeepHost, img)
			if err != nil {
				return nil, err
			}
			if o.Publish.Target != nil {
				return nil, fmt.Errorf("delta archives load only into a registry")
			}
			return o.Regs.Target(name)
		}
	}
	plans, err := plan.PlansFromDelta(ctx, r, cat, base)
	if err != nil {
		if cat.Base != "" {
			err = fmt.Errorf("delta archive (base catalog %s): %w", cat.Base, err)
		}
		return nil, plan.CheckFailed(err)
	}
	if !signed {
		dropUnsignedNames(plans, o.Publish.KeepHost)
	}
	return plans, nil
}

// dropUnsignedNames marks plans whose names come from a catalog that no pinned archive key signed: their
// per-image targets are dropped (the site's mapping alone says where an image lands), and, unless the
// source host is kept on the target, each image's policy rule is chosen by its path under any host
// (verify.Image.AnyHost), so that a relabelled host cannot pick a weaker rule.
func dropUnsignedNames(plans []*plan.ImagePlan, keepHost bool) {
	for _, p := range plans {
		p.Image.Target = ""
		p.UnsignedName = !keepHost
	}
}

// reportedTrust is the trust a load reports: none when nothing of it was used, and only the archive's
// signature and digests when the images' own signatures were not verified.
func reportedTrust(trust *verify.Trust, signed, verifyImages bool) *verify.Trust {
	switch {
	case trust == nil || (!verifyImages && !signed):
		return nil // the archive's own trust material was not used: nothing was verified
	case !verifyImages:
		t := *trust
		t.Source, _, _ = strings.Cut(trust.Source, "; images:")
		t.Source += "; the images' own signatures not verified (load --verify checks them)"
		return &t
	}
	return trust
}

// keep pushes the catalog, with the signatures that verified against a pinned archive key (none when
// none is pinned), to PREFIX/airlock/catalog under a tag of its own: its creation time and digest.
func (o *LoadOptions) keep(ctx context.Context, r *archive.Reader, cat *archive.Catalog, catDesc ocispec.Descriptor, trust *verify.Trust, res *LoadResult) error {
	all, err := r.CatalogSignatures(ctx, catDesc.Digest)
	if err != nil {
		return err
	}
	var sigs []archive.CatalogSignature
	if trust != nil {
		for _, s := range all {
			for _, v := range trust.Origin.ArchiveSignatures {
				if v.Valid && v.Digest == s.Manifest.Digest {
					sigs = append(sigs, s)
				}
			}
		}
	}
	ip, err := plan.CatalogPlan(ctx, r, cat, catDesc, sigs)
	if err != nil {
		return err
	}
	opts := o.Publish
	opts.Progress = nil
	rep, err := Publish(ctx, []*plan.ImagePlan{ip}, o.Regs, opts)
	if err == nil && rep.Failed() {
		err = errors.New(rep.Images[0].Error)
	}
	if err != nil {
		return err
	}
	res.KeptAt, res.KeptSigs = rep.Images[0].Repository+":"+rep.Images[0].Tag, len(sigs)
	return nil
}

// applySparse applies --sparse-index: push (or "") keeps plans as they are; flatten flattens the
// sparse ones, and a sparse plan with more than one platform refuses the whole run before anything is
// pushed.
func applySparse(mode string, plans []*plan.ImagePlan) ([]*plan.ImagePlan, []plan.FlattenReport, error) {
	switch mode {
	case plan.SparsePush, "":
		return plans, nil, nil
	case plan.SparseFlatten:
		return plan.Flatten(plans)
	}
	return nil, nil, fmt.Errorf("--sparse-index %q: want push or flatten", mode)
}
