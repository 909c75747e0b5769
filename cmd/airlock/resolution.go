package main

import (
	"fmt"
	"strings"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror/plan"
)

// printRepositories writes, for each repositories entry, the tags listed and picked and, when all
// is set (a dry run), every tag's decision with the rule that decided.
func printRepositories(b *strings.Builder, repos []plan.RepositoryReport, all bool) {
	for _, r := range repos {
		if r.Error != "" {
			fmt.Fprintf(b, "repository %s (line %d): tags not listed: %s\n", r.Name, r.Line, r.Error)
			continue
		}
		fmt.Fprintf(b, "repository %s (line %d): %d tags listed, %d picked", r.Name, r.Line, r.Listed, len(r.Picked))
		if !all && len(r.Picked) > 0 {
			fmt.Fprintf(b, ": %s", strings.Join(r.Picked, " "))
		}
		b.WriteString("\n")
		if all {
			for _, d := range r.Tags {
				fmt.Fprintf(b, "  %s\n", d)
			}
		}
	}
}

// printCharts writes, for each charts entry, the versions listed and picked (every decision when all
// is set, a dry run), then each chart picked with the images it runs, each with why, and the
// subcharts left out.
func printCharts(b *strings.Builder, reps []plan.ChartReport, all bool) {
	for _, r := range reps {
		fmt.Fprintf(b, "chart %s (line %d)", r.Entry, r.Line)
		if r.Listed > 0 {
			fmt.Fprintf(b, ": %d versions listed, %d picked", r.Listed, len(r.Charts))
		}
		b.WriteString("\n")
		for _, w := range r.Warnings {
			fmt.Fprintf(b, "  warning: %s\n", w)
		}
		if all {
			for _, d := range r.Versions {
				fmt.Fprintf(b, "  %s\n", d)
			}
		}
		for _, c := range r.Charts {
			printChart(b, c, "  ")
		}
	}
}

// printChart writes one chart: its artifact, then each image it runs with every reason, then the
// subcharts left out.
func printChart(b *strings.Builder, c archive.Chart, indent string) {
	fmt.Fprintf(b, "%s%s %s -> %s (%s)", indent, c.Name, c.Version, c.Source, c.Digest)
	if c.KubeVersion != "" {
		fmt.Fprintf(b, ", kubeVersion %s", c.KubeVersion)
	}
	if c.Provenance {
		b.WriteString(", with provenance")
	}
	b.WriteString("\n")
	for _, img := range c.Images {
		fmt.Fprintf(b, "%s  image %s", indent, img.Source)
		if img.Blocked != "" {
			fmt.Fprintf(b, " (blocked: rule %s)", img.Blocked)
		}
		b.WriteString("\n")
		for _, why := range img.Reasons {
			fmt.Fprintf(b, "%s    %s\n", indent, why)
		}
	}
	for _, s := range c.Skipped {
		fmt.Fprintf(b, "%s  skipped %s\n", indent, s)
	}
}

// printBlocked writes the images the blocked list kept out, each with its rule.
func printBlocked(b *strings.Builder, blocked []archive.Blocked) {
	for _, x := range blocked {
		fmt.Fprintf(b, "blocked:   %s (rule %s", x.Source, x.Rule)
		if len(x.Charts) > 0 {
			fmt.Fprintf(b, "; run by chart %s", strings.Join(x.Charts, ", "))
		}
		b.WriteString(")\n")
	}
}

// printLeftOut writes what did not resolve and why: the list --keep-going ends with.
func printLeftOut(b *strings.Builder, left []archive.LeftOut) {
	if len(left) == 0 {
		return
	}
	fmt.Fprintf(b, "left out (%d, did not resolve):\n", len(left))
	for _, l := range left {
		if strings.Contains(l.Reason, l.Source) {
			fmt.Fprintf(b, "  %s\n", l.Reason)
		} else {
			fmt.Fprintf(b, "  %s: %s\n", l.Source, l.Reason)
		}
	}
}

// leftOutError is the exit-1 error of a --keep-going run that left something out.
func leftOutError(what string, left []archive.LeftOut) error {
	names := make([]string, len(left))
	for i, l := range left {
		names[i] = l.Source
	}
	return plan.CheckFailed(fmt.Errorf("%s, but %d left out (--keep-going): %s", what, len(left), strings.Join(names, ", ")))
}
