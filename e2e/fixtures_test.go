package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
)

// TestFixtures proves the seeded image is really on each registry, read back over the
// plain registry API rather than through the code that seeded it.
func TestFixtures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(ctx context.Context, t testing.TB) string
		api   bool
	}{
		{"ggcr", func(_ context.Context, t testing.TB) string { return registries.StartGGCR(t) }, true},
		{"distribution", registries.StartDistribution, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			host := tc.start(ctx, t)
			f := seed.Sample(ctx, t, host, "team/app", t.TempDir())
			if f.ReferrersAPI != tc.api {
				t.Errorf("ReferrersAPI = %v, want %v", f.ReferrersAPI, tc.api)
			}
			checkImage(ctx, t, f)
			checkReferrers(ctx, t, f, tc.api)
			checkLegacySignature(ctx, t, f)
			checkBlobs(ctx, t, f)
			checkCosignVerifies(ctx, t, f)
		})
	}
}

// checkImage checks the tag resolves to a two-platform index whose manifests share
// their first layer and differ in the second.
func checkImage(ctx context.Context, t *testing.T, f *seed.Fixture) {
	var idx ocispec.Index
	if d := manifest(ctx, t, f.Host, f.Repo, f.Tag, &idx); d != f.IndexDigest {
		t.Fatalf("tag %s is %s, want %s", f.Tag, d, f.IndexDigest)
	}
	if idx.MediaType != ocispec.MediaTypeImageIndex || len(idx.Manifests) != 2 {
		t.Fatalf("index: media type %q with %d manifests, want an OCI index with 2", idx.MediaType, len(idx.Manifests))
	}
	var layers [][]ocispec.Descriptor
	for i, want := range seed.Platforms {
		d := idx.Manifests[i]
		if p := d.Platform; p == nil || p.OS+"/"+p.Architecture != want {
			t.Errorf("index entry %d: platform %v, want %s", i, p, want)
		}
		if d.Digest != f.Platforms[want].Digest {
			t.Errorf("index entry %d: %s, fixture says %s", i, d.Digest, f.Platforms[want].Digest)
		}
		var m ocispec.Manifest
		manifest(ctx, t, f.Host, f.Repo, d.Digest.String(), &m)
		if len(m.Layers) != 2 {
			t.Fatalf("%s manifest has %d layers, want 2", want, len(m.Layers))
		}
		layers = append(layers, m.Layers)
	}
	if layers[0][0].Digest != layers[1][0].Digest {
		t.Errorf("platform manifests do not share the base layer: %s, %s", layers[0][0].Digest, layers[1][0].Digest)
	}
	if layers[0][1].Digest == layers[1][1].Digest {
		t.Errorf("platform manifests share their own layer %s", layers[0][1].Digest)
	}
}

// checkReferrers checks each subject's referrers are listed where the registry keeps
// them: by the referrers API, or by the sha256-<hex> tag-schema index when the registry
// has no API (distribution answers the endpoint with 404).
func checkReferrers(ctx context.Context, t *testing.T, f *seed.Fixture, api bool) {
	sbom := f.Referrers[seed.IndexSBOM].Manifest.Digest
	want := map[digest.Digest][]seed.Kind{
		f.IndexDigest:                     {seed.IndexSignature, seed.IndexAttestation, seed.IndexSBOM},
		f.Platforms["linux/amd64"].Digest: {seed.Amd64Signature},
		sbom:                              {seed.SBOMSignature},
	}
	for subject, kinds := range want {
		listed := listed(ctx, t, f, subject, api)
		for _, k := range kinds {
			r := f.Referrers[k]
			if r.Subject != subject {
				t.Errorf("%s: subject %s, want %s", k, r.Subject, subject)
			}
			if !slices.Contains(listed, r.Manifest.Digest) {
				t.Errorf("%s %s not listed for %s (listed: %v)", k, r.Manifest.Digest, subject, listed)
			}
		}
		if len(listed) != len(kinds) {
			t.Errorf("%s has %d referrers listed, want %d: %v", subject, len(listed), len(kinds), listed)
		}
	}
	for k, at := range map[seed.Kind]string{
		seed.IndexSignature:   seed.BundleArtifactType,
		seed.Amd64Signature:   seed.BundleArtifactType,
		seed.IndexAttestation: seed.BundleArtifactType,
		seed.SBOMSignature:    seed.BundleArtifactType,
		seed.IndexSBOM:        seed.SBOMArtifactType,
	} {
		var m ocispec.Manifest
		manifest(ctx, t, f.Host, f.Repo, f.Referrers[k].Manifest.Digest.String(), &m)
		if m.ArtifactType != at {
			t.Errorf("%s: artifactType %q, want %q", k, m.ArtifactType, at)
		}
		if m.Subject == nil || m.Subject.Digest != f.Referrers[k].Subject {
			t.Errorf("%s: manifest subject %v, want %s", k, m.Subject, f.Referrers[k].Subject)
		}
	}
}

