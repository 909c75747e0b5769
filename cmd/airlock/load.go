package main

import (
	"github.com/spf13/cobra"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror"
)

func newLoadCmd(g *globalOptions) *cobra.Command {
	o := &publishOptions{}
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
			plans, err := mirror.PlansFromArchive(ctx, r, cat)
			if err != nil {
				return &checkError{err}
			}
			regs, err := g.registries()
			if err != nil {
				return err
			}
			rep, err := mirror.Publish(ctx, plans, regs, o.publishOpts(g, "loading"))
			return finishPublish(cmd, g, o, rep, err)
		},
	}
	o.addFlags(cmd)
	return cmd
}
