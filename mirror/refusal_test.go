package mirror

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

func refusal(status int, code, msg string) error {
	er := &errcode.ErrorResponse{Method: http.MethodPut, StatusCode: status}
	if code != "" {
		er.Errors = errcode.Errors{{Code: code, Message: msg}}
	}
	return er
}

func node(t *testing.T, mt string, v any, children int) *Node {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{Desc: ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}, Manifest: b}
	for range children {
		n.Children = append(n.Children, &Node{})
	}
	return n
}

// TestExplainRefusal: each refusal a registry answers is named in words an operator can act on, with
// the registry's own text kept.
func TestExplainRefusal(t *testing.T) {
	two := ocispec.Index{Manifests: []ocispec.Descriptor{{Digest: "sha256:a"}, {Digest: "sha256:b"}}}
	dockerList := node(t, dockerManifestList, two, 2)
	sparseIndex := node(t, ocispec.MediaTypeImageIndex, two, 1)
	fullIndex := node(t, ocispec.MediaTypeImageIndex, two, 2)
	image := node(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig}}, 0)
	artifact := node(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{ArtifactType: "application/vnd.example.sbom", Config: ocispec.DescriptorEmptyJSON}, 0)
	for _, c := range []struct {
		name string
		err  error
		n    *Node
		tag  string
		kind string
		says []string
	}{
		{"zot 415 on a Docker manifest list", refusal(415, "MANIFEST_INVALID", "manifest invalid"), dockerList, "", RefusedDockerTypes, []string{"Docker media types", "docker2s2", "never converts", "manifest invalid"}},
		{"manifest invalid on a Docker manifest", refusal(400, "MANIFEST_INVALID", "manifest invalid"), node(t, dockerManifest, image, 0), "", RefusedDockerTypes, []string{"Docker media types"}},
		{"distribution refuses a sparse index", refusal(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry"), sparseIndex, "", RefusedSparseIndex, []string{"--sparse-index=flatten", "validation.manifests.indexes.platforms: none", "blob unknown to registry"}},
		{"zot refuses a sparse index", refusal(400, "MANIFEST_INVALID", "manifest invalid"), sparseIndex, "1.0", RefusedSparseIndex, []string{"--sparse-index=flatten"}},
		{"a full index refused for another reason", refusal(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry"), fullIndex, "", "", nil},
		{"unsupported artifactType", refusal(400, "MANIFEST_INVALID", "artifactType not allowed"), artifact, "", RefusedArtifactType, []string{"application/vnd.example.sbom"}},
		{"413", refusal(413, "", ""), image, "", RefusedSize, []string{"size limit"}},
		{"manifest too large", refusal(400, "SIZE_INVALID", "manifest too large"), image, "", RefusedSize, []string{"manifest too large"}},
		{"denied", refusal(403, "DENIED", "requested access to the resource is denied"), nil, "", RefusedDenied, []string{"docker login site:5000", "site:5000/mirror/app", "requested access"}},
		{"unauthorized", refusal(401, "UNAUTHORIZED", "authentication required"), image, "1.0", RefusedDenied, []string{"credentials"}},
		{"Harbor immutable tag", refusal(412, "PRECONDITION", "The image mirror/app:1.0 configured as immutable"), image, "1.0", RefusedImmutable, []string{"tag 1.0 is immutable", "configured as immutable"}},
		{"ECR immutable tag", refusal(400, "TAG_INVALID", "The image tag '1.0' already exists and cannot be overwritten because the repository is immutable."), image, "1.0", RefusedImmutable, []string{"immutable"}},
		{"409 on a tag", refusal(409, "", ""), image, "1.0", RefusedImmutable, []string{"tag 1.0"}},
		{"415 on an OCI manifest", refusal(415, "", ""), image, "", RefusedMediaType, []string{ocispec.MediaTypeImageManifest}},
		{"500 stays as it is", refusal(500, "UNKNOWN", "boom"), image, "1.0", "", nil},
		{"not an HTTP answer", errors.New("connection refused"), image, "1.0", "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := explainRefusal(c.err, "site:5000/mirror/app", c.n, c.tag)
			var re *RefusedError
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
