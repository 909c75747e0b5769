package charts

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"sigs.k8s.io/yaml"
)

// podSpecAt is where each kind keeps its pod spec (docs/helm-charts.md section 4.4). Other kinds
// (custom resources with an image field) are what the Chart.yaml annotations are for.
var podSpecAt = map[string][]string{
	"Pod":                   {"spec"},
	"Deployment":            {"spec", "template", "spec"},
	"StatefulSet":           {"spec", "template", "spec"},
	"DaemonSet":             {"spec", "template", "spec"},
	"ReplicaSet":            {"spec", "template", "spec"},
	"ReplicationController": {"spec", "template", "spec"},
	"Job":                   {"spec", "template", "spec"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template", "spec"},
	"PodTemplate":           {"template", "spec"},
}

// containerLists are the pod spec's lists of containers, each with an image.
var containerLists = []string{"initContainers", "containers", "ephemeralContainers"}

// imageSet is every image found, as written, with its reasons.
type imageSet map[string][]Reason

// add records one reason for ref, once.
func (s imageSet) add(ref string, r Reason) {
	if !slices.Contains(s[ref], r) {
		s[ref] = append(s[ref], r)
	}
}

// addIncluded adds what the includeDisabled render found and this one did not, marked so.
func (s imageSet) addIncluded(more imageSet) {
	for ref, reasons := range more {
		for _, r := range reasons {
			if !slices.Contains(s[ref], r) {
				r.IncludedBy = includedByDisabled
				s.add(ref, r)
			}
		}
	}
}

// sorted is the set sorted by ref, each image's reasons sorted by their text.
func (s imageSet) sorted() []Image {
	out := make([]Image, 0, len(s))
	for ref, reasons := range s {
		rs := slices.Clone(reasons)
		slices.SortFunc(rs, func(a, b Reason) int { return strings.Compare(a.String(), b.String()) })
		out = append(out, Image{Ref: ref, Reasons: rs})
	}
	slices.SortFunc(out, func(a, b Image) int { return strings.Compare(a.Ref, b.Ref) })
	return out
}

// filesImages finds the images of every rendered template but NOTES.txt (any file ending so, as
// pkg/action/action.go:renderResources drops them: they are printed apart, not objects).
func filesImages(nodes []chartNode, files map[string]string) (imageSet, error) {
	set := imageSet{}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		n := nodeFor(nodes, name)
		if n == nil {
			return nil, fmt.Errorf("%s: %w", name, errNoChart)
		}
		if err := manifestImages(set, Reason{Chart: n.label, Template: name}, files[name]); err != nil {
			return nil, err
		}
	}
	return set, nil
}

// manifestImages splits one rendered template into its YAML documents, as helm does
// (releaseutil.SplitManifests), and adds the images of each; base names the chart and template.
func manifestImages(set imageSet, base Reason, manifest string) error {
	docs := releaseutil.SplitManifests(manifest)
	keys := make([]string, 0, len(docs))
	for k := range docs {
		keys = append(keys, k)
	}
	sort.Sort(releaseutil.BySplitManifestsOrder(keys))
	for i, k := range keys {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(docs[k]), &obj); err != nil {
			return fmt.Errorf("%s: %s: YAML parse error in document %d: %w", base.Chart, base.Template, i+1, err)
		}
		if err := objectImages(set, base, obj); err != nil {
			return err
		}
	}
	return nil
}

// objectImages adds the images of one object's pod spec (each item of a List).
func objectImages(set imageSet, base Reason, obj map[string]any) error {
	kind, _ := obj["kind"].(string)
	if strings.HasSuffix(kind, "List") { // List, and PodList and the like
		items, _ := obj["items"].([]any)
		for _, it := range items {
			if item, ok := it.(map[string]any); ok {
				if err := objectImages(set, base, item); err != nil {
					return err
				}
			}
		}
		return nil
	}
	at, ok := podSpecAt[kind]
	if !ok {
		return nil
	}
	spec, _ := digValue(obj, at...).(map[string]any)
	if spec == nil {
		return nil
	}
	r := base
	r.Kind = kind
	r.Name, _ = digValue(obj, "metadata", "name").(string)
	_, r.Hook = digValue(obj, "metadata", "annotations", "helm.sh/hook").(string)
	return podImages(set, r, spec)
}

// podImages adds the image of every container of a pod spec; r names the object.
func podImages(set imageSet, r Reason, spec map[string]any) error {
	for _, list := range containerLists {
		containers, _ := spec[list].([]any)
		for i, c := range containers {
			container, _ := c.(map[string]any)
			r.Container = fmt.Sprintf("%s[%d]", list, i)
			if name, _ := container["name"].(string); name != "" {
				r.Container += " (" + name + ")"
			}
			image, ok := container["image"].(string)
			if !ok && container["image"] != nil {
				return fmt.Errorf("%s: image %v is not a string", r, container["image"])
			}
			if strings.TrimSpace(image) == "" {
				return fmt.Errorf("%s: empty image", r)
			}
			set.add(image, r)
		}
	}
	return nil
}

// digValue is the value at a path of nested maps, nil when there is none.
func digValue(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}
