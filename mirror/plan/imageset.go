package plan

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/registry"
)

// PlanOptions controls PlanSet.
type PlanOptions struct {
	// Concurrency bounds how many images are resolved at once.
	Concurrency int
	Log         *slog.Logger
	// Retry bounds retries of failed requests; zero means registry.DefaultRetry.
	Retry registry.Retry
	// Local, if set, is tried first for manifests by digest (see Planner.Local).
	Local Source
	// Progress, if set, counts images resolved.
	Progress Progress
	// KeepGoing plans what resolves and lists the rest in SetPlan.LeftOut, instead of failing.
	KeepGoing bool
}

// RepositoryReport says what one repositories entry of the image set resolved to: the tags the
// registry listed, and for each whether it was picked and by which rule.
type RepositoryReport struct {
	Name   string               `json:"name"`
	Line   int                  `json:"line,omitempty"`
	Listed int                  `json:"listed"`
	Picked []string             `json:"picked"`
	Tags   []config.TagDecision `json:"tags"`
	// Error says why the tags could not be listed; the entry is then left out (see SetPlan.LeftOut).
	Error string `json:"error,omitempty"`
}

// SetPlan is an image set resolved: the plans of the images that resolved, what each repositories
// entry picked, the images the blocked list kept out, and, with PlanOptions.KeepGoing, what did not
// resolve and why.
type SetPlan struct {
	Plans        []*ImagePlan
	Repositories []RepositoryReport
	Blocked      []archive.Blocked
	LeftOut      []archive.LeftOut
	// Charts says, for each charts entry, the versions listed and picked, and the images each chart
	// picked runs, with why.
	Charts []ChartReport
}

// Problem is one image or repository of an image set that did not resolve.
type Problem struct {
	archive.LeftOut
	Err error
}

// ResolutionError lists every problem found resolving an image set, all at once. It matches
// ErrCheckFailed (errors.Is) when one of them is a failed check, such as a moved tag.
type ResolutionError struct {
	Problems []Problem
	// Of is how many images and unlisted repositories the image set named in all.
	Of int
}

func (e *ResolutionError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of the %d images, repositories and charts of the image set did not resolve (each one is listed):", len(e.Problems), e.Of)
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  %s", p.Reason)
	}
	return b.String()
}

// Unwrap returns each problem's error.
func (e *ResolutionError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p.Err
	}
	return errs
}

// PlanSet resolves set: it lists the tags of each repositories entry (every page) and picks them,
// expands the set into images (config.ImageSet.Expand), keeps blocked images out with their rule,
// and plans every other image with its referrers. Problems are collected, not stopped at: without
// o.KeepGoing, any problem fails the run with a *ResolutionError naming all of them; with it, they
// are listed in LeftOut and the plans hold what resolved (an error still when nothing did).
func PlanSet(ctx context.Context, set *config.ImageSet, regs *registry.Registries, o PlanOptions) (*SetPlan, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	sp := &SetPlan{}
	picked, problems := listRepositories(ctx, set, regs, o, sp)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	planner := &Planner{Registries: regs, Referrers: set.Referrers, Log: o.Log, Retry: o.Retry, Local: o.Local}
	cs := planCharts(ctx, set, planner, o)
	sp.Charts = cs.reports
	problems = append(problems, cs.problems...)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	images, blocked := WithImages(set, cs.images).Expand(picked)
	sp.Blocked = append(sp.Blocked, cs.blocked...)
	for _, b := range blocked {
		src := b.Image.String()
		sp.Blocked = append(sp.Blocked, archive.Blocked{Source: src, Rule: b.Rule, Charts: cs.markBlocked(src, b.Rule)})
		o.Log.Info("blocked", "image", src, "rule", b.Rule)
	}
	plans, failed, err := planImages(ctx, planner, images, o)
	if err != nil {
		return nil, err
	}
	problems = append(problems, failed...)
	for _, p := range append(cs.plans, plans...) {
		if p != nil {
			sp.Plans = append(sp.Plans, p)
		}
	}
	if len(problems) > 0 && (!o.KeepGoing || len(sp.Plans) == 0) {
		return nil, &ResolutionError{Problems: problems, Of: len(images) + len(problems) - len(failed)}
	}
	for _, p := range problems {
		sp.LeftOut = append(sp.LeftOut, p.LeftOut)
	}
	return sp, nil
}

// WithImages is set with more images listed after its own (those its charts run, or their
// artifacts): the same blocked list and the same duplicate rule apply to them.
func WithImages(set *config.ImageSet, more []config.Image) *config.ImageSet {
	if len(more) == 0 {
		return set
	}
	s := *set
	s.Images = append(slices.Clone(set.Images), more...)
	return &s
}

// listRepositories lists and picks the tags of every repositories entry, a few at a time, and
// records what each decided in sp.Repositories. It returns the tags picked, by canonical repository
// name, and a problem for each repository whose tags could not be listed.
func listRepositories(ctx context.Context, set *config.ImageSet, regs *registry.Registries, o PlanOptions, sp *SetPlan) (map[string][]string, []Problem) {
	sp.Repositories = make([]RepositoryReport, len(set.Repositories))
	errs := make([]error, len(set.Repositories))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(o.Concurrency, 1))
	for i, r := range set.Repositories {
		g.Go(func() error {
			rep := &sp.Repositories[i]
			rep.Name, rep.Line = r.String(), r.Line
			o.Log.Info("listing tags", "repository", r.String())
			tags, err := ListTags(gctx, regs, r.String(), o.Retry)
			if err != nil {
				errs[i] = err
				rep.Error = err.Error()
				return nil
			}
			rep.Listed = len(tags)
			rep.Picked, rep.Tags = r.Pick(tags)
			if rep.Picked == nil {
				rep.Picked = []string{}
			}
			return nil
		})
	}
	_ = g.Wait()
	picked := make(map[string][]string)
	var problems []Problem
	for i, r := range set.Repositories {
		if errs[i] != nil {
			reason := fmt.Sprintf("%s (ImageSet line %d): its tags could not be listed: %v; check the repository name and that the registry lets you read it", r.String(), r.Line, errs[i])
			problems = append(problems, Problem{LeftOut: archive.LeftOut{Source: r.String(), Line: r.Line, Reason: reason}, Err: errs[i]})
			continue
		}
		picked[r.String()] = sp.Repositories[i].Picked
	}
	return picked, problems
}

// planImages plans each image, a few at a time. A plan that fails is nil, and its problem is
// returned; only a cancelled context stops the others.
func planImages(ctx context.Context, planner *Planner, images []config.Image, o PlanOptions) ([]*ImagePlan, []Problem, error) {
	if o.Progress != nil {
		o.Progress.Start(int64(len(images)))
		defer o.Progress.Finish()
	}
	plans := make([]*ImagePlan, len(images))
	errs := make([]error, len(images))
	g := new(errgroup.Group)
	g.SetLimit(max(o.Concurrency, 1))
	for i, img := range images {
		g.Go(func() error {
			if ctx.Err() != nil {
				return nil
			}
			o.Log.Info("resolving", "image", img.String())
			plans[i], errs[i] = planner.Plan(ctx, img)
			if o.Progress != nil {
				o.Progress.Add(1)
			}
			return nil
		})
	}
	_ = g.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	var problems []Problem
	for i, err := range errs {
		if err != nil {
			plans[i] = nil
			problems = append(problems, Problem{LeftOut: archive.LeftOut{Source: images[i].String(), Line: images[i].Line, Reason: err.Error()}, Err: err})
		}
	}
	return plans, problems, nil
}
