package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
)

// pushRandomImage pushes a one-layer image with size random bytes to host/repo:tag and returns the
// manifest digest.
func pushRandomImage(ctx context.Context, t testing.TB, host, repoName, tag string, size int) digest.Digest {
	t.Helper()
	repo, push := testRepository(ctx, t, host, repoName)
	layer := make([]byte, size)
	rand.Read(layer)
	cfg, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}})
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    push(ocispec.MediaTypeImageConfig, cfg),
		Layers:    []ocispec.Descriptor{push(ocispec.MediaTypeImageLayer, layer)},
	}
	mb, _ := json.Marshal(m)
	md := ocispec.Descriptor{MediaType: m.MediaType, Digest: digest.FromBytes(mb), Size: int64(len(mb))}
	if err := repo.PushReference(ctx, md, bytes.NewReader(mb), tag); err != nil {
		t.Fatal(err)
	}
	return md.Digest
}

// testRepository opens host/name with an oras-go client independent of airlock, and returns it with a
// function that pushes content there, failing the test on error, and returns its descriptor.
func testRepository(ctx context.Context, t testing.TB, host, name string) (*remote.Repository, func(mediaType string, b []byte) ocispec.Descriptor) {
	t.Helper()
	repo, err := remote.NewRepository(host + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	return repo, func(mt string, b []byte) ocispec.Descriptor {
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
		if err := repo.Push(ctx, d, bytes.NewReader(b)); err != nil {
			t.Fatalf("push %s to %s: %v", mt, name, err)
		}
		return d
	}
}
