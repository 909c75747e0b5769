package vocab

import (
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestParseSuccessors: what a manifest or index names, as the planner and the archive check read it.
func TestParseSuccessors(t *testing.T) {
	const (
		cfg   = `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + "1111111111111111111111111111111111111111111111111111111111111111" + `","size":2}`
		layer = `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:` + "2222222222222222222222222222222222222222222222222222222222222222" + `","size":3}`
		child = `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + "3333333333333333333333333333333333333333333333333333333333333333" + `","size":4}`
	)
	for _, tc := range []struct {
		name, given, b     string
		mt                 string
		index              bool
		manifests, blobs   int
		config, hasSubject bool
	}{
		{"OCI manifest, type from the content", "", `{"mediaType":"` + ocispec.MediaTypeImageManifest + `","config":` + cfg + `,"layers":[` + layer + `],"subject":` + child + `}`, ocispec.MediaTypeImageManifest, false, 0, 2, true, true},
		{"the descriptor's type wins", DockerManifest, `{"mediaType":"` + ocispec.MediaTypeImageIndex + `","config":` + cfg + `,"layers":[]}`, DockerManifest, false, 0, 1, true, false},
		{"a config without a digest is no blob", ocispec.MediaTypeImageManifest, `{"config":{"mediaType":"x"},"layers":[` + layer + `]}`, ocispec.MediaTypeImageManifest, false, 0, 1, false, false},
		{"Docker manifest list", DockerManifestList, `{"manifests":[` + child + `,` + child + `]}`, DockerManifestList, true, 2, 0, false, false},
		{"OCI index", "", `{"mediaType":"` + ocispec.MediaTypeImageIndex + `","manifests":[` + child + `]}`, ocispec.MediaTypeImageIndex, true, 1, 0, false, false},
		{"no type at all, lists manifests: an index", "", `{"manifests":[]}`, "", true, 0, 0, false, false},
		{"no type, no manifests: not an index", "", `{"layers":[` + layer + `]}`, "", false, 0, 1, false, false},
		{"a manifest's stray manifests are not read", ocispec.MediaTypeImageManifest, `{"manifests":[` + child + `]}`, ocispec.MediaTypeImageManifest, false, 0, 0, false, false},
	} {
		s, err := ParseSuccessors(tc.given, []byte(tc.b))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if s.MediaType != tc.mt || s.Index != tc.index || len(s.Manifests) != tc.manifests || len(s.Blobs()) != tc.blobs || (s.Config != nil) != tc.config || (s.Subject != nil) != tc.hasSubject {
			t.Errorf("%s: %+v (blobs %d); want type %q index %v, %d manifests, %d blobs, config %v, subject %v", tc.name, s, len(s.Blobs()), tc.mt, tc.index, tc.manifests, tc.blobs, tc.config, tc.hasSubject)
		}
		if tc.config && s.Blobs()[0].Digest != s.Config.Digest {
			t.Errorf("%s: the config is not the first blob", tc.name)
		}
	}
	if _, err := ParseSuccessors("", []byte("not json")); err == nil {
		t.Error("not JSON parsed")
	}
	for mt, want := range map[string][2]bool{
		ocispec.MediaTypeImageIndex: {true, false}, DockerManifestList: {true, false},
		ocispec.MediaTypeImageManifest: {false, true}, DockerManifest: {false, true}, "application/json": {false, false},
	} {
		if IsIndex(mt) != want[0] || IsManifest(mt) != want[1] {
			t.Errorf("%s: index %v manifest %v, want %v", mt, IsIndex(mt), IsManifest(mt), want)
		}
	}
}

// TestLayersStartWith: every layer of want, in order, the same descriptor to the annotation, at the
// start of have; have may be longer, not shorter.
func TestLayersStartWith(t *testing.T) {
	l := func(d string, ann map[string]string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: "application/vnd.dev.cosign.simplesigning.v1+json", Digest: digest.FromString(d), Size: int64(len(d)), Annotations: ann}
	}
	a, b, c := l("a", map[string]string{"sig": "1"}), l("b", nil), l("c", nil)
	for _, tc := range []struct {
		have, want []ocispec.Descriptor
		ok         bool
	}{
		{[]ocispec.Descriptor{a, b, c}, []ocispec.Descriptor{a, b}, true},
		{[]ocispec.Descriptor{a, b}, []ocispec.Descriptor{a, b}, true},
		{[]ocispec.Descriptor{a}, nil, true},
		{[]ocispec.Descriptor{a}, []ocispec.Descriptor{a, b}, false},
		{[]ocispec.Descriptor{b, a}, []ocispec.Descriptor{a}, false},
		{[]ocispec.Descriptor{l("a", map[string]string{"sig": "2"})}, []ocispec.Descriptor{a}, false},
		{[]ocispec.Descriptor{{MediaType: "x", Digest: a.Digest, Size: a.Size, Annotations: a.Annotations}}, []ocispec.Descriptor{a}, false},
		{[]ocispec.Descriptor{{MediaType: a.MediaType, Digest: a.Digest, Size: 9, Annotations: a.Annotations}}, []ocispec.Descriptor{a}, false},
	} {
		if got := LayersStartWith(tc.have, tc.want); got != tc.ok {
			t.Errorf("LayersStartWith(%d layers, %d layers) = %v, want %v", len(tc.have), len(tc.want), got, tc.ok)
		}
	}
}
