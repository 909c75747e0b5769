package charts

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	commonutil "helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
)

// includedByDisabled is Reason.IncludedBy for what only the includeDisabled render found.
const includedByDisabled = "includeDisabled"

// releaseOptions are the release values templates see, as `helm template` with release "release"
// in namespace "default" (pkg/action/install.go:RunWithContext).
var releaseOptions = common.ReleaseOptions{Name: "release", Namespace: "default", Revision: 1, IsInstall: true}

// Render loads the chart archive (.tgz bytes), applies the values, and renders it as `helm template`
// would for o.KubeVersion, then lists every image it runs with its reasons.
//
// Subcharts that a condition or tag disables are reported in Rendered.Subcharts and not rendered,
// unless o.IncludeDisabled names them (or o.IncludeAllDisabled is set): then the chart is rendered a
// second time with their conditions and tags set to true, and what only that render found carries
// IncludedBy "includeDisabled". A chart that does not render is a *RenderError.
func Render(ctx context.Context, chartTgz []byte, o RenderOptions) (*Rendered, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	vals, err := userValues(o.Values)
	if err != nil {
		return nil, err
	}
	kube := cmp.Or(o.KubeVersion, DefaultKubeVersion)
	first, err := renderPass(ctx, chartTgz, vals, kube, o.APIVersions)
	if err != nil {
		return nil, err
	}
	out := &Rendered{Name: first.name, Version: first.version, KubeVersion: kube}
	for _, d := range first.deps {
		out.Subcharts = append(out.Subcharts, d.sub)
	}
	overlay, err := includeOverlay(first, o)
	if err != nil {
		return nil, err
	}
	if overlay != nil {
		second, err := renderPass(ctx, chartTgz, loader.MergeMaps(vals, overlay), kube, o.APIVersions)
		if err != nil {
			return nil, fmt.Errorf("rendering with includeDisabled subcharts enabled: %w", err)
		}
		first.images.addIncluded(second.images)
	}
	out.Images = first.images.sorted()
	return out, nil
}

// userValues parses each values document and merges them in order, as `helm template -f a -f b`
// does (pkg/cli/values/options.go:MergeValues).
func userValues(docs [][]byte) (map[string]any, error) {
	vals := map[string]any{}
	for i, doc := range docs {
		v, err := loader.LoadValues(bytes.NewReader(doc))
		if err != nil {
			return nil, fmt.Errorf("values document %d: %w", i+1, err)
		}
		vals = loader.MergeMaps(vals, v)
	}
	return vals, nil
}

// rendering is what one render of the chart found.
type rendering struct {
	name, version string
	label         string // "app 1.4.2"
	deps          []depInfo
	images        imageSet
}

// renderPass is the render path of docs/helm-charts.md section 4.1, run on a fresh copy of the chart
// (ProcessDependencies mutates it).
func renderPass(ctx context.Context, tgz []byte, vals map[string]any, kube string, apis []string) (*rendering, error) {
	ch, err := loader.LoadArchive(bytes.NewReader(tgz))
	if err != nil {
		return nil, fmt.Errorf("loading chart: %w", err)
	}
	p := &rendering{name: ch.Name(), version: ch.Metadata.Version}
	p.label = p.name + " " + p.version
	if ch.Metadata.Type == "library" {
		return nil, fmt.Errorf("%s is a library chart: it is not installable", p.label)
	}
	if p.deps, err = snapshotDeps(ch, ch.Name(), ""); err != nil {
		return nil, fmt.Errorf("%s: %w", p.label, err)
	}
	if err := chartutil.ProcessDependencies(ch, vals); err != nil {
		return nil, &RenderError{Chart: p.label, Msg: "chart dependencies processing failed: " + err.Error()}
	}
	rvals, err := renderValues(p.label, ch, vals, kube, apis)
	if err != nil {
		return nil, err
	}
	nodes := chartNodes(ch, p.deps)
	coalesced, _ := rvals["Values"].(common.Values)
	markEnabled(p.deps, nodes, coalesced)
	files, err := engine.Engine{}.RenderWithContext(ctx, ch, rvals)
	if err != nil {
		return nil, renderFailure(p.label, nodes, coalesced, err)
	}
	if p.images, err = filesImages(nodes, files); err != nil {
		return nil, err
	}
	if err := p.annotationImages(nodes); err != nil {
		return nil, err
	}
	return p, nil
}

