package seed

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
)

// listReferrers returns the referrers of subject, through the referrers API or the tag
// schema, whichever repo has settled on.
func listReferrers(ctx context.Context, repo *remote.Repository, subject ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	var all []ocispec.Descriptor
	err := repo.Referrers(ctx, subject, "", func(page []ocispec.Descriptor) error {
		all = append(all, page...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list referrers of %s@%s: %w", repo.Reference, subject.Digest, err)
	}
	return all, nil
}

// newReferrer runs step and returns the one referrer of subject that appeared during it.
func newReferrer(ctx context.Context, repo *remote.Repository, subject ocispec.Descriptor, step func() error) (ocispec.Descriptor, error) {
	before, err := listReferrers(ctx, repo, subject)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := step(); err != nil {
		return ocispec.Descriptor{}, err
	}
	after, err := listReferrers(ctx, repo, subject)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var added []ocispec.Descriptor
	for _, d := range after {
		if !slices.ContainsFunc(before, func(b ocispec.Descriptor) bool { return b.Digest == d.Digest }) {
			added = append(added, d)
		}
	}
	if len(added) != 1 {
		return ocispec.Descriptor{}, fmt.Errorf("want 1 new referrer of %s@%s, found %d: %v", repo.Reference, subject.Digest, len(added), added)
	}
	return added[0], nil
}

// describe fetches the manifest at desc and returns a Referrer built from what the
// manifest itself says: media type, artifactType (or config media type), blobs.
func describe(ctx context.Context, repo *remote.Repository, kind Kind, desc ocispec.Descriptor, subject digest.Digest, found Discovery) (Referrer, error) {
	rc, err := repo.Manifests().Fetch(ctx, desc)
	if err != nil {
		return Referrer{}, fmt.Errorf("fetch %s manifest %s@%s: %w", kind, repo.Reference, desc.Digest, err)
	}
	defer rc.Close()
	b, err := content.ReadAll(rc, desc)
	if err != nil {
		return Referrer{}, fmt.Errorf("read %s manifest %s@%s: %w", kind, repo.Reference, desc.Digest, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Referrer{}, fmt.Errorf("parse %s manifest %s@%s: %w", kind, repo.Reference, desc.Digest, err)
	}
	manifest := ocispec.Descriptor{MediaType: m.MediaType, Digest: desc.Digest, Size: desc.Size, ArtifactType: m.ArtifactType}
	if manifest.ArtifactType == "" {
		manifest.ArtifactType = m.Config.MediaType
	}
	r := Referrer{Kind: kind, Manifest: manifest, Subject: subject, Found: found}
	r.Blobs = append([]ocispec.Descriptor{m.Config}, m.Layers...)
	if m.Subject != nil && m.Subject.Digest != subject {
		return Referrer{}, fmt.Errorf("%s manifest %s@%s has subject %s, want %s", kind, repo.Reference, desc.Digest, m.Subject.Digest, subject)
	}
	return r, nil
}

// resolveLegacyTag resolves cosign's legacy tag sha256-<hex><suffix> for subject.
func resolveLegacyTag(ctx context.Context, repo *remote.Repository, subject digest.Digest, suffix string) (string, ocispec.Descriptor, error) {
	tag := subject.Algorithm().String() + "-" + subject.Encoded() + suffix
	desc, err := repo.Resolve(ctx, tag)
	if err != nil {
		return tag, ocispec.Descriptor{}, fmt.Errorf("resolve %s:%s: %w", repo.Reference, tag, err)
	}
	return tag, desc, nil
}
