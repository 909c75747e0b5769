package referrers

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"

	"airlock.dev/airlock/vocab"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
)

// FuzzArtifactType checks that ArtifactType and Kind never panic on any manifest bytes, that Kind
// is always one of the four kinds, and that a manifest's own artifactType field always wins.
func FuzzArtifactType(f *testing.F) {
	for _, s := range []string{
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json","config":{"mediaType":"application/vnd.oci.empty.v1+json"},"annotations":{"dev.sigstore.bundle.predicateType":"https://sigstore.dev/cosign/sign/v1"}}`,
		`{"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json","annotations":{"dev.sigstore.bundle.predicateType":"https://slsa.dev/provenance/v1"}}`,
		`{"config":{"mediaType":"application/vnd.oci.image.config.v1+json"},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json"}]}`,
		`{"config":{"mediaType":"application/vnd.oci.image.config.v1+json"},"layers":[{"mediaType":"application/vnd.dsse.envelope.v1+json"}]}`,
		`{"config":{"mediaType":"application/spdx+json"},"layers":[{"mediaType":"application/spdx+json"}]}`,
		`{"artifactType":"application/vnd.cyclonedx+json"}`,
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","config":null,"layers":[]}`,
		`{"artifactType":"APPLICATION/VND.DEV.SIGSTORE.BUNDLE+JSON","annotations":null}`,
		`{`, `null`, `[]`, `""`,
	} {
		f.Add([]byte(s))
	}
	kinds := map[string]bool{KindSignature: true, KindAttestation: true, KindSBOM: true, KindOther: true}
	f.Fuzz(func(t *testing.T, manifest []byte) {
		at := ArtifactType(manifest)
		if again := ArtifactType(manifest); again != at {
			t.Errorf("ArtifactType is not deterministic: %q then %q", at, again)
		}
		if k := Kind(manifest); !kinds[k] {
			t.Errorf("Kind = %q, not one of the four kinds", k)
		}
		var m struct {
			ArtifactType string `json:"artifactType"`
		}
		if err := json.Unmarshal(manifest, &m); err != nil {
			if at != "" {
				t.Errorf("ArtifactType of bytes that are not a JSON manifest = %q, want empty", at)
			}
		} else if m.ArtifactType != "" && at != m.ArtifactType {
			t.Errorf("ArtifactType = %q, but the manifest says %q", at, m.ArtifactType)
		}
		if d := Describe(ocispec.MediaTypeImageManifest, manifest); d.ArtifactType != at ||
			d.Digest != digest.FromBytes(manifest) || d.Size != int64(len(manifest)) {
			t.Errorf("Describe = %+v, disagrees with ArtifactType %q or the bytes", d, at)
		}
	})
}

// fuzzIndexStore serves one tag and records what is pushed.
type fuzzIndexStore struct {
	desc   ocispec.Descriptor
	body   []byte
	found  bool
	pushes []fuzzPush
}

type fuzzPush struct {
	desc ocispec.Descriptor
	body []byte
	ref  string
}

func (s *fuzzIndexStore) FetchReference(_ context.Context, reference string) (ocispec.Descriptor, io.ReadCloser, error) {
	if !s.found {
		return ocispec.Descriptor{}, nil, errdef.ErrNotFound
	}
	return s.desc, io.NopCloser(bytes.NewReader(s.body)), nil
}

func (s *fuzzIndexStore) PushReference(_ context.Context, expected ocispec.Descriptor, content io.Reader, reference string) error {
	b, err := io.ReadAll(content)
	if err != nil {
		return err
	}
	s.pushes = append(s.pushes, fuzzPush{desc: expected, body: b, ref: reference})
	return nil
}

// fuzzRefs is the pool of referrer descriptors a fuzz input picks from.
var fuzzRefs = []ocispec.Descriptor{
	{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("sig"), Size: 3,
		ArtifactType: vocab.BundleMediaType,
		Annotations:  map[string]string{vocab.AnnotationBundlePredicateType: vocab.CosignSignPredicateType}},
	{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("sbom"), Size: 4, ArtifactType: "application/spdx+json"},
	{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("att"), Size: 3, ArtifactType: "application/vnd.dsse.envelope.v1+json"},
	{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromString("other"), Size: 5},
}

