package plan

import (
	"context"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/referrers"
)

// TestCatalogReferrersDescribe: a referrer's label names the repository the catalog says it was found
// in, the one of that referrer and not of another of the same subject; its artifact type and kind come
// from its manifest. A referrer found by the API whose manifest names its subject is taken.
func TestCatalogReferrersDescribe(t *testing.T) {
	subject := digest.FromString("the image")
	a, b := digest.FromString("sbom a"), digest.FromString("sbom b")
	s := newCatalogReferrers(&archive.Catalog{Referrers: []archive.Referrer{
		{Digest: a, Subject: subject, Repository: "team/a", FoundBy: "api"},
		{Digest: b, Subject: subject, Repository: "team/b", FoundBy: "api"},
	}})
	manifest := []byte(`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageManifest + `","artifactType":"application/spdx+json","subject":{"mediaType":"` +
		ocispec.MediaTypeImageManifest + `","digest":"` + subject.String() + `","size":1}}`)
	for _, d := range []digest.Digest{a, b} {
		l, ok, err := s.Describe(referrers.Found{Descriptor: ocispec.Descriptor{Digest: d}, Subject: subject, Method: referrers.API}, manifest)
		want := map[digest.Digest]string{a: "team/a", b: "team/b"}[d]
		if err != nil || !ok || l.Repository != want || l.ArtifactType != "application/spdx+json" || l.Kind != "sbom" {
			t.Errorf("%s: %+v, %v, %v; want found in %s, an sbom", d, l, ok, err, want)
		}
	}
	found, err := s.Referrers(context.Background(), ocispec.Descriptor{Digest: subject})
	if err != nil || len(found) != 2 || found[0].Descriptor.Digest != a || found[1].Descriptor.Digest != b || found[0].Subject != subject || found[0].Method != referrers.API {
		t.Errorf("referrers %+v, %v; want a then b, by the API", found, err)
	}
}
