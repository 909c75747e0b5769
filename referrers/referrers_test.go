package referrers

import (
	"context"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
)

func TestArtifactTypeAndKind(t *testing.T) {
	cases := []struct {
		name, manifest, wantType, wantKind string
	}{
		{"cosign v3 signature bundle",
			`{"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json","config":{"mediaType":"application/vnd.oci.empty.v1+json"},"annotations":{"dev.sigstore.bundle.predicateType":"https://sigstore.dev/cosign/sign/v1"}}`,
			"application/vnd.dev.sigstore.bundle.v0.3+json", KindSignature},
		{"cosign v3 attestation bundle",
			`{"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json","annotations":{"dev.sigstore.bundle.predicateType":"https://slsa.dev/provenance/v1"}}`,
			"application/vnd.dev.sigstore.bundle.v0.3+json", KindAttestation},
		{"legacy .sig: type from the first layer",
			`{"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json"},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json"}]}`,
			"application/vnd.dev.cosign.simplesigning.v1+json", KindSignature},
		{"legacy .att",
			`{"config":{"mediaType":"application/vnd.oci.image.config.v1+json"},"layers":[{"mediaType":"application/vnd.dsse.envelope.v1+json"}]}`,
			"application/vnd.dsse.envelope.v1+json", KindAttestation},
		{"oras-style SBOM: artifactType from the config (ggcr lists it so)",
			`{"config":{"mediaType":"application/spdx+json"},"layers":[{"mediaType":"application/spdx+json"}]}`,
			"application/spdx+json", KindSBOM},
		{"cyclonedx with artifactType", `{"artifactType":"application/vnd.cyclonedx+json"}`, "application/vnd.cyclonedx+json", KindSBOM},
		{"plain image", `{"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json"}}`, "application/vnd.oci.image.manifest.v1+json", KindOther},
		{"not json", `{`, "", KindOther},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ArtifactType([]byte(c.manifest)); got != c.wantType {
				t.Errorf("ArtifactType = %q, want %q", got, c.wantType)
			}
			if got := Kind([]byte(c.manifest)); got != c.wantKind {
				t.Errorf("Kind = %q, want %q", got, c.wantKind)
			}
		})
	}
}

// fakeRepo is a repository with canned referrers and tags; it counts tag listings.
type fakeRepo struct {
	refs      map[digest.Digest][]ocispec.Descriptor
	tags      []string
	tagLists  int
	resolving map[string]ocispec.Descriptor
}

func (f *fakeRepo) Referrers(_ context.Context, d ocispec.Descriptor, _ string, fn func([]ocispec.Descriptor) error) error {
	if rs := f.refs[d.Digest]; len(rs) > 0 {
		return fn(rs)
	}
	return nil
}

func (f *fakeRepo) Tags(_ context.Context, _ string, fn func([]string) error) error {
	f.tagLists++
	return fn(f.tags)
}

func (f *fakeRepo) Resolve(_ context.Context, ref string) (ocispec.Descriptor, error) {
	if d, ok := f.resolving[ref]; ok {
		return d, nil
	}
	return ocispec.Descriptor{}, errdef.ErrNotFound
}

func TestDiscovererFindsAPIAndCosignTagsListingTagsOnce(t *testing.T) {
	subj := ocispec.Descriptor{Digest: digest.FromString("index")}
	other := ocispec.Descriptor{Digest: digest.FromString("platform")}
	bundle := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("bundle")}
	sig := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("sig")}
	sigTag := TagFor(subj.Digest) + ".sig"
	repo := &fakeRepo{
		refs:      map[digest.Digest][]ocispec.Descriptor{subj.Digest: {bundle, bundle, subj}},
		tags:      []string{"v1", TagFor(subj.Digest), sigTag, TagFor(other.Digest) + ".att"},
		resolving: map[string]ocispec.Descriptor{sigTag: sig},
	}
	d := NewDiscoverer(repo, true)
	found, err := d.Find(context.Background(), subj)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 {
		t.Fatalf("found %d referrers, want 2 (the bundle once, the .sig): %+v", len(found), found)
	}
	if found[0].Descriptor.Digest != bundle.Digest || found[0].Method != API || found[0].Subject != subj.Digest {
		t.Errorf("first: %+v", found[0])
	}
	if found[1].Descriptor.Digest != sig.Digest || found[1].Method != CosignTag || found[1].Tag != sigTag {
		t.Errorf("second: %+v", found[1])
	}
	// .att of the other subject is listed but was deleted: skipped, not an error.
	if _, err := d.Find(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	if repo.tagLists != 1 {
		t.Fatalf("tags listed %d times, want once per repository", repo.tagLists)
	}
	d2 := NewDiscoverer(repo, false)
	found, _ = d2.Find(context.Background(), subj)
	if found[0].Method != TagSchema {
		t.Fatalf("without the API the method is %q, want tag-schema", found[0].Method)
	}
}
