package vocab

import (
	"encoding/json"
	"maps"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker's manifest media types, which registries still serve; airlock moves them as they are
// (never converted).
const (
	DockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// IsIndex and IsManifest tell an index and a manifest by media type, OCI or Docker.
func IsIndex(mt string) bool { return mt == ocispec.MediaTypeImageIndex || mt == DockerManifestList }

func IsManifest(mt string) bool { return mt == ocispec.MediaTypeImageManifest || mt == DockerManifest }

// Successors is what one manifest or index names: the one reading of a manifest's graph edges that
// the planner (mirror/plan) and the archive's integrity check (archive.VerifyContents) share.
type Successors struct {
	// MediaType is the media type given, else the one the content names for itself.
	MediaType string
	// Index is true for an index: by its media type, or, when there is none, by listing manifests.
	Index bool
	// Manifests are an index's entries.
	Manifests []ocispec.Descriptor
	// Config (nil when the manifest has none) and Layers are an image manifest's blobs.
	Config *ocispec.Descriptor
	Layers []ocispec.Descriptor
	// Subject is the manifest a referrer refers to.
	Subject *ocispec.Descriptor
}

// ParseSuccessors reads b, a manifest or an index whose descriptor gives mediaType (may be empty).
func ParseSuccessors(mediaType string, b []byte) (Successors, error) {
	var m struct {
		MediaType string               `json:"mediaType"`
		Manifests []ocispec.Descriptor `json:"manifests"`
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
		Subject   *ocispec.Descriptor  `json:"subject"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return Successors{}, err
	}
	s := Successors{MediaType: mediaType, Layers: m.Layers, Subject: m.Subject}
	if s.MediaType == "" {
		s.MediaType = m.MediaType
	}
	if s.Index = IsIndex(s.MediaType) || (s.MediaType == "" && m.Manifests != nil); s.Index {
		s.Manifests = m.Manifests
	}
	if m.Config != nil && m.Config.Digest != "" {
		s.Config = m.Config
	}
	return s, nil
}

// Blobs lists a manifest's config (first, when it has one) and its layers.
func (s Successors) Blobs() []ocispec.Descriptor {
	if s.Config == nil {
		return s.Layers
	}
	return append([]ocispec.Descriptor{*s.Config}, s.Layers...)
}

// LayersStartWith reports whether have begins with every layer of want, each the same descriptor
// (digest, media type, size, annotations): how cosign appends a signature or an attestation to the
// manifest at a sha256-<hex>.sig/.att tag.
func LayersStartWith(have, want []ocispec.Descriptor) bool {
	if len(have) < len(want) {
		return false
	}
	for i, w := range want {
		h := have[i]
		if h.Digest != w.Digest || h.MediaType != w.MediaType || h.Size != w.Size || !maps.Equal(h.Annotations, w.Annotations) {
			return false
		}
	}
	return true
}
