package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"airlock.dev/airlock/mirror/plan"
)

// sparseOptions is --sparse-index of load and copy.
type sparseOptions struct {
	mode string
}

func (s *sparseOptions) addFlag(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.mode, "sparse-index", plan.SparsePush,
		"an index a platform filter left sparse: push it as saved (push; the registry must accept sparse indexes), or tag its one platform manifest instead (flatten; digest unchanged, the index and its signatures left behind and reported)")
}

// printFlattened says, in text, which images were flattened and what of each was left behind.
func printFlattened(b *strings.Builder, reports []plan.FlattenReport) {
	if len(reports) == 0 {
		return
	}
	fmt.Fprintf(b, "flattened (--sparse-index=flatten): %d image(s) tagged as their one platform manifest; the index is not pushed:\n", len(reports))
	for _, r := range reports {
		fmt.Fprintf(b, "  %s  %s %s (index %s not pushed; %d referrers carried)\n", r.Source, r.Platform, r.Digest, r.Index, r.Carried)
		for _, lb := range r.LeftBehind {
			fmt.Fprintf(b, "    left behind: %s %s (of %s)\n", lb.Kind, lb.Digest, lb.Subject)
		}
	}
}
