package vocab

import (
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of a Helm chart stored in OCI, as `helm push` writes them (helm.sh/helm/v4/pkg/registry,
// constants.go), and the content type of charts pushed by Helm before 3.8.
const (
	HelmConfigMediaType        = "application/vnd.cncf.helm.config.v1+json"
	HelmContentMediaType       = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	HelmLegacyContentMediaType = "application/tar+gzip"
	HelmProvMediaType          = "application/vnd.cncf.helm.chart.provenance.v1.prov"
)

// MaxChartSize bounds a chart's .tgz read into memory, as Helm's loader bounds it
// (MaxDecompressedChartSize).
const MaxChartSize = 100 << 20

// HelmChartLayers finds the content layer of a chart artifact's manifest m, and its provenance layer
// (nil when it has none); more than one of either is refused, as Helm refuses it.
func HelmChartLayers(m ocispec.Manifest) (chart, prov *ocispec.Descriptor, err error) {
	for i, l := range m.Layers {
		switch l.MediaType {
		case HelmContentMediaType, HelmLegacyContentMediaType:
			if chart != nil {
				return nil, nil, errors.New("more than one chart content layer")
			}
			chart = &m.Layers[i]
		case HelmProvMediaType:
			if prov != nil {
				return nil, nil, errors.New("more than one provenance layer")
			}
			prov = &m.Layers[i]
		}
	}
	if chart == nil {
		return nil, nil, fmt.Errorf("no chart content layer (%s)", HelmContentMediaType)
	}
	return chart, prov, nil
}