// listed returns the referrers of subject the registry lists: by the API, or by the tag schema.
func listed(ctx context.Context, t *testing.T, f *seed.Fixture, subject digest.Digest, api bool) []digest.Digest {
	status, _, body := get(ctx, t, http.MethodGet, f.Host, fmt.Sprintf("/v2/%s/referrers/%s", f.Repo, subject))
	schemaTag := subject.Algorithm().String() + "-" + subject.Encoded()
	schemaStatus, _, _ := get(ctx, t, http.MethodHead, f.Host, fmt.Sprintf("/v2/%s/manifests/%s", f.Repo, schemaTag))
	var idx ocispec.Index
	if api {
		if status != http.StatusOK {
			t.Fatalf("referrers API for %s: status %d: %s", subject, status, body)
		}
		if schemaStatus != http.StatusNotFound {
			t.Errorf("tag-schema tag %s exists (status %d) on a registry with the referrers API", schemaTag, schemaStatus)
		}
		manifest(ctx, t, f.Host, f.Repo, subject.String(), &ocispec.Manifest{}) // the subject itself is there
		if err := json.Unmarshal(body, &idx); err != nil {
			t.Fatalf("referrers API for %s: %v", subject, err)
		}
	} else {
		if status != http.StatusNotFound {
			t.Errorf("referrers API for %s: status %d, want 404 from a registry without it", subject, status)
		}
		manifest(ctx, t, f.Host, f.Repo, schemaTag, &idx)
	}
	return digests(idx.Manifests)
}

// checkLegacySignature checks the legacy cosign tag resolves to a simple-signing manifest.
func checkLegacySignature(ctx context.Context, t *testing.T, f *seed.Fixture) {
	r := f.Referrers[seed.LegacySignature]
	wantTag := "sha256-" + f.IndexDigest.Encoded() + ".sig"
	if r.Tag != wantTag {
		t.Errorf("legacy signature tag %q, want %q", r.Tag, wantTag)
	}
	var m ocispec.Manifest
	if d := manifest(ctx, t, f.Host, f.Repo, wantTag, &m); d != r.Manifest.Digest {
		t.Errorf("tag %s is %s, fixture says %s", wantTag, d, r.Manifest.Digest)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != "application/vnd.dev.cosign.simplesigning.v1+json" {
		t.Errorf("legacy signature layers %v, want one simple-signing payload", m.Layers)
	}
	if m.Layers[0].Annotations["dev.cosignproject.cosign/signature"] == "" {
		t.Errorf("legacy signature layer has no signature annotation")
	}
}

// checkBlobs checks every blob the fixture names is in the repository.
func checkBlobs(ctx context.Context, t *testing.T, f *seed.Fixture) {
	blobs := slices.Clone(f.ImageBlobs)
	for _, r := range f.Referrers {
		blobs = append(blobs, r.Blobs...)
	}
	if len(f.ImageBlobs) != 5 {
		t.Errorf("%d image blobs, want 5 (shared base layer, 2 own layers, 2 configs)", len(f.ImageBlobs))
	}
	for _, b := range blobs {
		if status, _, _ := get(ctx, t, http.MethodHead, f.Host, fmt.Sprintf("/v2/%s/blobs/%s", f.Repo, b.Digest)); status != http.StatusOK {
			t.Errorf("blob %s (%s): status %d", b.Digest, b.MediaType, status)
		}
	}
}