// renderValues sets the capabilities (KubeVersion always explicit: the default differs between a
// test binary and a real one), checks the chart's kubeVersion constraint, and coalesces the values
// with the chart's defaults, checking values.schema.json. apis are added to the API versions templates
// see (.Capabilities.APIVersions), as helm template --api-versions adds them.
func renderValues(label string, ch *chart.Chart, vals map[string]any, kube string, apis []string) (common.Values, error) {
	kv, err := common.ParseKubeVersion(kube)
	if err != nil {
		return nil, fmt.Errorf("kubeVersion %q: %w", kube, err)
	}
	caps := common.DefaultCapabilities.Copy()
	caps.KubeVersion = *kv
	// A new slice: Copy shares DefaultCapabilities' APIVersions, which append could write into.
	caps.APIVersions = slices.Concat(caps.APIVersions, apis)
	if c := ch.Metadata.KubeVersion; c != "" && !chartutil.IsCompatibleRange(c, caps.KubeVersion.String()) {
		return nil, &RenderError{Chart: label, Msg: fmt.Sprintf("%s requires Kubernetes %s; kubeVersion is %s", label, c, kube)}
	}
	rvals, err := commonutil.ToRenderValuesWithSchemaValidation(ch, vals, releaseOptions, caps, false)
	if err != nil {
		return nil, &RenderError{Chart: label, Msg: err.Error()}
	}
	return rvals, nil
}

// chartNode is one chart of the rendered tree (after ProcessDependencies: enabled ones only).
type chartNode struct {
	ch     *chart.Chart
	full   string // as the engine names its templates' directory: "app/charts/db"
	path   string // "app/db"
	prefix string // where its values are in the top chart's values: "db."
	label  string // "app/db (chart postgres-lite 12.1.0, alias db)", "app/cache 1.0.0"
}

// chartNodes lists the chart and its subcharts, parents first. An aliased subchart is labelled with
// the chart behind its alias, from deps (ProcessDependencies renamed it to the alias).
func chartNodes(ch *chart.Chart, deps []depInfo) []chartNode {
	aliased := map[string]Subchart{}
	for _, d := range deps {
		if d.sub.Alias != "" && d.sub.Alias != d.sub.Chart {
			aliased[d.sub.Path] = d.sub
		}
	}
	var out []chartNode
	var walk func(c *chart.Chart, path, prefix string)
	walk = func(c *chart.Chart, path, prefix string) {
		label := path + " " + c.Metadata.Version
		if s, ok := aliased[path]; ok {
			label = fmt.Sprintf("%s (chart %s %s, alias %s)", path, s.Chart, c.Metadata.Version, s.Alias)
		}
		out = append(out, chartNode{ch: c, full: c.ChartFullPath(), path: path, prefix: prefix, label: label})
		for _, d := range c.Dependencies() {
			walk(d, path+"/"+d.Name(), prefix+d.Name()+".")
		}
	}
	walk(ch, ch.Name(), "")
	return out
}

// nodeFor is the chart a rendered template belongs to (the longest directory prefix).
func nodeFor(nodes []chartNode, template string) *chartNode {
	var best *chartNode
	for i := range nodes {
		n := &nodes[i]
		if strings.HasPrefix(template, n.full+"/") && (best == nil || len(n.full) > len(best.full)) {
			best = n
		}
	}
	return best
}

// depInfo is one dependency as Chart.yaml declares it, copied before ProcessDependencies renames
// aliased ones and removes disabled ones.
type depInfo struct {
	sub       Subchart
	parent    string // the declaring chart's path: "app"
	prefix    string // the declaring chart's values prefix: "" for the top chart
	key       string // alias or name: where its values are under the parent's
	condition string
	tags      []string
	defaults  common.Values // the subchart's own values.yaml
}

// snapshotDeps copies every dependency of ch and its subcharts, and refuses one with no chart in
// charts/ (pkg/action/install.go:CheckDependencies; ProcessDependencies silently ignores it).
func snapshotDeps(ch *chart.Chart, path, prefix string) ([]depInfo, error) {
	var out []depInfo
	for _, d := range ch.Metadata.Dependencies {
		if d == nil {
			continue
		}
		sub := dependencyChart(ch, d)
		if sub == nil {
			return nil, fmt.Errorf("dependency %s %s of %s is in Chart.yaml but not in its charts/ directory", d.Name, d.Version, path)
		}
		key := cmp.Or(d.Alias, d.Name)
		info := depInfo{
			sub:    Subchart{Path: path + "/" + key, Chart: d.Name, Version: sub.Metadata.Version, Alias: d.Alias},
			parent: path, prefix: prefix, key: key, condition: d.Condition,
			tags: slices.Clone(d.Tags), defaults: sub.Values,
		}
		nested, err := snapshotDeps(sub, info.sub.Path, prefix+key+".")
		if err != nil {
			return nil, err
		}
		out = append(append(out, info), nested...)
	}
	return out, nil
}

