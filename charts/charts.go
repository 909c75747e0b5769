// Package charts finds Helm charts and the images they run: it reads HTTP chart repositories
// (index.yaml, the chart's .tgz checked against the index digest, its .prov), builds the OCI chart
// artifact exactly as `helm push` does, and renders charts with Helm's own engine to find every
// image their workloads run, each with the reason it is there. See docs/helm-charts.md.
//
// Only this package imports Helm, apart from verify (helm.sh/helm/v4/pkg/provenance, for a chart's
// .prov).
package charts

import (
	"fmt"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultKubeVersion is the Kubernetes version templates see (.Capabilities.KubeVersion) when a
// charts entry names none.
const DefaultKubeVersion = "1.33.0"

// Fetched is one chart version from an HTTP chart repository, its bytes checked against the digest
// index.yaml gives.
type Fetched struct {
	Name    string
	Version string
	URL     string        // where the .tgz was fetched
	Chart   []byte        // the .tgz, unchanged
	Digest  digest.Digest // sha256 of Chart, equal to index.yaml's digest
	Prov    []byte        // the .prov file, nil when the repository has none
	Created time.Time     // the index entry's created time; zero when it gives none
}

// Artifact is a chart as an OCI artifact, byte for byte what `helm push` stores for the same .tgz,
// .prov and creation time.
type Artifact struct {
	Manifest []byte             // the image manifest's bytes
	Desc     ocispec.Descriptor // the manifest's descriptor (application/vnd.oci.image.manifest.v1+json)
	Config   ocispec.Descriptor
	Layers   []ocispec.Descriptor // sorted by digest, as helm push sorts them
	Blobs    map[digest.Digest][]byte
}

// RenderOptions says how a chart is rendered.
type RenderOptions struct {
	// Values are YAML documents merged over the chart's defaults in order: the entry's values files,
	// then its inline values.
	Values [][]byte
	// KubeVersion is what templates see as .Capabilities.KubeVersion; "" means DefaultKubeVersion.
	KubeVersion string
	// APIVersions are added to the API versions templates see (.Capabilities.APIVersions.Has), as
	// `helm template --api-versions` adds them: "monitoring.coreos.com/v1" or
	// "monitoring.coreos.com/v1/ServiceMonitor".
	APIVersions []string
	// IncludeDisabled names subcharts (by name, alias or path such as "app/cache") rendered even
	// though a condition or tag disables them; IncludeAllDisabled renders every one.
	IncludeDisabled    []string
	IncludeAllDisabled bool
}

// Reason says why one image is in the set: which chart brought it, and where the chart names it.
type Reason struct {
	Chart      string `json:"chart"`                // chart path and version, e.g. "app 1.4.2", "app/db (chart postgres-lite 12.1.0, alias db)"
	Template   string `json:"template,omitempty"`   // e.g. "app/charts/db/templates/statefulset.yaml"
	Kind       string `json:"kind,omitempty"`       // e.g. "StatefulSet"
	Name       string `json:"name,omitempty"`       // the object's metadata.name
	Container  string `json:"container,omitempty"`  // e.g. "initContainers[0] (init)"
	Annotation string `json:"annotation,omitempty"` // "helm.sh/images" or "artifacthub.io/images"
	Entry      string `json:"entry,omitempty"`      // the annotation entry's name
	Hook       bool   `json:"hook,omitempty"`       // the object is a Helm hook
	IncludedBy string `json:"includedBy,omitempty"` // "includeDisabled" when found only because of it
}

// String is the reason in one line, as dry-run and inspect print it.
func (r Reason) String() string {
	var b strings.Builder
	b.WriteString(r.Chart)
	if r.Annotation != "" {
		fmt.Fprintf(&b, ": Chart.yaml %s (name %s)", r.Annotation, r.Entry)
	} else {
		fmt.Fprintf(&b, ": %s %s/%s %s", r.Template, r.Kind, r.Name, r.Container)
	}
	if r.Hook {
		b.WriteString(", hook")
	}
	if r.IncludedBy != "" {
		fmt.Fprintf(&b, ", included by %s", r.IncludedBy)
	}
	return b.String()
}

// Image is one image a chart runs, as the chart spells it, with every reason it was found.
type Image struct {
	Ref     string   `json:"ref"`
	Reasons []Reason `json:"reasons"`
}

// Subchart is one dependency of a chart, enabled or not.
type Subchart struct {
	Path      string `json:"path"`  // e.g. "app/db"
	Chart     string `json:"chart"` // the subchart's own name, e.g. "postgres-lite"
	Version   string `json:"version,omitempty"`
	Alias     string `json:"alias,omitempty"`
	Enabled   bool   `json:"enabled"`
	SkippedBy string `json:"skippedBy,omitempty"` // e.g. "condition cache.enabled = false"
}

// Rendered is what rendering one chart found.
type Rendered struct {
	Name        string     `json:"name"`
	Version     string     `json:"version"`
	KubeVersion string     `json:"kubeVersion"`
	Images      []Image    `json:"images"`
	Subcharts   []Subchart `json:"subcharts,omitempty"`
}

// RenderError is a chart that did not render. ValuePath, when known, is the value that was missing
// ("image.tag", relative to the top chart's values), so the caller can name the ImageSet field that
// sets it; Template and Line say where.
type RenderError struct {
	Chart     string // "app 1.4.2"
	Template  string
	Line      int
	ValuePath string
	Msg       string
}

func (e *RenderError) Error() string {
	var b strings.Builder
	b.WriteString(e.Chart + " does not render")
	if e.Template != "" {
		fmt.Fprintf(&b, " at %s:%d", e.Template, e.Line)
	}
	b.WriteString(": " + e.Msg)
	if e.ValuePath != "" {
		fmt.Fprintf(&b, " (value %s)", e.ValuePath)
	}
	return b.String()
}
