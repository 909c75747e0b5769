package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror"
	"airlock.dev/airlock/registry"
	"airlock.dev/airlock/verify"
)

// gate verifies plans and returns those that pass; the others are listed on stderr and in the error.
func gate(cmd *cobra.Command, trust *verify.Trust, plans []*mirror.ImagePlan) ([]*mirror.ImagePlan, error) {
	pass, failed := mirror.Gate(cmd.Context(), trust, plans)
	if len(failed) == 0 {
		return pass, nil
	}
	refused := make([]string, len(failed))
	for i, r := range failed {
		refused[i] = fmt.Sprintf("%s (%s): %s", r.Source, r.Digest, strings.Join(r.Failures, "; "))
		fmt.Fprintf(cmd.ErrOrStderr(), "refused, verification failed: %s: %s\n", r.Source, strings.Join(r.Failures, "; "))
	}
	return pass, fmt.Errorf("%d of %d images failed verification and were not loaded:\n  %s", len(refused), len(plans), strings.Join(refused, "\n  "))
}

type loadOptions struct {
	publishOptions
	trust       trustOptions
	verifyFirst bool
	noCatalog   bool
	sparse      sparseOptions
}

func newLoadCmd(g *globalOptions) *cobra.Command {
	o := &loadOptions{}
	cmd := &cobra.Command{
		Use:   "load ARCHIVE --to HOST[:PORT]/PREFIX",
		Short: "Push an archive into the site registry, digests unchanged, referrers attached",
		Long: `load checks an archive (a directory, NAME.tar, or the first volume NAME.tar.000; volumes are
checked against NAME.tar.sha256 first, for accidental damage, and then read in place, never
extracted) and pushes every image into the site registry with every digest unchanged. Every blob is
hashed against its digest before it is pushed (directories) or as it streams to the registry (tar
volumes: the volume list travels with the volumes and only finds accidental damage early); a
mismatch stops the run before any manifest or tag.

Trust pinned at the site (see airlock verify --help):
  --archive-key PUB   the catalog must carry a valid signature by one of these keys, and every digest
                      it lists is hashed, before anything is pushed: a forged, unsigned or damaged
                      archive pushes nothing
  --verify            also verify each image's signatures first; load only those that pass (needs
                      --archive-key, --key/--policy or --trust; --key, --policy and --trusted-root
                      imply --verify)
  --trust FILE        a site trust file (default: $AIRLOCK_TRUST)
With nothing pinned, load still copies and says that nothing was verified.

registry.example.com/team/app:1.4.2 lands at PREFIX/team/app:1.4.2 (--keep-host: at
PREFIX/registry.example.com/team/app:1.4.2; an image's own "target" in the ImageSet wins).

Order: blobs (blobs this run pushed to another repository of the same registry are mounted), platform
manifests, indexes, referrers after their subjects, tags last. Where the registry has the OCI 1.1
referrers API, referrers are pushed as they are; where it has not, the sha256-<hex> tag-schema index is
kept up to date (nothing is ever deleted). Content the registry has is not pushed again, so a second or
interrupted load is cheap to run again. Afterwards every manifest and tag is read back and compared.

An image saved with a platform filter keeps its index as it was, listing only the platforms saved (a
sparse index), so a signature on the index still verifies. Registries in their stock configuration
may refuse it (distribution unless validation.manifests.indexes.platforms is none; zot; Harbor): that
image then fails, nothing of it tagged, and the message says so. --sparse-index=flatten tags the one
platform manifest saved instead (digest unchanged, its own signatures and referrers carried); the
index and what is attached to it are left behind, and listed. With more than one platform saved,
flatten refuses before anything is pushed.

An image that cannot be pushed (a blob or manifest the registry refuses) fails only itself: the
others are still pushed, and each is reported. --keep-going makes that explicit: every failure is
listed again at the end of the report (and under "failures" in JSON), and the exit status is 1. An
archive that fails its checks still pushes nothing. Images the archive lacks because it was saved
with --keep-going, and images its image set blocked, are named in the report.

The catalog, with its signatures, is kept at PREFIX/airlock/catalog, tagged by its creation time: the
site's record of what came in and who signed it (cosign verify --key works on it).`,
		Example: `  airlock load /media/usb/airlock --to registry.site:5000/mirror --archive-key transfer.pub
  airlock load /media/usb/airlock.tar.000 --to registry.site:5000/mirror --archive-key transfer.pub --verify
  airlock load /media/usb/airlock --to registry.site:5000/mirror --dry-run`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.validate(); err != nil {
				return err
			}
			return runLoad(cmd, g, o, args[0])
		},
	}
	o.addFlags(cmd)
	o.trust.addFlags(cmd, true)
	cmd.Flags().BoolVar(&o.verifyFirst, "verify", false, "verify each image against the pinned trust first; load only those that pass")
	cmd.Flags().BoolVar(&o.noCatalog, "no-catalog", false, "do not keep the catalog at PREFIX/airlock/catalog")
	o.sparse.addFlag(cmd)
	return cmd
}

