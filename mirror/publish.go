package mirror

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/registry"
)

// PublishOptions controls Publish.
type PublishOptions struct {
	// To is the target: HOST[:PORT][/PREFIX].
	To string
	// KeepHost keeps the source registry host as a path element: PREFIX/<host>/<repository>.
	KeepHost bool
	// DryRun maps every image to its target and pushes nothing.
	DryRun      bool
	Concurrency int
	Log         *slog.Logger
	Progress    plan.Progress
	// Retry bounds retries of failed transfers; zero means registry.DefaultRetry.
	Retry registry.Retry
	// RefuseTagMoves leaves a tag that names another digest on the target alone and fails its image
	// (--tag-moves=refuse); by default the tag moves, and the move is reported.
	RefuseTagMoves bool
	// Target, when set, receives the content instead of the registry named by To (tests).
	Target engine.Target
	// tagsRead are the target's tags the site's signing read (siteSign), for the engine's preflight.
	tagsRead []engine.TagRead
}

// target is where Publish puts the plans: opts.Target, or the registry opts.To names.
func (opts PublishOptions) target(regs *registry.Registries) engine.Target {
	if opts.Target != nil {
		return opts.Target
	}
	return &engine.RegistryTarget{Regs: regs, To: opts.To, KeepHost: opts.KeepHost, Retry: opts.Retry, Log: opts.Log}
}

// PublishReport says what Publish did: Copy's report, into Target.
type PublishReport struct {
	Target string `json:"target"`
	DryRun bool   `json:"dryRun,omitempty"`
	engine.Report
	Seconds float64 `json:"seconds"`
}

// TagMoves lists the images whose tag named another digest on the target before the run.
func (r *PublishReport) TagMoves() []engine.ImageReport {
	var moved []engine.ImageReport
	for _, i := range r.Images {
		if i.TagMoved != nil {
			moved = append(moved, i)
		}
	}
	return moved
}

// isCatalog reports whether plans are airlock's own catalog alone (load keeps it on the site; its tag
// is its creation time, and it needs no preflight of its own after the images').
func isCatalog(plans []*plan.ImagePlan) bool {
	return len(plans) == 1 && plans[0].Image.Target == plan.CatalogRepository && plans[0].Image.Registry == "airlock"
}

// Failed reports whether any image failed.
func (r *PublishReport) Failed() bool {
	for _, i := range r.Images {
		if i.Status == "failed" {
			return true
		}
	}
	return false
}

// checkCollisions refuses two different images that would land on the same target tag: the second
// push would move the first one's tag.
func checkCollisions(images []engine.ImageReport) error {
	byTarget := map[string]engine.ImageReport{}
	for _, ir := range images {
		if ir.Tag == "" {
			continue
		}
		if prev, ok := byTarget[ir.Target]; ok && prev.Digest != ir.Digest {
			return fmt.Errorf("%s and %s would both land on %s (different digests): load with --keep-host to keep the source hosts apart, or give one of them a target in the ImageSet", prev.Source, ir.Source, ir.Target)
		}
		byTarget[ir.Target] = ir
	}
	return nil
}

// Publish pushes each plan into its target repository with Copy over a RegistryTarget: blobs (mounted
// from another repository of the same registry when this run already pushed them there), then platform
// manifests and indexes, then referrers after their subjects, then tags last, so no tag ever points at
// content that is not all there. Content the target has is not pushed again. Referrers are pushed as
// they are where the target has the referrers API, and listed in the sha256-<hex> tag-schema index
// where it has not. Afterwards every manifest and tag is read back from the target and checked against
// the source.
func Publish(ctx context.Context, plans []*plan.ImagePlan, regs *registry.Registries, opts PublishOptions) (*PublishReport, error) {
	start := time.Now()
	rep := &PublishReport{Target: opts.To, DryRun: opts.DryRun, Report: engine.Report{Images: make([]engine.ImageReport, len(plans))}}
	for i, ip := range plans {
		name, err := engine.TargetRepository(opts.To, opts.KeepHost, ip.Image)
		if err != nil {
			return nil, err
		}
		rep.Images[i] = engine.NewImageReport(ip, name)
	}
	if err := checkCollisions(rep.Images); err != nil {
		return nil, err
	}
	if opts.DryRun {
		rep.Seconds = time.Since(start).Seconds()
		return rep, nil
	}
	r, err := engine.Copy(ctx, plans, opts.target(regs), engine.CopyOptions{
		Concurrency: opts.Concurrency, Log: opts.Log, Progress: opts.Progress, Retry: opts.Retry,
		Preflight: !isCatalog(plans), RefuseTagMoves: opts.RefuseTagMoves, TagsRead: opts.tagsRead,
	})
	if r == nil {
		return nil, err
	}
	rep.Report, rep.Seconds = *r, time.Since(start).Seconds()
	return rep, err
}
