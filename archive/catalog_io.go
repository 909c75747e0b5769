package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"oras.land/oras-go/v2/content"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxCatalogSize bounds the catalog JSON and manifest read back from an archive.
const maxCatalogSize = 64 << 20

// ErrNoCatalog reports an archive without a catalog: not written by airlock, or interrupted before it
// was complete.
var ErrNoCatalog = errors.New("the archive has no catalog: it is incomplete (interrupted save?) or was not written by airlock; run save again")

// AddFile stores b as a blob of the layout and describes it as a catalog file.
func (l *Layout) AddFile(ctx context.Context, name, mediaType string, b []byte) (File, error) {
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if err := l.PushBytes(ctx, desc, b); err != nil {
		return File{}, fmt.Errorf("store %s: %w", name, err)
	}
	return File{Name: name, Digest: desc.Digest, Size: desc.Size, MediaType: mediaType}, nil
}

// WriteCatalog stores c as the catalog artifact, its trust files (already added with AddFile) as its
// layers, and lists it in index.json as airlock.catalog. Call it last, just before Commit.
func (l *Layout) WriteCatalog(ctx context.Context, c *Catalog) (ocispec.Descriptor, error) {
	cb, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	catFile, err := l.AddFile(ctx, "catalog.json", CatalogMediaType, cb)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	empty := ocispec.DescriptorEmptyJSON
	if err := l.PushBytes(ctx, empty, empty.Data); err != nil {
		return ocispec.Descriptor{}, err
	}
	layers := []ocispec.Descriptor{fileDesc(catFile)}
	for _, f := range c.Trust.files() {
		layers = append(layers, fileDesc(f))
	}
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: CatalogArtifactType,
		Config:       ocispec.Descriptor{MediaType: empty.MediaType, Digest: empty.Digest, Size: empty.Size},
		Layers:       layers,
		Annotations:  map[string]string{ocispec.AnnotationCreated: c.Created.UTC().Format("2006-01-02T15:04:05Z")},
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := ocispec.Descriptor{MediaType: m.MediaType, ArtifactType: m.ArtifactType, Digest: digest.FromBytes(mb), Size: int64(len(mb))}
	if err := l.PushBytes(ctx, desc, mb); err != nil {
		return ocispec.Descriptor{}, err
	}
	entry := desc
	entry.Annotations = map[string]string{ocispec.AnnotationRefName: CatalogRefName}
	l.AddEntry(entry)
	return desc, nil
}

func (t Trust) files() []File {
	var fs []File
	fs = append(fs, t.Keys...)
	for _, f := range []*File{t.TrustedRoot, t.Policy, t.ImageSet} {
		if f != nil {
			fs = append(fs, *f)
		}
	}
	return fs
}

func fileDesc(f File) ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType:   f.MediaType,
		Digest:      f.Digest,
		Size:        f.Size,
		Annotations: map[string]string{ocispec.AnnotationTitle: f.Name},
	}
}

// ReadVerified reads the blob desc from f into memory, refusing more than max bytes, and checks its
// size (when the descriptor gives one) and its digest. It is how manifests, catalogs, keys and
// signature layers are read, from an archive or a registry alike.
func ReadVerified(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor, max int64) ([]byte, error) {
	if desc.Size > max {
		return nil, fmt.Errorf("%s: %d bytes is more than the %d allowed here", desc.Digest, desc.Size, max)
	}
	rc, err := f.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: more than the %d bytes allowed here", desc.Digest, max)
	}
	if desc.Size > 0 && int64(len(b)) != desc.Size {
		return nil, fmt.Errorf("%s: %d bytes, the descriptor says %d: the content is damaged or was altered", desc.Digest, len(b), desc.Size)
	}
	if got := desc.Digest.Algorithm().FromBytes(b); got != desc.Digest {
		return nil, &DigestMismatchError{Expected: desc.Digest, Actual: got}
	}
	return b, nil
}
