package referrers

import (
	"encoding/json"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Generic config media types that say nothing about what an artifact is.
var genericConfigTypes = map[string]bool{
	ocispec.MediaTypeImageConfig:                     true,
	ocispec.MediaTypeEmptyJSON:                       true,
	"application/vnd.docker.container.image.v1+json": true,
	"": true,
}

// ArtifactType tells what a referrer manifest is from the manifest itself, never from what a registry
// listed: its artifactType field; else a config media type that is not a generic image config; else
// the media type of its first layer (cosign's legacy .sig, .att and .sbom manifests carry their kind
// there); else the manifest's media type.
func ArtifactType(manifest []byte) string {
	var m struct {
		MediaType    string               `json:"mediaType"`
		ArtifactType string               `json:"artifactType"`
		Config       *ocispec.Descriptor  `json:"config"`
		Layers       []ocispec.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return ""
	}
	if m.ArtifactType != "" {
		return m.ArtifactType
	}
	if m.Config != nil && !genericConfigTypes[m.Config.MediaType] {
		return m.Config.MediaType
	}
	if len(m.Layers) > 0 {
		return m.Layers[0].MediaType
	}
	return m.MediaType
}
