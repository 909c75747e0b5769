package charts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"

	"airlock.dev/airlock/vocab"
)

// This file builds the OCI artifact `helm push` would store for a chart (docs/helm-charts.md
// section 3), byte for byte: helm.sh/helm/v4/pkg/registry Client.Push only pushes to a remote
// registry, and the functions it builds the manifest with are unexported.
// charts/artifact_test.go:TestArtifactMatchesHelmPush compares the two.

// NewArtifact builds what helm's registry Client.Push builds for chartTgz, with prov as the
// provenance layer when it is not empty and created as org.opencontainers.image.created
// (PushOptCreationTime): a config holding the chart's Chart.yaml as JSON, the .tgz unchanged as
// the content layer, layers sorted by digest, and the manifest's annotations from Chart.yaml.
//
// created is written in UTC, RFC 3339. A zero created means the Chart.yaml's modification time
// in the .tgz, so the same chart always gets the same digest (helm push would use the file's
// mtime, or now).
func NewArtifact(chartTgz, prov []byte, created time.Time) (*Artifact, error) {
	ch, err := loader.LoadArchive(bytes.NewReader(chartTgz))
	if err != nil {
		return nil, fmt.Errorf("not a Helm chart: %w", err)
	}
	meta := ch.Metadata
	if created.IsZero() {
		created = ch.ModTime
	}

	configData, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	blobs := map[digest.Digest][]byte{}
	desc := func(mediaType string, b []byte) ocispec.Descriptor {
		d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
		blobs[d.Digest] = b
		return d
	}
	config := desc(vocab.HelmConfigMediaType, configData)
	layers := []ocispec.Descriptor{desc(vocab.HelmContentMediaType, chartTgz)}
	if len(prov) > 0 {
		layers = append(layers, desc(vocab.HelmProvMediaType, prov))
	}
	sort.Slice(layers, func(i, j int) bool { return layers[i].Digest < layers[j].Digest })

	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		Config:      config,
		Layers:      layers,
		Annotations: ociAnnotations(meta, created.UTC().Format(time.RFC3339)),
	})
	if err != nil {
		return nil, err
	}
	return &Artifact{
		Manifest: manifest,
		Desc: ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageManifest,
			Digest:    digest.FromBytes(manifest),
			Size:      int64(len(manifest)),
		},
		Config: config,
		Layers: layers,
		Blobs:  blobs,
	}, nil
}

// ociAnnotations is pkg/registry/chart.go:generateOCIAnnotations: the standard annotations from
// Chart.yaml's fields (empty ones left out), then every Chart.yaml annotation except title and
// version, which may override the others.
func ociAnnotations(meta *chart.Metadata, created string) map[string]string {
	a := map[string]string{}
	add := func(k, v string) {
		if strings.TrimSpace(v) != "" {
			a[k] = v
		}
	}
	add(ocispec.AnnotationDescription, meta.Description)
	add(ocispec.AnnotationTitle, meta.Name)
	add(ocispec.AnnotationVersion, meta.Version)
	add(ocispec.AnnotationURL, meta.Home)
	add(ocispec.AnnotationCreated, created)
	if len(meta.Sources) > 0 {
		add(ocispec.AnnotationSource, meta.Sources[0])
	}
	if len(meta.Maintainers) > 0 {
		var b strings.Builder
		for i, m := range meta.Maintainers {
			if m.Name != "" {
				b.WriteString(m.Name)
			}
			if m.Email != "" {
				b.WriteString(" (" + m.Email + ")")
			}
			if i < len(meta.Maintainers)-1 {
				b.WriteString(", ")
			}
		}
		add(ocispec.AnnotationAuthors, b.String())
	}
	for k, v := range meta.Annotations {
		if k == ocispec.AnnotationVersion || k == ocispec.AnnotationTitle {
			continue
		}
		a[k] = v
	}
	return a
}

// ChartTag is the tag helm push gives a chart version: "+" is not allowed in a tag, so it becomes
// "_" (pkg/registry/reference.go:newReference).
func ChartTag(version string) string {
	return strings.ReplaceAll(version, "+", "_")
}
