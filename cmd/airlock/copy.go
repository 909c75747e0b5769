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
}

func newCopyCmd(g *globalOptions) *cobra.Command {
	o := &copyOptions{}
	cmd := &cobra.Command{
		Use:   "copy -c IMAGESET --to HOST[:PORT]/PREFIX",
		Short: "Copy an image set, with everything attached, from registry to registry",
		Long: `copy resolves the ImageSet and discovers referrers exactly as save does, then pushes exactly as
load does, from registry to registry with no archive on disk: promotion from staging to production.`,
		Example: `  airlock copy -c imageset.yaml --to registry.prod:5000/release`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.validate(); err != nil {
				return err
			}
			return runCopy(cmd, g, o)
		},
	}
	cmd.Flags().StringVarP(&o.imageSet, "config", "c", "", "ImageSet file (required)")
	cmd.Flags().BoolVar(&o.verifyFirst, "verify", false, "verify each image first, against the ImageSet's trust section or --key/--policy/--trusted-root/--trust; copy only those that pass")
	o.trust.addFlags(cmd, false)
	_ = cmd.MarkFlagRequired("config")
	o.addFlags(cmd)
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
	plans, err := mirror.PlanAll(cmd.Context(), set, regs, g.planOptions())
	if err != nil {
		return planError(err)
	}
	var refused error
	var trust *verify.Trust
	if o.verifyFirst {
		if trust, err = o.trust.imageSetTrust(set); err != nil {
			return err
		}
		if plans, refused = gate(cmd, trust, plans); len(plans) == 0 {
			return &checkError{refused}
		}
	}
	rep, err := mirror.Publish(cmd.Context(), plans, regs, o.publishOpts(g, "copying"))
	if err := finishPublish(cmd, g, &o.publishOptions, rep, err, trust); err != nil {
		return err
	}
	if refused != nil {
		return &checkError{refused}
	}
	return nil
}