func runLoad(cmd *cobra.Command, g *globalOptions, o *loadOptions, path string) error {
	ctx := cmd.Context()
	r, err := mirror.OpenArchive(ctx, path)
	if err != nil {
		return err
	}
	defer r.Close()
	cat, catDesc, err := r.Catalog(ctx)
	if err != nil {
		return err
	}
	// Before anything is pushed: the archive must agree with its catalog.
	if err := archive.Check(r, cat); err != nil {
		return &checkError{err}
	}
	anchors, verifyImages, trust, err := o.loadTrust(cmd, r, cat, catDesc)
	if err != nil {
		return err
	}
	regs, err := g.registries()
	if err != nil {
		return err
	}
	plans, err := o.loadPlans(ctx, regs, r, cat)
	if err != nil {
		return err
	}
	plans, flattened, err := o.sparse.apply(plans)
	if err != nil {
		return err
	}
	if len(anchors.ArchiveKeys) > 0 {
		// The signature vouches for every digest the catalog lists: hash all of them before any push.
		if err := archive.VerifyContents(ctx, r, cat); err != nil {
			return &checkError{err}
		}
	}
	var refused error
	if verifyImages {
		plans, refused = gate(cmd, trust, plans)
		if len(plans) == 0 {
			return &checkError{refused}
		}
	}
	if len(r.Volumes) == 0 {
		// A directory: hash what will be pushed before anything is (blobs VerifyContents checked are
		// not read again). Blobs of tar volumes are hashed as they stream to the registry, and the
		// first mismatch stops the run before any manifest or tag.
		if err := archive.HashBlobs(ctx, r, mirror.ArchivedContent(ctx, r, plans)); err != nil {
			return &checkError{err}
		}
	}
	opts := o.publishOpts(g, "loading")
	rep, err := mirror.Publish(ctx, plans, regs, opts)
	extra := publishExtra{Blocked: cat.Blocked, ArchiveLeftOut: cat.LeftOut, Flattened: flattened}
	err = finishPublish(cmd, g, &o.publishOptions, rep, err, loadedTrust(trust, anchors, verifyImages), extra)
	if err != nil {
		return err
	}
	if !o.dryRun && !o.noCatalog {
		if err := keepCatalog(cmd, r, cat, catDesc, regs, opts); err != nil {
			return err
		}
	}
	if refused != nil {
		return &checkError{refused}
	}
	return nil
}

// loadTrust reads the trust pinned for a load and, where anything is pinned, checks the archive's
// signature against it. verifyImages says whether the images' own signatures are to be verified too.
func (o *loadOptions) loadTrust(cmd *cobra.Command, r *archive.Reader, cat *archive.Catalog, catDesc ocispec.Descriptor) (anchors verify.Anchors, verifyImages bool, trust *verify.Trust, err error) {
	if anchors, err = o.trust.anchors(); err != nil {
		return anchors, false, nil, err
	}
	verifyImages = o.verifyFirst || len(anchors.Keys) > 0 || anchors.Policy != "" || anchors.TrustedRoot != ""
	if verifyImages || anchors.Pinned() || anchors.Insecure {
		trust, err = o.trust.archiveTrust(cmd.Context(), cmd, anchors, r, cat, catDesc)
		return anchors, verifyImages, trust, err
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "load: nothing verified: no trust is pinned (--archive-key, --key, --trust or AIRLOCK_TRUST); the archive is loaded as it is, each blob checked against its digest")
	return anchors, false, nil, nil
}

// loadPlans plans the images of the archive; for a delta, what it lacks must already be on the target,
// loaded from its base.
func (o *loadOptions) loadPlans(ctx context.Context, regs *registry.Registries, r *archive.Reader, cat *archive.Catalog) ([]*mirror.ImagePlan, error) {
	var base func(config.Image) (mirror.Source, error)
	if cat.Base != "" {
		base = func(img config.Image) (mirror.Source, error) {
			name, err := mirror.TargetRepository(o.to, o.keepHost, img)
			if err != nil {
				return nil, err
			}
			return regs.Target(name)
		}
	}
	plans, err := mirror.PlansFromDelta(ctx, r, cat, base)
	if err != nil {
		if cat.Base != "" {
			return nil, &checkError{fmt.Errorf("delta archive (base catalog %s): %w", cat.Base, err)}
		}
		return nil, &checkError{err}
	}
	return plans, nil
}

// loadedTrust is the trust a load reports: none when nothing of it was used, and only the archive's
// signature and digests when the images' own signatures were not verified.
func loadedTrust(trust *verify.Trust, anchors verify.Anchors, verifyImages bool) *verify.Trust {
	switch {
	case !verifyImages && len(anchors.ArchiveKeys) == 0:
		return nil // the archive's own trust material was not used: nothing was verified
	case !verifyImages:
		t := *trust
		t.Source, _, _ = strings.Cut(trust.Source, "; images:")
		t.Source += "; the images' own signatures not verified (load --verify checks them)"
		return &t
	}
	return trust
}

// keepCatalog pushes the catalog and its signatures to PREFIX/airlock/catalog, tagged by creation
// time, and says where on stderr.
func keepCatalog(cmd *cobra.Command, r *archive.Reader, cat *archive.Catalog, catDesc ocispec.Descriptor, regs *registry.Registries, opts mirror.PublishOptions) error {
	ctx := cmd.Context()
	sigs, err := r.CatalogSignatures(ctx, catDesc.Digest)
	if err != nil {
		return &checkError{err}
	}
	plan, err := mirror.CatalogPlan(ctx, r, cat, catDesc, sigs)
	if err != nil {
		return &checkError{err}
	}
	opts.Progress = nil
	rep, err := mirror.Publish(ctx, []*mirror.ImagePlan{plan}, regs, opts)
	if err == nil && rep.Failed() {
		err = errors.New(rep.Images[0].Error)
	}
	if err != nil {
		// The images are in: a part was not done, not nothing (exit 1).
		return &checkError{fmt.Errorf("the images were loaded, but keeping the catalog at %s failed: %w; run load again, or pass --no-catalog", mirror.CatalogRepository, err)}
	}
	ir := rep.Images[0]
	fmt.Fprintf(cmd.ErrOrStderr(), "catalog %s kept at %s:%s with %d signature(s)\n", catDesc.Digest, ir.Repository, ir.Tag, len(sigs))
	return nil
}
