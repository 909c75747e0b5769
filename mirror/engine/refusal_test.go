package engine_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/vocab"
)

func node(t *testing.T, mt string, v any, children int) *plan.Node {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	n := &plan.Node{Desc: ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}, Manifest: b}
	for range children {
		n.Children = append(n.Children, &plan.Node{})
	}
	return n
}

// TestExplainRefusal: each refusal a registry answers is named in words an operator can act on, with
// the registry's own text kept.
func TestExplainRefusal(t *testing.T) {
	two := ocispec.Index{Manifests: []ocispec.Descriptor{{Digest: "sha256:a"}, {Digest: "sha256:b"}}}
	dockerList := node(t, vocab.DockerManifestList, two, 2)
	sparseIndex := node(t, ocispec.MediaTypeImageIndex, two, 1)
	fullIndex := node(t, ocispec.MediaTypeImageIndex, two, 2)
	image := node(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig}}, 0)
	artifact := node(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{ArtifactType: "application/vnd.example.sbom", Config: ocispec.DescriptorEmptyJSON}, 0)
	for _, c := range []struct {
		name string
		err  error
		n    *plan.Node
		tag  string
		kind string
		says []string
	}{
		{"zot 415 on a Docker manifest list", mirrortest.Refusal(415, "MANIFEST_INVALID", "manifest invalid"), dockerList, "", engine.RefusedDockerTypes, []string{"Docker media types", "docker2s2", "never converts", "manifest invalid"}},
		{"manifest invalid on a Docker manifest", mirrortest.Refusal(400, "MANIFEST_INVALID", "manifest invalid"), node(t, vocab.DockerManifest, image, 0), "", engine.RefusedDockerTypes, []string{"Docker media types"}},
		{"distribution refuses a sparse index", mirrortest.Refusal(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry"), sparseIndex, "", engine.RefusedSparseIndex, []string{"--sparse-index=flatten", "validation.manifests.indexes.platforms: none", "blob unknown to registry"}},
		{"zot refuses a sparse index", mirrortest.Refusal(400, "MANIFEST_INVALID", "manifest invalid"), sparseIndex, "1.0", engine.RefusedSparseIndex, []string{"--sparse-index=flatten"}},
		{"a full index refused for another reason", mirrortest.Refusal(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry"), fullIndex, "", "", nil},
		{"unsupported artifactType", mirrortest.Refusal(400, "MANIFEST_INVALID", "artifactType not allowed"), artifact, "", engine.RefusedArtifactType, []string{"application/vnd.example.sbom"}},
		{"413", mirrortest.Refusal(413, "", ""), image, "", engine.RefusedSize, []string{"size limit"}},
		{"manifest too large", mirrortest.Refusal(400, "SIZE_INVALID", "manifest too large"), image, "", engine.RefusedSize, []string{"manifest too large"}},
		{"denied", mirrortest.Refusal(403, "DENIED", "requested access to the resource is denied"), nil, "", engine.RefusedDenied, []string{"docker login site:5000", "site:5000/mirror/app", "requested access"}},
		{"unauthorized", mirrortest.Refusal(401, "UNAUTHORIZED", "authentication required"), image, "1.0", engine.RefusedDenied, []string{"credentials"}},
		{"Harbor immutable tag", mirrortest.Refusal(412, "PRECONDITION", "The image mirror/app:1.0 configured as immutable"), image, "1.0", engine.RefusedImmutable, []string{"tag 1.0 is immutable", "configured as immutable"}},
		{"ECR immutable tag", mirrortest.Refusal(400, "TAG_INVALID", "The image tag '1.0' already exists and cannot be overwritten because the repository is immutable."), image, "1.0", engine.RefusedImmutable, []string{"immutable"}},
		{"409 on a tag", mirrortest.Refusal(409, "", ""), image, "1.0", engine.RefusedImmutable, []string{"tag 1.0", "does not name " + image.Desc.Digest.String() + " yet"}},
		{"409 on a tag, no manifest known", mirrortest.Refusal(409, "", ""), nil, "1.0", engine.RefusedImmutable, []string{"does not name the wanted digest yet"}},
		{"415 alone on a Docker manifest", mirrortest.Refusal(415, "", ""), node(t, vocab.DockerManifest, image, 0), "", engine.RefusedDockerTypes, []string{"Docker media types"}},
		{"a Docker manifest refused for another reason", mirrortest.Refusal(400, "BLOB_UNKNOWN", "blob unknown to registry"), node(t, vocab.DockerManifest, image, 0), "", "", nil},
		{"415 on an OCI manifest", mirrortest.Refusal(415, "", ""), image, "", engine.RefusedMediaType, []string{ocispec.MediaTypeImageManifest}},
		{"500 stays as it is", mirrortest.Refusal(500, "UNKNOWN", "boom"), image, "1.0", "", nil},
		{"not an HTTP answer", errors.New("connection refused"), image, "1.0", "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := engine.ExplainRefusal(c.err, "site:5000/mirror/app", c.n, c.tag)
			var re *engine.RefusedError
			if !errors.As(err, &re) {
				if c.kind != "" {
					t.Fatalf("%v: not named, want %s", err, c.kind)
				}
				if err != c.err {
					t.Errorf("unclassified error changed: %v", err)
				}
				return
			}
			if re.Kind != c.kind {
				t.Errorf("kind %s, want %s: %v", re.Kind, c.kind, err)
			}
			if !errors.Is(err, c.err) {
				t.Errorf("%v does not wrap the registry's answer", err)
			}
			for _, s := range c.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%v\ndoes not say %q", err, s)
				}
			}
		})
	}
}
