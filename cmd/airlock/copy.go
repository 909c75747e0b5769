package main

import (
	"github.com/spf13/cobra"

	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror"
)

func newCopyCmd(g *globalOptions) *cobra.Command {
	o := &publishOptions{}
	var setPath string
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
			set, err := config.Load(setPath)
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
			rep, err := mirror.Publish(cmd.Context(), plans, regs, o.publishOpts(g, "copying"))
			return finishPublish(cmd, g, o, rep, err)
		},
	}
	cmd.Flags().StringVarP(&setPath, "config", "c", "", "ImageSet file (required)")
	_ = cmd.MarkFlagRequired("config")
	o.addFlags(cmd)
	return cmd
}
