package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror"
	"airlock.dev/airlock/mirror/plan"
)

func newDiffCmd(g *globalOptions) *cobra.Command {
	var setPath, against string
	var keepHost bool
	cmd := &cobra.Command{
		Use:   "diff -c IMAGESET --against HOST[:PORT]/PREFIX | ARCHIVE",
		Short: "Show what a mirror or an archive lacks or has out of date",
		Long: `diff resolves the ImageSet in its source registries, with every referrer, and compares it with a
mirror (HOST[:PORT]/PREFIX, mapped as load maps) or an archive. Per image: ok, missing, stale (the tag
points at another digest) or incomplete (manifests, referrers or blobs missing, each listed).
An image loaded with --sparse-index=flatten is ok when the tag names its one platform manifest
(the index and its referrers are not expected on the mirror).
Exit status 1 when anything is missing, stale or incomplete.`,
		Example: `  airlock diff -c imageset.yaml --against registry.site:5000/mirror
  airlock diff -c imageset.yaml --against /media/usb/airlock --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDiff(cmd, g, setPath, against, keepHost)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&setPath, "config", "c", "", "ImageSet file (required)")
	f.StringVar(&against, "against", "", "mirror HOST[:PORT]/PREFIX, or an archive (required)")
	f.BoolVar(&keepHost, "keep-host", false, "the mirror keeps source hosts as path elements (as load --keep-host)")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("against")
	return cmd
}

func printDiff(w io.Writer, es []mirror.DiffEntry) error {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%-11s %s -> %s  %s", e.Status, e.Source, e.Target, e.Digest)
		if e.Status == mirror.DiffStale {
			fmt.Fprintf(&b, " (mirror has %s)", e.TargetDigest)
		}
		if e.Flattened != "" {
			fmt.Fprintf(&b, " (flattened: the mirror tags its %s manifest %s)", e.Flattened, e.TargetDigest)
		}
		b.WriteString("\n")
		for _, m := range e.Missing {
			fmt.Fprintf(&b, "            lacks %s\n", m)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func runDiff(cmd *cobra.Command, g *globalOptions, setPath, against string, keepHost bool) error {
	set, err := config.Load(setPath)
	if err != nil {
		return err
	}
	regs, err := g.registries()
	if err != nil {
		return err
	}
	entries, err := mirror.Diff(cmd.Context(), set, against, regs, keepHost, g.planOptions())
	if err != nil {
		return err // a failed check while planning (a moved tag) exits 1: main.run
	}
	if err := g.emit(cmd, entries, func(w io.Writer) error { return printDiff(w, entries) }); err != nil {
		return err
	}
	bad := 0
	for _, e := range entries {
		if e.Status != mirror.DiffOK {
			bad++
		}
	}
	if bad > 0 {
		return plan.CheckFailed(fmt.Errorf("%d of %d images missing, stale or incomplete in %s", bad, len(entries), against))
	}
	return nil
}
