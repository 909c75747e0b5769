package seed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"airlock.dev/airlock/e2e/internal/tools"
)

// Tag is the tag the fixture's index gets.
const Tag = "v1"

// Sample seeds host/repo with Build, generating the cosign key pair in keyDir (or reusing
// one there). A missing cosign skips the test, or fails it when CI=true.
func Sample(ctx context.Context, t testing.TB, host, repo, keyDir string) *Fixture {
	t.Helper()
	cosign := tools.Path(t, "cosign")
	f, err := Build(ctx, host, repo, keyDir, cosign)
	if err != nil {
		t.Fatalf("seed %s/%s: %v", host, repo, err)
	}
	return f
}

// Build pushes into host/repo (plain HTTP) a two-platform image index tagged Tag and
// attaches to it, with the cosign binary at cosignPath and the key pair in keyDir
// (generated when absent): a bundle signature on the index and on the linux/amd64
// manifest, a SLSA provenance attestation on the index, an SPDX SBOM on the index with a
// signature of its own, and a legacy cosign signature on the index. On a registry without
// the referrers API, referrers are pushed with the tag schema and nothing is deleted.
func Build(ctx context.Context, host, repoName, keyDir, cosignPath string) (*Fixture, error) {
	home, err := os.MkdirTemp("", "airlock-cosign-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(home)
	cosign := &Cosign{Path: cosignPath, Home: home}

	f := &Fixture{Host: host, Repo: repoName, Tag: Tag, Referrers: map[Kind]Referrer{}}
	if f.PrivateKeyPath, f.PublicKeyPath, err = cosign.GenerateKeyPair(ctx, keyDir); err != nil {
		return nil, err
	}

	repo, err := remote.NewRepository(host + "/" + repoName)
	if err != nil {
		return nil, err
	}
	repo.PlainHTTP = true
	// Registries with delete disabled refuse to drop the old tag-schema index.
	repo.SkipReferrersGC = true

	img, err := pushIndex(ctx, repo, Tag)
	if err != nil {
		return nil, err
	}
	f.Index, f.IndexDigest, f.Platforms, f.ImageBlobs = img.index, img.index.Digest, img.platforms, img.blobs

	if f.ReferrersAPI, err = probeReferrersAPI(ctx, host, repoName, f.IndexDigest); err != nil {
		return nil, err
	}
	// Set, not guessed from OCI-Subject: go-containerregistry's registry serves the API
	// but sends no OCI-Subject header on push.
	if err := repo.SetReferrersCapability(f.ReferrersAPI); err != nil {
		return nil, err
	}
	found := ByTagSchema
	if f.ReferrersAPI {
		found = ByAPI
	}

	predicate := filepath.Join(home, "provenance.json")
	b, err := slsaPredicate()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(predicate, b, 0o644); err != nil {
		return nil, err
	}

	key := f.PrivateKeyPath
	amd64 := f.Platforms["linux/amd64"]
	var sbom ocispec.Descriptor
	index := func() ocispec.Descriptor { return f.Index }
	steps := []struct {
		kind    Kind
		subject func() ocispec.Descriptor // read when the step runs: the SBOM exists only then
		run     func() error
	}{
		{IndexSignature, index, func() error { return cosign.Sign(ctx, key, f.DigestRef(f.IndexDigest)) }},
		{Amd64Signature, func() ocispec.Descriptor { return amd64 }, func() error {
			return cosign.Sign(ctx, key, f.DigestRef(amd64.Digest))
		}},
		{IndexAttestation, index, func() error {
			return cosign.Attest(ctx, key, f.DigestRef(f.IndexDigest), predicate, "slsaprovenance")
		}},
		{IndexSBOM, index, func() (err error) { sbom, err = pushSBOM(ctx, repo, f.Index); return err }},
		{SBOMSignature, func() ocispec.Descriptor { return sbom }, func() error {
			return cosign.Sign(ctx, key, f.DigestRef(sbom.Digest))
		}},
	}
	for _, s := range steps {
		subject := s.subject()
		desc, err := newReferrer(ctx, repo, subject, s.run)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.kind, err)
		}
		if f.Referrers[s.kind], err = describe(ctx, repo, s.kind, desc, subject.Digest, found); err != nil {
			return nil, err
		}
	}

	if err := cosign.SignLegacy(ctx, key, f.DigestRef(f.IndexDigest)); err != nil {
		return nil, err
	}
	tag, desc, err := resolveLegacyTag(ctx, repo, f.IndexDigest, ".sig")
	if err != nil {
		return nil, err
	}
	legacy, err := describe(ctx, repo, LegacySignature, desc, f.IndexDigest, ByCosignTag)
	if err != nil {
		return nil, err
	}
	legacy.Tag = tag
	f.Referrers[LegacySignature] = legacy
	return f, nil
}
