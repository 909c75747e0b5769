package main

import (
	"github.com/spf13/cobra"

	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror"
	"airlock.dev/airlock/verify"
)

type copyOptions struct {
	publishOptions
	trust       trustOptions
	imageSet    string
	verifyFirst bool
	signKey     string
	sparse      sparseOptions
}

func newCopyCmd(g *globalOptions) *cobra.Command {
	o := &copyOptions{}
	cmd := &cobra.Command{
		Use:   "copy -c IMAGESET --to HOST[:PORT]/PREFIX",
		Short: "Copy an image set, with everything attached, from registry to registry",
		Long: `copy resolves the ImageSet and discovers referrers exactly as save does, then pushes exactly as
load does, from registry to registry with no archive on disk: promotion from staging to production.
Repositories entries are listed and picked, charts entries fetched and rendered (each chart pushed as
its OCI chart artifact, with the images it runs), and blocked images left out, as save does. Every
resolution problem is reported at once and nothing is copied; with --keep-going, what resolves is
copied, every failure is listed at the end, and the exit status is 1.

A platform filter that leaves one platform of an index can be copied with --sparse-index=flatten:
the tag then names that platform manifest (see airlock load --help).

--sign-key KEY signs, on the target, every image that passed verification (it implies --verify),
as airlock load --sign-key does (see airlock load --help).`,
		Example: `  airlock copy -c imageset.yaml --to registry.prod:5000/release`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCopy(cmd, g, o)
		},
	}
	cmd.Flags().StringVarP(&o.imageSet, "config", "c", "", "ImageSet file (required)")
	cmd.Flags().BoolVar(&o.verifyFirst, "verify", false, "verify each image first, against the ImageSet's trust section or --key/--policy/--trusted-root/--trust; copy only those that pass")
	cmd.Flags().StringVar(&o.signKey, "sign-key", "", "cosign private key: sign every image that passed verification on the target (implies --verify; password from COSIGN_PASSWORD, or asked on the terminal)")
	o.trust.addFlags(cmd, false)
	_ = cmd.MarkFlagRequired("config")
	o.addFlags(cmd)
	o.sparse.addFlag(cmd)
	return cmd
}

func runCopy(cmd *cobra.Command, g *globalOptions, o *copyOptions) error {
	set, err := config.Load(o.imageSet)
	if err != nil {
		return err
	}
	regs, err := g.registries()
	if err != nil {
		return err
	}
	co := mirror.CopySetOptions{Plan: g.planOptions(), Publish: o.publishOpts(g, "copying"), SparseIndex: o.sparse.mode, Warn: warn(cmd)}
	co.Plan.KeepGoing = o.keepGoing
	if o.signKey != "" {
		k, err := verify.LoadSigningKey(o.signKey, signingPassword(cmd))
		if err != nil {
			return err
		}
		co.SignKey, co.Version = k, version()
	}
	if o.verifyFirst || o.signKey != "" {
		anchors, err := o.trust.anchors()
		if err != nil {
			return err
		}
		if co.Trust, err = anchors.ForImageSet(set); err != nil {
			return err
		}
	}
	res, err := mirror.CopySet(cmd.Context(), set, regs, co)
	if res == nil {
		return err
	}
	extra := publishExtra{Repositories: res.Set.Repositories, Charts: res.Set.Charts, Blocked: res.Set.Blocked, LeftOut: res.Set.LeftOut, Flattened: res.Flattened, SiteSigned: res.SiteSigned}
	if err := finishPublish(cmd, g, &o.publishOptions, res.Report, err, co.Trust, extra); err != nil {
		return err
	}
	return res.Refused
}
