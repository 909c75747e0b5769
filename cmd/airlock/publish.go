package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror"
	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/plan"
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
	tagMoves  tagMovesFlag
}

// tagMovesFlag is --tag-moves: allow (the default) or refuse; anything else is a usage error.
type tagMovesFlag string

func (f *tagMovesFlag) String() string {
	if *f == "" {
		return "allow"
	}
	return string(*f)
}

func (f *tagMovesFlag) Set(v string) error {
	if v != "allow" && v != "refuse" {
		return fmt.Errorf("want allow or refuse")
	}
	*f = tagMovesFlag(v)
	return nil
}

func (f *tagMovesFlag) Type() string { return "allow|refuse" }

// publishExtra is what load and copy report beside the publish report: for copy, how the image set
// resolved (repositories, blocked, left out); for load, what the archive itself says it lacks.
type publishExtra struct {
	Repositories   []plan.RepositoryReport `json:"repositories,omitempty"`
	Charts         []plan.ChartReport      `json:"charts,omitempty"`
	Blocked        []archive.Blocked       `json:"blocked,omitempty"`
	LeftOut        []archive.LeftOut       `json:"leftOut,omitempty"`
	ArchiveLeftOut []archive.LeftOut       `json:"archiveLeftOut,omitempty"`
	Flattened      []plan.FlattenReport    `json:"flattened,omitempty"` // --sparse-index=flatten (sparse.go)
	// Failures lists, with --keep-going, every image that failed, at the end of the report.
	Failures []string `json:"failures,omitempty"`
	// SiteSigned lists the manifests load --sign-key signed, or found signed by the site already.
	SiteSigned []mirror.SiteSignature `json:"siteSigned,omitempty"`
}

func (o *publishOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.to, "to", "", "target registry and prefix: HOST[:PORT][/PREFIX] (required)")
	f.BoolVar(&o.keepHost, "keep-host", false, "keep the source registry host as a path element: PREFIX/<host>/<repository>")
	f.BoolVar(&o.dryRun, "dry-run", false, "show where each image would go; push nothing")
	f.BoolVar(&o.keepGoing, "keep-going", false, "push every image that can be; list every failure at the end, and exit 1")
	f.StringVar(&o.siteFiles, "site-files", "", "write the mapping, ImageDigestMirrorSet, ImageTagMirrorSet, registries.conf and containerd hosts.toml files into this directory")
	f.Var(&o.tagMoves, "tag-moves", "a tag that names another digest on the target: move it (allow) or leave it and fail that image (refuse); moves are reported either way")
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
		// --tag-moves=refuse
		RefuseTagMoves: o.tagMoves == "refuse",
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
	err := g.emit(cmd, struct {
		*mirror.PublishReport
		Trust  string         `json:"trust"`
		Origin *verify.Origin `json:"origin,omitempty"`
		publishExtra
	}{rep, trustLine, origin, extra}, func(w io.Writer) error {
		fmt.Fprintf(w, "trust: %s\n", trustLine)
		return printPublishReport(w, rep, extra)
	})
	return publishStatus(rep, perr, err, extra)
}

// publishStatus turns what happened into the exit status: 1 when some images were not done (a
// refusal, a refused tag move, a check) and the others were, or images were left out; 2 when nothing
// could be done (the target answered no image before the first blob) or for anything else.
func publishStatus(rep *mirror.PublishReport, perr, err error, extra publishExtra) error {
	if perr == nil && err == nil && len(extra.LeftOut) > 0 {
		return leftOutError(fmt.Sprintf("%d images done", len(rep.Images)), extra.LeftOut)
	}
	var altered *archive.CheckError
	switch {
	case perr == nil:
		return err
	case errors.Is(perr, engine.ErrNothingDone):
		return perr
	case errors.As(perr, &altered):
		return plan.CheckFailed(perr) // the archive was altered: the run stopped, its own message says so
	case rep.Failed():
		failed := 0
		for _, ir := range rep.Images {
			if ir.Status == "failed" {
				failed++
			}
		}
		if failed == len(rep.Images) {
			return plan.CheckFailed(fmt.Errorf("none of the %d images done: %w", failed, perr))
		}
		return plan.CheckFailed(fmt.Errorf("%d of %d images not done (the others were done, and reported): %w", failed, len(rep.Images), perr))
	}
	return perr // a failed check (plan.ErrCheckFailed) exits 1: main.run
}

func printPublishReport(w io.Writer, r *mirror.PublishReport, extra publishExtra) error {
	var b strings.Builder
	printRepositories(&b, extra.Repositories, r.DryRun)
	printCharts(&b, extra.Charts, r.DryRun)
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
		if m := i.TagMoved; m != nil {
			fmt.Fprintf(&b, "             tag moved: %s %s -> %s%s\n", m.Tag, m.From, m.To, map[bool]string{true: " (refused: left alone)"}[m.Refused])
		}
		for _, m := range i.ReferrerTagsMoved {
			fmt.Fprintf(&b, "             referrer tag moved: %s %s -> %s%s\n", m.Tag, m.From, m.To, map[bool]string{true: " (refused: left alone)"}[m.Refused])
		}
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
		printTagMoves(&b, r)
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
	printFlattened(&b, extra.Flattened)
	printSiteSigned(&b, extra.SiteSigned)
	_, err := io.WriteString(w, b.String())
	return err
}

// printSiteSigned says which manifests the site signed (load --sign-key).
func printSiteSigned(b *strings.Builder, signed []mirror.SiteSignature) {
	if len(signed) == 0 {
		return
	}
	written := 0
	for _, s := range signed {
		if s.Action == "written" {
			written++
		}
	}
	fmt.Fprintf(b, "site-signed: %d signed now, %d by the site already (cosign .sig signatures; the import attestation as .att and as a Sigstore bundle referrer):\n", written, len(signed)-written)
	for _, s := range signed {
		fmt.Fprintf(b, "  %-8s %s %s  %s\n", s.Action, s.Kind, s.Digest, s.Tag)
	}
}

// printTagMoves is the summary line of the tags that named another digest on the target.
func printTagMoves(b *strings.Builder, r *mirror.PublishReport) {
	moved, refused := r.TagMoves(), 0
	if len(moved) == 0 {
		return
	}
	for _, i := range moved {
		if i.TagMoved.Refused {
			refused++
		}
	}
	if refused > 0 {
		fmt.Fprintf(b, "tag moves:  %d tag(s) named another digest; %d left alone (--tag-moves=refuse), %d moved\n", len(moved), refused, len(moved)-refused)
		return
	}
	fmt.Fprintf(b, "tag moves:  %d tag(s) moved to a new digest (--tag-moves=refuse leaves them alone)\n", len(moved))
}
