package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror"
	"airlock.dev/airlock/sitefiles"
	"airlock.dev/airlock/verify"
)

// publishOptions are the flags load and copy share.
type publishOptions struct {
	to        string
	keepHost  bool
	dryRun    bool
	siteFiles string
	keepGoing bool
}

// publishExtra is what load and copy report beside the publish report: for copy, how the image set
// resolved (repositories, blocked, left out); for load, what the archive itself says it lacks.
type publishExtra struct {
	Repositories   []mirror.RepositoryReport `json:"repositories,omitempty"`
	Blocked        []archive.Blocked         `json:"blocked,omitempty"`
	LeftOut        []archive.LeftOut         `json:"leftOut,omitempty"`
	ArchiveLeftOut []archive.LeftOut         `json:"archiveLeftOut,omitempty"`
	Flattened      []mirror.FlattenReport    `json:"flattened,omitempty"` // --sparse-index=flatten (sparse.go)
	// Failures lists, with --keep-going, every image that failed, at the end of the report.
	Failures []string `json:"failures,omitempty"`
}

func (o *publishOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.to, "to", "", "target registry and prefix: HOST[:PORT][/PREFIX] (required)")
	f.BoolVar(&o.keepHost, "keep-host", false, "keep the source registry host as a path element: PREFIX/<host>/<repository>")
	f.BoolVar(&o.dryRun, "dry-run", false, "show where each image would go; push nothing")
	f.BoolVar(&o.keepGoing, "keep-going", false, "push every image that can be; list every failure at the end, and exit 1")
	f.StringVar(&o.siteFiles, "site-files", "", "write the mapping, ImageDigestMirrorSet, ImageTagMirrorSet, registries.conf and containerd hosts.toml files into this directory")
	_ = cmd.MarkFlagRequired("to")
	_ = cmd.MarkFlagDirname("site-files")
}

func (o *publishOptions) publishOpts(g *globalOptions, desc string) mirror.PublishOptions {
	opts := mirror.PublishOptions{
		To:          o.to,
		KeepHost:    o.keepHost,
		DryRun:      o.dryRun,
		Concurrency: g.concurrency,
		Log:         g.logger(),
		Retry:       g.retry(),
	}
	if g.stderrIsTerminal() {
		opts.Progress = &barProgress{desc: desc}
	}
	return opts
}

// finishPublish prints the report, with where its trust came from (nil: nothing was verified), writes
// the site files and turns failures into the exit status.
func finishPublish(cmd *cobra.Command, g *globalOptions, o *publishOptions, rep *mirror.PublishReport, perr error, trust *verify.Trust, extra publishExtra) error {
	if rep == nil {
		return perr
	}
	if o.keepGoing {
		for _, ir := range rep.Images {
			if ir.Status == "failed" {
				extra.Failures = append(extra.Failures, fmt.Sprintf("%s -> %s: %s", ir.Source, ir.Target, ir.Error))
			}
		}
	}
	if o.siteFiles != "" && !rep.DryRun {
		var ms []sitefiles.Mapping
		for _, ir := range rep.Images {
			if ir.Status == "failed" {
				continue
			}
			ms = append(ms, sitefiles.Mapping{Source: ir.Source, SourceRepository: ir.SourceRepository, Target: ir.Repository, Tag: ir.Tag, Digest: ir.Digest})
		}
		if len(ms) > 0 {
			files, err := sitefiles.Write(o.siteFiles, ms)
			if err != nil {
				return fmt.Errorf("--site-files: %w", err)
			}
			g.logger().Info("site files written", "dir", o.siteFiles, "files", strings.Join(files, ", "))
		}
	}
	trustLine, origin := "nothing verified: no trust pinned", (*verify.Origin)(nil)
	if trust != nil {
		trustLine, origin = trust.Source, &trust.Origin
	}
	var err error
	if g.format == "json" {
		enc := json.NewEncoder(out(cmd))
		enc.SetIndent("", "  ")
		err = enc.Encode(struct {
			*mirror.PublishReport
			Trust  string         `json:"trust"`
			Origin *verify.Origin `json:"origin,omitempty"`
			publishExtra
		}{rep, trustLine, origin, extra})
	} else {
		fmt.Fprintf(out(cmd), "trust: %s\n", trustLine)
		err = printPublishReport(out(cmd), rep, extra)
	}
	return publishStatus(rep, perr, err, extra)
}