// dependencyChart is the chart in charts/ a dependency names: same name and a version in its range
// (chartutil's getAliasDependency), or else the same name only.
func dependencyChart(ch *chart.Chart, d *chart.Dependency) *chart.Chart {
	var byName *chart.Chart
	for _, c := range ch.Dependencies() {
		if c.Name() != d.Name {
			continue
		}
		if chartutil.IsCompatibleRange(d.Version, c.Metadata.Version) {
			return c
		}
		byName = cmp.Or(byName, c)
	}
	return byName
}

// markEnabled sets each dependency's Enabled (it is in the rendered tree) and, when it is not, why.
func markEnabled(deps []depInfo, nodes []chartNode, vals common.Values) {
	rendered := map[string]bool{}
	for _, n := range nodes {
		rendered[n.path] = true
	}
	for i := range deps {
		d := &deps[i]
		d.sub.Enabled = rendered[d.sub.Path]
		switch {
		case d.sub.Enabled:
		case !rendered[d.parent]:
			d.sub.SkippedBy = "parent " + d.parent + " is skipped"
		default:
			d.sub.SkippedBy = d.skippedBy(vals)
		}
	}
}

// skippedBy says which condition or tags disabled d, evaluated as chartutil's
// processDependencyConditions and processDependencyTags do: the first path of the condition that
// is a bool wins, else tags. A condition the coalesced values lack may be in the subchart's own
// values.yaml (helm coalesced it before it removed the subchart).
func (d *depInfo) skippedBy(vals common.Values) string {
	for c := range strings.SplitSeq(d.condition, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		v, err := vals.PathValue(d.prefix + c)
		if rest, ok := strings.CutPrefix(c, d.key+"."); err != nil && ok && d.defaults != nil {
			v, err = d.defaults.PathValue(rest)
		}
		if b, ok := v.(bool); ok && err == nil {
			return fmt.Sprintf("condition %s = %t", c, b)
		}
	}
	var off []string
	if tags, err := vals.Table("tags"); err == nil {
		for _, t := range d.tags {
			if b, ok := tags[t].(bool); ok && !b {
				off = append(off, t)
			}
		}
	}
	if len(off) > 0 {
		return fmt.Sprintf("tags %s = false", strings.Join(off, ", "))
	}
	return "condition or tags"
}

// includeOverlay is the values that enable the disabled subcharts o asks for (and their disabled
// parents): each path of their condition, and each of their tags, set to true. Nil when there is
// nothing to enable.
func includeOverlay(p *rendering, o RenderOptions) (map[string]any, error) {
	want := map[string]bool{}
	for _, name := range o.IncludeDisabled {
		found := false
		for _, d := range p.deps {
			if name == d.sub.Path || name == d.sub.Chart || name == d.key {
				found = true
				want[d.sub.Path] = true
			}
		}
		if !found {
			return nil, fmt.Errorf("%s: includeDisabled names %q, which is not one of its subcharts (%s)", p.label, name, depPaths(p.deps))
		}
	}
	var overlay map[string]any
	for _, d := range p.deps {
		if d.sub.Enabled || !(o.IncludeAllDisabled || wantsUnder(want, d.sub.Path)) {
			continue
		}
		if overlay == nil {
			overlay = map[string]any{}
		}
		for c := range strings.SplitSeq(d.condition, ",") {
			if c = strings.TrimSpace(c); c != "" {
				setValuePath(overlay, d.prefix+c, true)
			}
		}
		for _, t := range d.tags {
			setValuePath(overlay, "tags."+t, true)
		}
	}
	return overlay, nil
}

// wantsUnder says whether path or a subchart under it is wanted.
func wantsUnder(want map[string]bool, path string) bool {
	for w := range want {
		if w == path || strings.HasPrefix(w, path+"/") {
			return true
		}
	}
	return false
}

func depPaths(deps []depInfo) string {
	var paths []string
	for _, d := range deps {
		paths = append(paths, d.sub.Path)
	}
	if len(paths) == 0 {
		return "it has none"
	}
	return strings.Join(paths, ", ")
}

// setPath sets a dotted path in nested maps, replacing anything in the way that is not a map.
func setValuePath(m map[string]any, path string, v any) {
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = v
}

// errNoChart is returned for templates the rendered tree has no chart for (cannot happen with
// helm's engine; kept as a guard).
var errNoChart = errors.New("no chart for template")
