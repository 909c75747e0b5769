package plan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/errdef"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/charts"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/registry"
	"airlock.dev/airlock/vocab"
)

// ChartReport says what one charts entry of the image set resolved to: for an HTTP chart repository,
// the versions its index.yaml listed and which were picked by which rule; then each chart picked,
// with the images it runs and why (the catalog's record).
type ChartReport struct {
	Entry    string               `json:"entry"`
	Line     int                  `json:"line,omitempty"`
	Listed   int                  `json:"listed,omitempty"`
	Versions []config.TagDecision `json:"versions,omitempty"`
	Warnings []string             `json:"warnings,omitempty"`
	Charts   []archive.Chart      `json:"charts"`
}

// chartSet is what the charts entries of an image set resolved to.
type chartSet struct {
	reports  []ChartReport
	plans    []*ImagePlan   // chart artifacts airlock made for charts from HTTP repositories
	images   []config.Image // the images the charts run, and the OCI charts themselves
	problems []Problem
	blocked  []archive.Blocked        // charts a blocked rule kept out, with the images they run
	indexes  map[string]*fetchedIndex // by repository URL: each index.yaml is read once
}

// fetchedIndex is one repository's index.yaml as FetchIndex returned it.
type fetchedIndex struct {
	idx      *charts.IndexFile
	warnings []string
	err      error
}

// fetchedChart is one chart version, its .tgz in hand.
type fetchedChart struct {
	image config.Image // the chart artifact's source reference
	tgz   []byte
	rec   archive.Chart
}

// planCharts resolves every charts entry: the chart versions it picks, each chart's artifact, and
// the images each chart runs, found by rendering it (package charts). Problems are collected, one per
// entry or chart version, and name the ImageSet field that fixes them.
func planCharts(ctx context.Context, set *config.ImageSet, p *Planner, o PlanOptions) *chartSet {
	regs := p.Registries
	cs := &chartSet{reports: make([]ChartReport, len(set.Charts)), indexes: map[string]*fetchedIndex{}}
	for i, c := range set.Charts {
		rep := &cs.reports[i]
		rep.Entry, rep.Line = c.String(), c.Line
		field := fmt.Sprintf("charts[%d]", i)
		o.Log.Info("resolving chart", "entry", c.String())
		var got []fetchedChart
		var err error
		switch {
		case c.Repo != "":
			got, err = cs.httpCharts(ctx, set, regs, c, rep)
		case cs.blockedOCI(set, c):
			continue
		default:
			got, err = ociChart(ctx, p, c)
		}
		if err != nil {
			cs.problem(c, field, err)
			continue
		}
		if c.FindImages && len(got) > 0 {
			for _, w := range valueWarnings(c, field) {
				o.Log.Warn(w)
				rep.Warnings = append(rep.Warnings, w)
			}
		}
		for _, g := range got {
			if c.Repo == "" {
				cs.images = append(cs.images, g.image) // the OCI chart itself, planned as an image
			}
			if c.FindImages {
				if err := cs.render(ctx, c, field, &g); err != nil {
					cs.problem(c, field, err)
					continue
				}
			}
			rep.Charts = append(rep.Charts, g.rec)
		}
	}
	return cs
}

// isBlocked reports whether a blocked rule keeps the chart img out, and records it: a blocked chart
// is neither fetched nor rendered, so the images it runs are not added either.
func (cs *chartSet) isBlocked(set *config.ImageSet, img config.Image) (string, bool) {
	rule, blocked := set.BlockedBy(img)
	if blocked {
		cs.blocked = append(cs.blocked, archive.Blocked{Source: img.String(), Rule: rule})
	}
	return rule, blocked
}

func (cs *chartSet) blockedOCI(set *config.ImageSet, c config.Chart) bool {
	_, blocked := cs.isBlocked(set, *c.Ref)
	return blocked
}