// publishStatus turns what happened into the exit status: with --keep-going, images that failed
// (listed in extra.Failures) and images left out exit 1 once everything else is done.
func publishStatus(rep *mirror.PublishReport, perr, err error, extra publishExtra) error {
	var altered *archive.CheckError
	if perr != nil && len(extra.Failures) > 0 && !errors.Is(perr, mirror.ErrCheckFailed) && !errors.As(perr, &altered) {
		return &checkError{fmt.Errorf("%d of %d images failed (--keep-going: the others were done): %w", len(extra.Failures), len(rep.Images), perr)}
	}
	if perr == nil && err == nil && len(extra.LeftOut) > 0 {
		return leftOutError(fmt.Sprintf("%d images done", len(rep.Images)), extra.LeftOut)
	}
	if perr != nil {
		if errors.Is(perr, mirror.ErrCheckFailed) {
			return &checkError{perr}
		}
		return perr
	}
	return err
}

func printPublishReport(w io.Writer, r *mirror.PublishReport, extra publishExtra) error {
	var b strings.Builder
	printRepositories(&b, extra.Repositories, r.DryRun)
	printBlocked(&b, extra.Blocked)
	if r.DryRun {
		fmt.Fprintf(&b, "plan (dry run, nothing pushed) into %s:\n", r.Target)
	} else {
		fmt.Fprintf(&b, "into %s:\n", r.Target)
	}
	for _, i := range r.Images {
		fmt.Fprintf(&b, "  %-10s %s -> %s  %s", i.Status, i.Source, i.Target, i.Digest)
		if i.Platforms > 0 || i.Referrers > 0 {
			fmt.Fprintf(&b, "  (%d platforms, %d referrers", i.Platforms, i.Referrers)
			if i.ReferrersBy != "" {
				fmt.Fprintf(&b, " via %s", i.ReferrersBy)
			}
			b.WriteString(")")
		}
		b.WriteString("\n")
		if i.Error != "" {
			fmt.Fprintf(&b, "             error: %s\n", i.Error)
		}
	}
	if !r.DryRun {
		c := r.Blobs
		fmt.Fprintf(&b, "blobs:      %d pushed (%s), %d mounted (%s), %d skipped (%s), %d failed\n",
			c.Pushed, archive.HumanBytes(c.BytesPushed), c.Mounted, archive.HumanBytes(c.BytesMounted), c.Skipped, archive.HumanBytes(c.BytesSkipped), c.Failed)
		fmt.Fprintf(&b, "manifests:  %d pushed, %d skipped\n", r.Manifests.Pushed, r.Manifests.Skipped)
		fmt.Fprintf(&b, "tags:       %d written, %d referrers indexes (tag schema)\n", r.Tags, r.ReferrerIndexes)
		fmt.Fprintf(&b, "verified:   %d manifests read back from the target, identical\n", r.Verified)
		fmt.Fprintf(&b, "time:       %.1fs\n", r.Seconds)
	}
	if len(extra.ArchiveLeftOut) > 0 {
		fmt.Fprintf(&b, "the archive lacks %d images of its image set (saved with --keep-going):\n", len(extra.ArchiveLeftOut))
		for _, l := range extra.ArchiveLeftOut {
			fmt.Fprintf(&b, "  %s\n", l.Reason)
		}
	}
	printLeftOut(&b, extra.LeftOut)
	if len(extra.Failures) > 0 {
		fmt.Fprintf(&b, "failed (%d):\n", len(extra.Failures))
		for _, f := range extra.Failures {
			fmt.Fprintf(&b, "  %s\n", f)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
