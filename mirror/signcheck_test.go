package mirror

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/referrers"
	"airlock.dev/airlock/verify"
)

// stationKey writes an unencrypted ECDSA key pair NAME.key, NAME.pub into dir and loads the private one.
func stationKey(t *testing.T, dir, name string) (*verify.SigningKey, string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	keyPath, pubPath := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := verify.LoadSigningKey(keyPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k, pubPath
}

// bundleSignature signs subject with k and returns the signature as cosign v3 attaches it: a Sigstore
// bundle referrer.
func bundleSignature(t *testing.T, src *mirrortest.FakeSource, repo string, subject *plan.Node, k *verify.SigningKey) *plan.Node {
	t.Helper()
	b, err := k.SignDigest(subject.Desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	mb, layer, err := archive.SignatureManifest(subject.Desc, b, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	src.Add(b)
	empty := ocispec.DescriptorEmptyJSON
	src.Add(empty.Data)
	return &plan.Node{
		Desc:     ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: archive.BundleMediaType, Digest: src.Add(mb), Size: int64(len(mb))},
		Manifest: mb, Repository: repo, Blobs: []ocispec.Descriptor{{MediaType: empty.MediaType, Digest: empty.Digest, Size: empty.Size}, layer},
		Referrer: &referrers.Found{Subject: subject.Desc.Digest, Method: referrers.API},
	}
}

// signingFixture: an archive of three images, one signed by the release key, one by an attacker's key
// and one unsigned, and the station's image trust (the release key).
func signingFixture(t *testing.T) (dir string, station *verify.Trust, signer *verify.SigningKey, signerPub string) {
	t.Helper()
	keys := t.TempDir()
	release, releasePub := stationKey(t, keys, "release")
	attacker, _ := stationKey(t, keys, "attacker")
	signer, signerPub = stationKey(t, keys, "transfer")
	src := &mirrortest.FakeSource{Blobs: map[digest.Digest][]byte{}}
	app := mirrortest.ImageNode(t, src, "team/app", 100)
	evil := mirrortest.ImageNode(t, src, "team/evil", 200)
	plain := mirrortest.ImageNode(t, src, "team/plain", 300)
	plans := []*plan.ImagePlan{
		mirrortest.Plan(t, src, "registry.example.com/team/app:1.0", app, bundleSignature(t, src, "team/app", app, release)),
		mirrortest.Plan(t, src, "registry.example.com/team/evil:1.0", evil, bundleSignature(t, src, "team/evil", evil, attacker)),
		mirrortest.Plan(t, src, "registry.example.com/team/plain:1.0", plain),
	}
	r, _, _ := saveLayout(t, plans, nil)
	station, err := (&verify.Anchors{Keys: []string{releasePub}}).Site()
	if err != nil {
		t.Fatal(err)
	}
	return r.Path, station, signer, signerPub
}

// TestCheckForSigningRefuses: the station verifies each image against its own trust; an image signed
// by another key and an unsigned image fail, named, and nothing is signed: index.json is unchanged.
func TestCheckForSigningRefuses(t *testing.T) {
	ctx := context.Background()
	dir, station, signer, _ := signingFixture(t)
	before, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := CheckForSigning(ctx, dir, station)
	if err != nil {
		t.Fatal(err)
	}
	if c.Passed() || len(c.Results) != 3 || c.Trust != station {
		t.Fatalf("check passed %v with %d results, want 3 images checked and refused", c.Passed(), len(c.Results))
	}
	failed := c.Failed()
	if len(failed) != 2 || failed[0].Source != "registry.example.com/team/evil:1.0" || failed[1].Source != "registry.example.com/team/plain:1.0" {
		t.Errorf("failed %+v, want team/evil and team/plain", failed)
	}
	if !c.Results[0].Passed || c.Results[0].Signatures[0].Signer != "release.pub" {
		t.Errorf("team/app: %+v, want passed, signed by release.pub", c.Results[0])
	}
	if len(failed) > 0 && (len(failed[0].Signatures) != 1 || failed[0].Signatures[0].Status != verify.StatusUnknownSigner) {
		t.Errorf("team/evil signatures %+v, want one by an unknown signer", failed[0].Signatures)
	}
	if _, err := SignArchive(ctx, c, signer); !errors.Is(err, plan.ErrCheckFailed) || !strings.Contains(err.Error(), "2 of 3 images failed") {
		t.Errorf("SignArchive after a failed check: %v, want refused", err)
	}
	after, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("index.json changed although nothing was to be signed")
	}
}

// TestCheckForSigningContentOnly: without trust, the content is checked and no image is; the catalog
// is then signed, and the signature verifies with the signing key.
func TestCheckForSigningContentOnly(t *testing.T) {
	ctx := context.Background()
	dir, _, signer, signerPub := signingFixture(t)
	c, err := CheckForSigning(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Passed() || c.Trust != nil || len(c.Results) != 0 {
		t.Fatalf("content only: passed %v, trust %v, %d results; want passed, no image checked", c.Passed(), c.Trust, len(c.Results))
	}
	desc, err := SignArchive(ctx, c, signer)
	if err != nil {
		t.Fatal(err)
	}
	r, err := archive.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sigs, err := r.CatalogSignatures(ctx, c.Catalog.Digest)
	if err != nil || len(sigs) != 1 || sigs[0].Manifest.Digest != desc.Digest {
		t.Fatalf("catalog signatures %+v, %v; want the one made (%s)", sigs, err, desc.Digest)
	}
	pub, err := verify.LoadKeys([]string{signerPub})
	if err != nil {
		t.Fatal(err)
	}
	if got := verify.CheckCatalogSignatures(sigs, c.Catalog.Digest, pub); !got[0].Valid {
		t.Errorf("the signature does not verify: %+v", got[0])
	}
}

// TestCheckForSigningPasses: an archive of images the station's trust accepts is signed; a damaged
// archive is refused as a failed check; a catalog that changed after the check is not signed.
func TestCheckForSigningPasses(t *testing.T) {
	ctx := context.Background()
	keys := t.TempDir()
	release, releasePub := stationKey(t, keys, "release")
	signer, _ := stationKey(t, keys, "transfer")
	src := &mirrortest.FakeSource{Blobs: map[digest.Digest][]byte{}}
	amd, arm := mirrortest.ImageNode(t, src, "team/app", 100), mirrortest.ImageNode(t, src, "team/app", 150)
	amd.Platform, arm.Platform = "linux/amd64", "linux/arm64"
	idx := mirrortest.IndexNode(t, src, "team/app", amd, arm)
	r, _, _ := saveLayout(t, []*plan.ImagePlan{mirrortest.Plan(t, src, "registry.example.com/team/app:1.0", idx, bundleSignature(t, src, "team/app", idx, release))}, nil)
	station, err := (&verify.Anchors{Keys: []string{releasePub}}).Site()
	if err != nil {
		t.Fatal(err)
	}
	c, err := CheckForSigning(ctx, r.Path, station)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Passed() || len(c.Results) != 1 {
		t.Fatalf("results %+v, want the one image passed", c.Results)
	}

	// The catalog is no longer the one checked: refused, nothing written.
	before, _ := os.ReadFile(filepath.Join(r.Path, "index.json"))
	moved := *c
	moved.Catalog.Digest = digest.FromString("another catalog")
	if _, err := SignArchive(ctx, &moved, signer); !errors.Is(err, plan.ErrCheckFailed) || !strings.Contains(err.Error(), "changed while it was checked") {
		t.Errorf("catalog changed: %v, want refused", err)
	}
	if after, _ := os.ReadFile(filepath.Join(r.Path, "index.json")); !bytes.Equal(before, after) {
		t.Errorf("index.json changed although nothing was signed")
	}
	if _, err := SignArchive(ctx, c, signer); err != nil {
		t.Fatalf("sign: %v", err)
	}

	// A flipped byte in a layer: a failed check before any image is looked at.
	layer := amd.Blobs[1]
	p := filepath.Join(r.Path, "blobs", "sha256", layer.Digest.Encoded())
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckForSigning(ctx, r.Path, station); !errors.Is(err, plan.ErrCheckFailed) || !strings.Contains(err.Error(), layer.Digest.Encoded()) {
		t.Errorf("damaged layer: %v, want a failed check naming %s", err, layer.Digest)
	}
}