// dropBlocked turns the decision that picked version into one that drops it by the blocked rule.
func dropBlocked(rep *ChartReport, version, rule string) {
	for i, d := range rep.Versions {
		if d.Tag == version {
			rep.Versions[i] = config.TagDecision{Tag: version, Rule: "blocked " + rule}
		}
	}
}

// markBlocked records, on every chart that runs the image src, that the blocked rule kept it out,
// and returns those charts ("app 1.4.2").
func (cs *chartSet) markBlocked(src, rule string) []string {
	var by []string
	for i := range cs.reports {
		for j := range cs.reports[i].Charts {
			c := &cs.reports[i].Charts[j]
			for k := range c.Images {
				if c.Images[k].Source == src {
					c.Images[k].Blocked = rule
					by = append(by, c.Name+" "+c.Version)
				}
			}
		}
	}
	return by
}

func (cs *chartSet) problem(c config.Chart, field string, err error) {
	reason := fmt.Sprintf("%s (ImageSet line %d, %s): %v", c.String(), c.Line, field, err)
	cs.problems = append(cs.problems, Problem{LeftOut: archive.LeftOut{Source: c.String(), Line: c.Line, Reason: reason}, Err: err})
}

// httpCharts reads the entry's index.yaml, picks versions as a repositories entry picks tags, and
// fetches each picked chart, checked against the index digest, into an artifact plan.
func (cs *chartSet) httpCharts(ctx context.Context, set *config.ImageSet, regs *registry.Registries, c config.Chart, rep *ChartReport) ([]fetchedChart, error) {
	fi := cs.indexes[c.Repo]
	if fi == nil {
		fi = &fetchedIndex{}
		fi.idx, fi.warnings, fi.err = charts.FetchIndex(ctx, regs.HTTP(), c.Repo)
		cs.indexes[c.Repo] = fi
	}
	if fi.err != nil {
		return nil, fi.err
	}
	idx := fi.idx
	rep.Warnings = fi.warnings
	entries := idx.Entries[c.Name]
	if len(entries) == 0 {
		return nil, fmt.Errorf("the index.yaml of %s lists no chart named %q; check charts[].name", c.Repo, c.Name)
	}
	byVersion := map[string]*charts.ChartVersion{}
	var versions []string
	for _, cv := range entries {
		if cv.Removed {
			rep.Versions = append(rep.Versions, config.TagDecision{Tag: cv.Version, Rule: "removed"})
			continue
		}
		byVersion[cv.Version] = cv
		versions = append(versions, cv.Version)
	}
	picked, decisions := c.Filter().Pick(versions)
	rep.Listed, rep.Versions = len(entries), append(decisions, rep.Versions...)
	var got []fetchedChart
	for _, v := range picked {
		img, err := ChartSource(c, v)
		if err != nil {
			return nil, err
		}
		if rule, blocked := cs.isBlocked(set, img); blocked {
			dropBlocked(rep, v, rule)
			continue
		}
		g, err := cs.httpChart(ctx, regs, c, img, byVersion[v])
		if err != nil {
			return nil, err
		}
		got = append(got, g)
	}
	return got, nil
}

// httpChart fetches one chart version and makes its OCI artifact, as `helm push` would.
func (cs *chartSet) httpChart(ctx context.Context, regs *registry.Registries, c config.Chart, img config.Image, cv *charts.ChartVersion) (fetchedChart, error) {
	f, err := charts.Fetch(ctx, regs.HTTP(), c.Repo, cv)
	if errors.Is(err, charts.ErrDigestMismatch) {
		return fetchedChart{}, CheckFailed(err)
	} else if err != nil {
		return fetchedChart{}, err
	}
	if c.Digest != "" && strings.TrimPrefix(c.Digest, "sha256:") != f.Digest.Encoded() {
		return fetchedChart{}, CheckFailed(fmt.Errorf("%s %s: the chart's sha256 is %s but charts[].digest pins %s", f.Name, f.Version, f.Digest.Encoded(), c.Digest))
	}
	art, err := charts.NewArtifact(f.Chart, f.Prov, f.Created)
	if err != nil {
		return fetchedChart{}, fmt.Errorf("%s %s: %w", f.Name, f.Version, err)
	}
	p, err := artifactPlan(ctx, img, art)
	if err != nil {
		return fetchedChart{}, err
	}
	cs.plans = append(cs.plans, p)
	rec := archive.Chart{Entry: c.String(), Name: f.Name, Version: f.Version, Source: img.String(), Digest: art.Desc.Digest, ChartDigest: f.Digest, Provenance: f.Prov != nil}
	return fetchedChart{image: img, tgz: f.Chart, rec: rec}, nil
}

