package mirror

import (
	"errors"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestExplainRefusalSparseDockerList: a Docker manifest list saved with a platform filter, refused for
// its media type, is named as a Docker media type refusal that also says how to load a sparse index.
func TestExplainRefusalSparseDockerList(t *testing.T) {
	two := ocispec.Index{Manifests: []ocispec.Descriptor{{Digest: "sha256:a"}, {Digest: "sha256:b"}}}
	list := node(t, dockerManifestList, two, 1)
	err := explainRefusal(refusal(415, "MANIFEST_INVALID", "manifest invalid"), "site:5000/mirror/app", list, "")
	var re *RefusedError
	if !errors.As(err, &re) || re.Kind != RefusedDockerTypes {
		t.Fatalf("%v: want a Docker media types refusal", err)
	}
	want := "docker2s2\"] in its configuration; airlock never converts a manifest, since its digest would change; " + sparseAdvice
	if !strings.Contains(re.Reason, want) {
		t.Errorf("reason %q\ndoes not end with the sparse advice %q", re.Reason, want)
	}
	// A whole list: no sparse advice.
	err = explainRefusal(refusal(415, "MANIFEST_INVALID", "manifest invalid"), "site:5000/mirror/app", node(t, dockerManifestList, two, 2), "")
	if !errors.As(err, &re) || strings.Contains(re.Reason, "--sparse-index") {
		t.Errorf("whole list: %v", err)
	}
}