// FuzzTagSchemaIndex checks EnsureTagSchema against an arbitrary existing sha256-<hex> index: it
// never panics, and whenever it pushes, the pushed bytes are an OCI index, described by their own
// digest, that keeps every entry the existing index had and lists every referrer asked for.
func FuzzTagSchemaIndex(f *testing.F) {
	existing, _ := json.Marshal(ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: fuzzRefs[:2]})
	existing = append([]byte(`{"schemaVersion":2,`), existing[1:]...)
	f.Add(existing, uint8(0b1111), uint8(0))
	f.Add(existing, uint8(0b0011), uint8(0))
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`), uint8(0b0101), uint8(0))
	f.Add([]byte(`{"manifests":[{"digest":"sha256:x"},{"digest":"sha256:x"}],"annotations":{"a":"b"}}`), uint8(0b1000), uint8(0))
	f.Add([]byte(`{"schemaVersion":2,"config":{}}`), uint8(0b0001), uint8(1))
	f.Add([]byte(nil), uint8(0b0010), uint8(2))
	f.Add([]byte(`null`), uint8(0b0001), uint8(0))
	f.Add([]byte(`{`), uint8(0b0001), uint8(0))
	subject := digest.FromString("subject")
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte, pick, mode uint8) {
		var refs []ocispec.Descriptor
		for i, r := range fuzzRefs {
			if pick&(1<<i) != 0 {
				refs = append(refs, r)
			}
		}
		store := &fuzzIndexStore{body: data, found: mode%3 != 2, desc: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex}}
		if mode%3 == 1 {
			// A tag of that name that is not an index: it is replaced, not merged.
			store.desc.MediaType = ocispec.MediaTypeImageManifest
		}
		merging := store.found && store.desc.MediaType == ocispec.MediaTypeImageIndex
		var before ocispec.Index
		beforeOK := !merging || json.Unmarshal(data, &before) == nil

		pushed, err := EnsureTagSchema(ctx, store, subject, refs)
		if err != nil {
			if pushed || len(store.pushes) != 0 {
				t.Errorf("EnsureTagSchema failed (%v) but pushed", err)
			}
			if beforeOK {
				t.Errorf("EnsureTagSchema failed on an index that parses: %v", err)
			}
			return
		}
		if !beforeOK {
			t.Errorf("EnsureTagSchema accepted an existing index that is not valid JSON: %q", data)
		}
		if !pushed {
			if len(store.pushes) != 0 {
				t.Fatalf("EnsureTagSchema reported no push but pushed %d times", len(store.pushes))
			}
			have := map[digest.Digest]bool{}
			for _, m := range before.Manifests {
				have[m.Digest] = true
			}
			for _, r := range refs {
				if !have[r.Digest] {
					t.Errorf("nothing pushed, but the existing index lacks %s", r.Digest)
				}
			}
			return
		}
		if len(store.pushes) != 1 {
			t.Fatalf("EnsureTagSchema reported a push but pushed %d times", len(store.pushes))
		}
		p := store.pushes[0]
		if p.ref != TagFor(subject) {
			t.Errorf("pushed to %q, want %q", p.ref, TagFor(subject))
		}
		if p.desc.Digest != digest.FromBytes(p.body) || p.desc.Size != int64(len(p.body)) {
			t.Errorf("pushed descriptor %s (%d bytes) does not describe the %d pushed bytes (%s)",
				p.desc.Digest, p.desc.Size, len(p.body), digest.FromBytes(p.body))
		}
		if p.desc.MediaType != ocispec.MediaTypeImageIndex {
			t.Errorf("pushed media type %q, want an OCI index", p.desc.MediaType)
		}
		var after ocispec.Index
		if err := json.Unmarshal(p.body, &after); err != nil {
			t.Fatalf("pushed bytes are not JSON: %v\n%s", err, p.body)
		}
		// A merged index keeps the existing header fields as they were; a fresh one is a proper index.
		if !merging && (after.SchemaVersion != 2 || after.MediaType != ocispec.MediaTypeImageIndex) {
			t.Errorf("pushed index has schemaVersion %d, mediaType %q; want 2, %q", after.SchemaVersion, after.MediaType, ocispec.MediaTypeImageIndex)
		}
		// Every entry of the existing index is kept, in order, ahead of the new ones.
		if merging {
			if len(after.Manifests) < len(before.Manifests) {
				t.Fatalf("pushed index lists %d manifests, the existing one %d", len(after.Manifests), len(before.Manifests))
			}
			want, _ := json.Marshal(before.Manifests)
			got, _ := json.Marshal(after.Manifests[:len(before.Manifests)])
			if len(before.Manifests) > 0 && !bytes.Equal(want, got) {
				t.Errorf("existing entries changed:\nwas %s\nnow %s", want, got)
			}
		}
		byDigest := map[digest.Digest]bool{}
		for _, m := range after.Manifests {
			byDigest[m.Digest] = true
		}
		for _, r := range refs {
			if !byDigest[r.Digest] {
				t.Errorf("pushed index lacks referrer %s", r.Digest)
			}
		}
		for _, m := range after.Manifests[len(before.Manifests):] {
			if !containsDescriptor(refs, m) {
				t.Errorf("pushed index adds %s, which was not asked for", m.Digest)
			}
		}
	})
}

// containsDescriptor reports whether list holds d, compared as JSON.
func containsDescriptor(list []ocispec.Descriptor, d ocispec.Descriptor) bool {
	want, _ := json.Marshal(d)
	for _, e := range list {
		got, _ := json.Marshal(e)
		if bytes.Equal(got, want) {
			return true
		}
	}
	return false
}