// ChartSource names a chart from an HTTP repository as an image: HOST/URLPATH/NAME:TAG, so that load
// maps it like any other (https://charts.example.com/stable + app 1.4.2 is
// charts.example.com/stable/app:1.4.2).
func ChartSource(c config.Chart, version string) (config.Image, error) {
	u, err := url.Parse(c.Repo)
	if err != nil {
		return config.Image{}, err
	}
	name := strings.ToLower(u.Host) + strings.TrimSuffix(u.Path, "/") + "/" + c.Name + ":" + charts.ChartTag(version)
	img, err := config.ParseReference(name)
	if err != nil {
		return config.Image{}, fmt.Errorf("chart %s %s cannot be named %s in a registry: %w", c.Name, version, name, err)
	}
	if img.Registry != strings.ToLower(u.Host) {
		// "http://charts/" + app would read as docker.io/charts/app.
		return config.Image{}, fmt.Errorf("chart %s %s cannot be named after the repository's host %q: %s reads as %s; reach the repository by a name with a dot or a port", c.Name, version, u.Host, name, img.String())
	}
	img.Target, img.Line = c.Target, c.Line
	return img, nil
}

// artifactPlan is the plan of a chart artifact airlock made: its content is held in memory.
func artifactPlan(ctx context.Context, img config.Image, art *charts.Artifact) (*ImagePlan, error) {
	store := memory.New()
	blobs := append([]ocispec.Descriptor{art.Config}, art.Layers...)
	for _, d := range blobs {
		if err := store.Push(ctx, d, bytes.NewReader(art.Blobs[d.Digest])); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
			return nil, err
		}
	}
	if err := store.Push(ctx, art.Desc, bytes.NewReader(art.Manifest)); err != nil {
		return nil, err
	}
	if err := store.Tag(ctx, art.Desc, img.Tag); err != nil {
		return nil, err
	}
	root := &Node{Desc: art.Desc, Manifest: art.Manifest, Repository: img.RepositoryRef(), Blobs: blobs}
	return &ImagePlan{Image: img, Source: img.String(), Root: root, Content: store, Made: true}, nil
}

// ociChart resolves an OCI chart as the planner resolves an image, and keeps the root it read for
// p's Plan of the chart (its digest and referrers kept): what is rendered is what is saved. It
// reads the chart's content layer, to render it, when c finds images.
func ociChart(ctx context.Context, p *Planner, c config.Chart) ([]fetchedChart, error) {
	img := *c.Ref
	img.Target, img.Line = c.Target, c.Line
	repo, err := p.Registries.Repository(img.RepositoryRef())
	if err != nil {
		return nil, err
	}
	desc, b, err := p.resolve(ctx, repo, img)
	if err != nil {
		return nil, err
	}
	layer, err := chartLayer(img, b)
	if err != nil {
		return nil, err
	}
	if p.roots == nil {
		p.roots = map[string]resolved{}
	}
	p.roots[img.String()] = resolved{desc, b}
	var tgz []byte
	if c.FindImages {
		tgz, err = Retried(ctx, p.retry(), "fetch chart "+img.String(), func(ctx context.Context) ([]byte, error) {
			return archive.ReadVerified(ctx, repo, layer, vocab.MaxChartSize)
		})
		if err != nil {
			return nil, err
		}
	}
	rec := archive.Chart{Entry: c.String(), Source: img.String(), Digest: desc.Digest, ChartDigest: layer.Digest}
	return []fetchedChart{{image: img, tgz: tgz, rec: rec}}, nil
}

