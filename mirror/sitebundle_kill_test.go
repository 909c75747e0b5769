package mirror

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/vocab"
)

// fetchCounting is a store that counts what is fetched from it.
type fetchCounting struct {
	*mirrortest.FakeStore
	fetched map[digest.Digest]int
}

func (s fetchCounting) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	s.fetched[desc.Digest]++
	return s.FakeStore.Fetch(ctx, desc)
}

// TestSiteBundleReadsAtMost64: looking for the site's import bundle among the root's referrers, the
// bundles listed without the predicate annotation (by their artifactType alone) are read, and at
// most maxAttestationLayers of them (sitebundle.go:78 and :81): here 70 that are not the site's, of
// which 64 are read, each once.
func TestSiteBundleReadsAtMost64(t *testing.T) {
	ctx := context.Background()
	site, _ := stationKey(t, t.TempDir(), "site")
	_, plans := mirrortest.SamplePlans(t)
	app := plans[0]
	tgt := mirrortest.NewFakeTarget()
	st, err := tgt.Store(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	store := st.(*mirrortest.FakeStore)
	for i := range 70 {
		m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, ArtifactType: vocab.BundleMediaType,
			Config: ocispec.DescriptorEmptyJSON, Layers: []ocispec.Descriptor{}, Subject: &app.Root.Desc, Annotations: map[string]string{"n": fmt.Sprint(i)}}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		store.Content[digest.FromBytes(b)] = b
	}
	counting := fetchCounting{store, map[digest.Digest]int{}}
	c := &cosignTags{tg: counting, name: store.Name(), ip: app, blobs: map[digest.Digest][]byte{}}
	d, found, err := c.siteBundle(ctx, site)
	if err != nil || found {
		t.Fatalf("site bundle %s, %v, %v; want none found", d, found, err)
	}
	read := 0
	for d, n := range counting.fetched {
		if n != 1 {
			t.Errorf("%s fetched %d times, want once", d, n)
		}
		read++
	}
	if read != maxAttestationLayers {
		t.Errorf("%d bundles read of 70, want %d", read, maxAttestationLayers)
	}
}

// TestSiteAttestationReadsAtMost64: looking for the site's import attestation among the layers at a
// .att tag, at most maxAttestationLayers candidates are read (sitesign.go:256 and :259): here 70 that
// are not the site's, of which 64 are asked for, each once; a layer of another predicate type is not.
func TestSiteAttestationReadsAtMost64(t *testing.T) {
	ctx := context.Background()
	site, _ := stationKey(t, t.TempDir(), "site")
	_, plans := mirrortest.SamplePlans(t)
	tgt := mirrortest.NewFakeTarget()
	st, err := tgt.Store(ctx, plans[0])
	if err != nil {
		t.Fatal(err)
	}
	counting := fetchCounting{st.(*mirrortest.FakeStore), map[digest.Digest]int{}}
	c := &cosignTags{tg: counting, name: st.Name(), ip: plans[0], blobs: map[digest.Digest][]byte{}}
	other := ocispec.Descriptor{MediaType: dsseLayer, Digest: digest.FromString("other"), Size: 5, Annotations: map[string]string{predicateAnnotation: "https://slsa.dev/provenance/v1"}}
	layers := []ocispec.Descriptor{other}
	for i := range 70 {
		layers = append(layers, ocispec.Descriptor{MediaType: dsseLayer, Digest: digest.FromString(fmt.Sprint(i)), Size: 10, Annotations: map[string]string{predicateAnnotation: vocab.ImportPredicateType}})
	}
	if c.hasSiteAttestation(ctx, layers, site) {
		t.Fatal("found the site's attestation where there is none")
	}
	for d, n := range counting.fetched {
		if n != 1 || d == other.Digest {
			t.Errorf("%s fetched %d times, want once, and never the other predicate type's", d, n)
		}
	}
	if len(counting.fetched) != maxAttestationLayers {
		t.Errorf("%d layers read of 70, want %d", len(counting.fetched), maxAttestationLayers)
	}
}
