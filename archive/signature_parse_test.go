package archive

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// signatureFixture is a catalog signature manifest as airlock writes it, decoded to a map to be altered.
func signatureFixture(t testing.TB) (cat ocispec.Descriptor, mb []byte, m map[string]any) {
	cat = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("catalog"), Size: 100}
	mb, _, err := SignatureManifest(cat, []byte(`{"bundle":true}`), time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(mb, &m); err != nil {
		t.Fatal(err)
	}
	return cat, mb, m
}

// TestParseSignatureManifest: only the exact shape airlock writes is a catalog signature; a manifest
// list, extra layers or fields, another config or subject are refused, each with its reason.
func TestParseSignatureManifest(t *testing.T) {
	cat, honest, _ := signatureFixture(t)
	layer, pt, err := ParseSignatureManifest(honest, cat.Digest)
	if err != nil || layer.MediaType != BundleMediaType || layer.Digest != digest.FromString(`{"bundle":true}`) || pt != CosignSignPredicateType {
		t.Fatalf("honest signature: layer %+v, predicate %q, %v", layer, pt, err)
	}
	image := map[string]any{"mediaType": ocispec.MediaTypeImageLayerGzip, "digest": digest.FromString("layer").String(), "size": 5}
	for _, tc := range []struct {
		name  string
		alter func(m map[string]any)
		want  string
	}{
		{"a Docker manifest list listing an image", func(m map[string]any) {
			m["mediaType"] = "application/vnd.docker.distribution.manifest.list.v2+json"
			m["manifests"] = []any{image}
		}, `unknown field "manifests"`},
		{"a Docker manifest", func(m map[string]any) { m["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json" }, "not an OCI image manifest"},
		{"schema version 1", func(m map[string]any) { m["schemaVersion"] = 1 }, "schema version 1"},
		{"another artifact type", func(m map[string]any) { m["artifactType"] = "application/vnd.oci.image.config.v1+json" }, "artifact type"},
		{"a runnable config", func(m map[string]any) {
			m["config"] = map[string]any{"mediaType": ocispec.MediaTypeImageConfig, "digest": digest.FromString("cfg").String(), "size": 3}
		}, "not the empty config"},
		{"a second layer", func(m map[string]any) { m["layers"] = append(m["layers"].([]any), image) }, "2 layers"},
		{"a layer that is not a bundle", func(m map[string]any) { m["layers"] = []any{image} }, "1 layers"},
		{"no subject", func(m map[string]any) { delete(m, "subject") }, "not a referrer of catalog"},
		{"another subject", func(m map[string]any) {
			m["subject"] = map[string]any{"mediaType": ocispec.MediaTypeImageManifest, "digest": digest.FromString("other").String(), "size": 1}
		}, "not a referrer of catalog"},
		{"a field of its own", func(m map[string]any) { m["urls"] = []any{"http://example.com"} }, `unknown field "urls"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, m := signatureFixture(t)
			tc.alter(m)
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := ParseSignatureManifest(b, cat.Digest); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
	if _, _, err := ParseSignatureManifest(append(append([]byte{}, honest...), []byte(`{}`)...), cat.Digest); err == nil || !strings.Contains(err.Error(), "data after") {
		t.Errorf("trailing data: %v", err)
	}
}

// FuzzSignatureManifest: no input makes the catalog signature parser panic, and whatever it accepts
// has exactly one bundle layer and the catalog as subject.
func FuzzSignatureManifest(f *testing.F) {
	cat, honest, _ := signatureFixture(f)
	f.Add(honest)
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		layer, _, err := ParseSignatureManifest(b, cat.Digest)
		if err != nil {
			return
		}
		var m ocispec.Manifest
		if json.Unmarshal(b, &m) != nil || len(m.Layers) != 1 || m.Layers[0].Digest != layer.Digest || layer.MediaType != BundleMediaType || m.Subject == nil || m.Subject.Digest != cat.Digest {
			t.Fatalf("accepted %q: layer %+v", b, layer)
		}
	})
}