// chartLayer returns the chart content layer of an OCI chart's manifest, refusing an artifact whose
// config is not Helm's.
func chartLayer(img config.Image, manifest []byte) (ocispec.Descriptor, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%s: manifest: %w", img, err)
	}
	if m.Config.MediaType != vocab.HelmConfigMediaType {
		return ocispec.Descriptor{}, fmt.Errorf("%s is not a Helm chart: its config media type is %q, not %q; list it under images", img, m.Config.MediaType, vocab.HelmConfigMediaType)
	}
	l, _, err := vocab.HelmChartLayers(m)
	switch {
	case err != nil:
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w", img, err)
	case l.Size > vocab.MaxChartSize:
		return ocispec.Descriptor{}, fmt.Errorf("%s: its chart content layer is %d bytes, more than the %d Helm loads", img, l.Size, vocab.MaxChartSize)
	}
	return *l, nil
}

// render renders one chart and adds the images it runs to the set, each with its reasons.
func (cs *chartSet) render(ctx context.Context, c config.Chart, field string, g *fetchedChart) error {
	values := append(append([][]byte{}, c.ValuesFiles...), c.Values)
	if c.Values == nil {
		values = values[:len(values)-1]
	}
	r, err := charts.Render(ctx, g.tgz, charts.RenderOptions{Values: values, KubeVersion: c.KubeVersion, APIVersions: c.APIVersions, IncludeDisabled: c.IncludeDisabled, IncludeAllDisabled: c.IncludeAllDisabled})
	if err != nil {
		return renderHint(field, err)
	}
	g.rec.Name, g.rec.Version, g.rec.KubeVersion = r.Name, r.Version, r.KubeVersion
	for _, s := range r.Subcharts {
		if !s.Enabled {
			g.rec.Skipped = append(g.rec.Skipped, fmt.Sprintf("%s (%s)", s.Path, s.SkippedBy))
		}
	}
	for _, im := range r.Images {
		img, err := config.ParseReference(im.Ref)
		if err != nil {
			return fmt.Errorf("%s %s runs image %q (%s): %w", r.Name, r.Version, im.Ref, im.Reasons[0], err)
		}
		img.Platforms, img.Line = c.Platforms, c.Line
		cs.images = append(cs.images, img)
		ci := archive.ChartImage{Source: img.String()}
		for _, why := range im.Reasons {
			ci.Reasons = append(ci.Reasons, why.String())
		}
		g.rec.Images = append(g.rec.Images, ci)
	}
	return nil
}

// valueWarnings lists the values of the entry that Helm reads as other than written (tag: 1.20 is
// 1.2), each named by its ImageSet field or values file.
func valueWarnings(c config.Chart, field string) []string {
	var out []string
	for i, doc := range c.ValuesFiles {
		for _, w := range charts.NumberWarnings(doc) {
			out = append(out, fmt.Sprintf("%s.valuesFiles[%d] (%s): %s", field, i, c.ValuesFileNames[i], w))
		}
	}
	for _, w := range charts.NumberWarnings(c.Values) {
		out = append(out, fmt.Sprintf("%s.values.%s", field, w))
	}
	return out
}

// renderHint adds to a chart that did not render the ImageSet field that fixes it.
func renderHint(field string, err error) error {
	var re *charts.RenderError
	switch {
	case !errors.As(err, &re):
		return err
	case re.ValuePath != "":
		return fmt.Errorf("%w; set %s.values.%s in the ImageSet", err, field, re.ValuePath)
	case strings.Contains(re.Msg, "requires Kubernetes"):
		return fmt.Errorf("%w; set %s.kubeVersion to the site cluster's version", err, field)
	}
	return err
}
