package charts

import (
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// imageAnnotations are the Chart.yaml annotations that list images a chart runs without a template
// naming them (an operator's operands, say): helm.sh/images (HIP-0015, draft; helm v4.3.2 does not
// read it) and artifacthub.io/images. Both are a YAML string holding a list of {name, image, ...}.
var imageAnnotations = []string{"helm.sh/images", "artifacthub.io/images"}

// annotationImages adds the images that the annotations of the chart and of each enabled subchart
// name. An entry whose dependency is a skipped subchart of that chart is skipped with it.
func (p *rendering) annotationImages(nodes []chartNode) error {
	for _, n := range nodes {
		for _, key := range imageAnnotations {
			text, ok := n.ch.Metadata.Annotations[key]
			if !ok {
				continue
			}
			entries, err := parseImageAnnotation(text)
			if err != nil {
				return fmt.Errorf("%s: Chart.yaml annotation %s%w", n.label, key, err)
			}
			for _, e := range entries {
				if p.skippedDependency(n.path, e.dependency) {
					continue
				}
				p.images.add(e.image, Reason{Chart: n.label, Annotation: key, Entry: e.name})
			}
		}
	}
	return nil
}

// skippedDependency says whether dep names (by alias or chart name) a skipped subchart of the chart
// at parent. A name that is none of its subcharts is not skipped: the image is kept.
func (p *rendering) skippedDependency(parent, dep string) bool {
	if dep == "" {
		return false
	}
	for _, d := range p.deps {
		if d.parent == parent && (d.key == dep || d.sub.Chart == dep) && !d.sub.Enabled {
			return true
		}
	}
	return false
}

// annotationEntry is one entry of an images annotation.
type annotationEntry struct {
	name, image, dependency string
}

// parseImageAnnotation reads an images annotation leniently: fields other than name, image and
// dependency are ignored, and so is any type of them. Each entry must be a mapping with a non-empty
// image; an entry without a name is named by its index, "[2]". Errors start with the entry's index
// ("[2].image: empty") or with ": " when the whole text is wrong.
func parseImageAnnotation(text string) ([]annotationEntry, error) {
	var raw []any
	if err := yaml.Unmarshal([]byte(text), &raw); err != nil {
		return nil, fmt.Errorf(": not a YAML list: %w", err)
	}
	out := make([]annotationEntry, 0, len(raw))
	for i, item := range raw {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("[%d]: not a mapping with name and image", i)
		}
		e := annotationEntry{}
		e.name, _ = m["name"].(string)
		e.dependency, _ = m["dependency"].(string)
		image, ok := m["image"].(string)
		switch {
		case !ok && m["image"] != nil:
			return nil, fmt.Errorf("[%d].image: %v is not a string", i, m["image"])
		case strings.TrimSpace(image) == "":
			return nil, fmt.Errorf("[%d].image: empty", i)
		}
		e.image = image
		if e.name == "" {
			e.name = fmt.Sprintf("[%d]", i)
		}
		out = append(out, e)
	}
	return out, nil
}
