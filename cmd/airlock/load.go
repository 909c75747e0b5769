package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror"
	"airlock.dev/airlock/verify"
)

// contentOf lists the manifests and blobs of plans that the archive holds (a delta lacks its base's).
func contentOf(ctx context.Context, r *archive.Reader, plans []*mirror.ImagePlan) []digest.Digest {
	var ds []digest.Digest
	for _, p := range plans {
		for _, n := range p.Nodes() {
			for _, d := range append([]ocispec.Descriptor{n.Desc}, n.Blobs...) {
				if ok, err := r.Exists(ctx, d); err == nil && ok {
					ds = append(ds, d.Digest)
				}
			}
		}
	}
	return ds
}

// gate verifies plans and returns those that pass; the others are listed on stderr and in the error.
func gate(cmd *cobra.Command, trust *verify.Trust, plans []*mirror.ImagePlan) ([]*mirror.ImagePlan, error) {
	results := trust.Plans(cmd.Context(), plans)
	var pass []*mirror.ImagePlan
	var refused []string
	for i, r := range results {
		if r.Passed {
			pass = append(pass, plans[i])
			continue
		}
		refused = append(refused, fmt.Sprintf("%s (%s): %s", r.Source, r.Digest, strings.Join(r.Failures, "; ")))
		fmt.Fprintf(cmd.ErrOrStderr(), "refused, verification failed: %s: %s\n", r.Source, strings.Join(r.Failures, "; "))
	}
	if len(refused) == 0 {
		return pass, nil
	}
	return pass, fmt.Errorf("%d of %d images failed verification and were not loaded:\n  %s", len(refused), len(plans), strings.Join(refused, "\n  "))
}

func newLoadCmd(g *globalOptions) *cobra.Command {
	o := &publishOptions{}
	var verifyFirst bool
	cmd := &cobra.Command{
		Use:   "load ARCHIVE --to HOST[:PORT]/PREFIX",
		Short: "Push an archive into the site registry, digests unchanged, referrers attached",
		Long: `load checks an archive (a directory, NAME.tar, or the first volume NAME.tar.000; volumes are
checked against NAME.tar.sha256 first and then read in place, never extracted) and pushes every image
into the site registry with every digest unchanged.

registry.example.com/team/app:1.4.2 lands at PREFIX/team/app:1.4.2 (--keep-host: at
PREFIX/registry.example.com/team/app:1.4.2; an image's own "target" in the ImageSet wins).

Order: blobs (blobs this run pushed to another repository of the same registry are mounted), platform
manifests, indexes, referrers after their subjects, tags last. Where the registry has the OCI 1.1
referrers API, referrers are pushed as they are; where it has not, the sha256-<hex> tag-schema index is
kept up to date (nothing is ever deleted). Content the registry has is not pushed again, so a second or
interrupted load is cheap to run again. Afterwards every manifest and tag is read back and compared.`,
		Example: `  airlock load /media/usb/airlock --to registry.site:5000/mirror
  airlock load /media/usb/airlock.tar.000 --to registry.site:5000/mirror --site-files ./site
  airlock load /media/usb/airlock --to registry.site:5000/mirror --dry-run`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.validate(); err != nil {
				return err
			}
			ctx := cmd.Context()
			r, err := archive.Open(ctx, args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			cat, _, err := r.Catalog(ctx)
			if err != nil {
				return err
			}
			// Before anything is pushed: the archive must agree with its catalog. Tar volumes were
			// hashed whole against their list by Open; the blobs of a directory are hashed below,
			// once it is known which images will be loaded.
			if err := archive.Check(r, cat); err != nil {
				return &checkError{err}
			}
			regs, err := g.registries()
			if err != nil {
				return err
			}
			var base func(config.Image) (mirror.Source, error)
			if cat.Base != "" {
				// A delta: what it lacks must already be on the target, loaded from its base.
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
					return &checkError{fmt.Errorf("delta archive (base catalog %s): %w", cat.Base, err)}
				}
				return &checkError{err}
			}
			var refused error
			if verifyFirst {
				trust, err := verify.TrustFromArchive(ctx, r, cat)
				if err != nil {
					return err
				}
				plans, refused = gate(cmd, trust, plans)
				if len(plans) == 0 {
					return &checkError{refused}
				}
			}
			if len(r.Volumes) == 0 {
				if err := archive.HashBlobs(ctx, r, contentOf(ctx, r, plans)); err != nil {
					return &checkError{err}
				}
			}
			rep, err := mirror.Publish(ctx, plans, regs, o.publishOpts(g, "loading"))
			if err := finishPublish(cmd, g, o, rep, err); err != nil {
				return err
			}
			if refused != nil {
				return &checkError{refused}
			}
			return nil
		},
	}
	o.addFlags(cmd)
	cmd.Flags().BoolVar(&verifyFirst, "verify", false, "verify each image against the archive's trust material first; load only those that pass")
	return cmd
}
