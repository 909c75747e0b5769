package seed

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
)

// layerSize is the size of the random file in each layer.
const layerSize = 4 << 10

// pushedImage is the index pushIndex wrote.
type pushedImage struct {
	index     ocispec.Descriptor
	platforms map[string]ocispec.Descriptor
	blobs     []ocispec.Descriptor
}

// pushIndex builds and pushes a two-platform image index tagged tag: each platform
// manifest has the shared base layer, one layer of its own and its config.
func pushIndex(ctx context.Context, repo *remote.Repository, tag string) (*pushedImage, error) {
	img := &pushedImage{platforms: map[string]ocispec.Descriptor{}}
	base, baseTar, err := pushLayer(ctx, repo, "base.bin")
	if err != nil {
		return nil, err
	}
	img.blobs = append(img.blobs, base)
	idx := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
	}
	for _, p := range Platforms {
		os, arch, _ := strings.Cut(p, "/")
		own, ownTar, err := pushLayer(ctx, repo, arch+".bin")
		if err != nil {
			return nil, err
		}
		config := ocispec.Image{
			Platform: ocispec.Platform{OS: os, Architecture: arch},
			Config:   ocispec.ImageConfig{Cmd: []string{"/" + arch + ".bin"}},
			RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{
				digest.FromBytes(baseTar), digest.FromBytes(ownTar),
			}},
		}
		configDesc, err := pushJSON(ctx, repo, ocispec.MediaTypeImageConfig, config)
		if err != nil {
			return nil, err
		}
		img.blobs = append(img.blobs, own, configDesc)
		m := ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    configDesc,
			Layers:    []ocispec.Descriptor{base, own},
		}
		desc, err := pushJSON(ctx, repo, ocispec.MediaTypeImageManifest, m)
		if err != nil {
			return nil, err
		}
		desc.Platform = &ocispec.Platform{OS: os, Architecture: arch}
		img.platforms[p] = desc
		idx.Manifests = append(idx.Manifests, desc)
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return nil, err
	}
	img.index = content.NewDescriptorFromBytes(ocispec.MediaTypeImageIndex, b)
	if err := repo.PushReference(ctx, img.index, bytes.NewReader(b), tag); err != nil {
		return nil, fmt.Errorf("push index %s:%s: %w", repo.Reference, tag, err)
	}
	return img, nil
}

// pushLayer pushes an uncompressed tar layer holding one file of random bytes and
// returns its descriptor and bytes (the tar is its own diff ID).
func pushLayer(ctx context.Context, repo *remote.Repository, name string) (ocispec.Descriptor, []byte, error) {
	data := make([]byte, layerSize)
	if _, err := rand.Read(data); err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	if err := tw.Close(); err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	desc, err := pushBytes(ctx, repo, ocispec.MediaTypeImageLayer, buf.Bytes())
	return desc, buf.Bytes(), err
}

// pushJSON pushes v, marshalled, as a blob or manifest of the given media type.
func pushJSON(ctx context.Context, repo *remote.Repository, mediaType string, v any) (ocispec.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return pushBytes(ctx, repo, mediaType, b)
}

// pushBytes pushes b as a blob or manifest of the given media type.
func pushBytes(ctx context.Context, repo *remote.Repository, mediaType string, b []byte) (ocispec.Descriptor, error) {
	desc := content.NewDescriptorFromBytes(mediaType, b)
	if err := repo.Push(ctx, desc, bytes.NewReader(b)); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push %s %s to %s: %w", mediaType, desc.Digest, repo.Reference, err)
	}
	return desc, nil
}
