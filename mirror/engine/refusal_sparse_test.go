package engine_test

import (
	"errors"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/vocab"
)

// TestExplainRefusalSparseDockerList: a Docker manifest list saved with a platform filter, refused for
// its media type, is named as a Docker media type refusal that also says how to load a sparse index.
func TestExplainRefusalSparseDockerList(t *testing.T) {
	two := ocispec.Index{Manifests: []ocispec.Descriptor{{Digest: "sha256:a"}, {Digest: "sha256:b"}}}
	list := node(t, vocab.DockerManifestList, two, 1)
	err := engine.ExplainRefusal(mirrortest.Refusal(415, "MANIFEST_INVALID", "manifest invalid"), "site:5000/mirror/app", list, "")
	var re *engine.RefusedError
	if !errors.As(err, &re) || re.Kind != engine.RefusedDockerTypes {
		t.Fatalf("%v: want a Docker media types refusal", err)
	}
	want := "docker2s2\"] in its configuration; airlock never converts a manifest, since its digest would change; " + engine.SparseAdvice
	if !strings.Contains(re.Reason, want) {
		t.Errorf("reason %q\ndoes not end with the sparse advice %q", re.Reason, want)
	}
	// A whole list: no sparse advice.
	err = engine.ExplainRefusal(mirrortest.Refusal(415, "MANIFEST_INVALID", "manifest invalid"), "site:5000/mirror/app", node(t, vocab.DockerManifestList, two, 2), "")
	if !errors.As(err, &re) || strings.Contains(re.Reason, "--sparse-index") {
		t.Errorf("whole list: %v", err)
	}
}
