package plan

import (
	"bytes"
	"context"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasregistry "oras.land/oras-go/v2/registry"

	"airlock.dev/airlock/archive"
)

// fetchReference reads the manifest reference names (a tag or a digest) with one GET where src can
// (oras-go's registry.ReferenceFetcher: a registry), checks it against the digest the registry names
// for it and its size (bounded), and retries a body cut short. Elsewhere it only resolves the
// reference, and returns no bytes.
func (p *Planner) fetchReference(ctx context.Context, src Source, reference string) (ocispec.Descriptor, []byte, error) {
	rf, ok := src.(orasregistry.ReferenceFetcher)
	if !ok {
		d, err := src.Resolve(ctx, reference)
		return d, nil, err
	}
	var d ocispec.Descriptor
	var b []byte
	err := p.retry().Do(ctx, "manifest "+reference, func(ctx context.Context) error {
		var err error
		d, b, err = ReadReference(ctx, rf, reference)
		return err
	})
	return d, b, err
}

// ReadReference reads the manifest reference names with one GET, bounded and checked against the
// digest the registry names for it.
func ReadReference(ctx context.Context, rf orasregistry.ReferenceFetcher, reference string) (ocispec.Descriptor, []byte, error) {
	d, rc, err := rf.FetchReference(ctx, reference)
	if err != nil {
		return d, nil, err
	}
	defer rc.Close()
	b, err := archive.ReadVerified(ctx, opened{rc}, d, archive.MaxManifestSize)
	return d, b, err
}

// opened is a content.Fetcher over a body already open, for archive.ReadVerified.
type opened struct{ rc io.ReadCloser }

func (o opened) Fetch(context.Context, ocispec.Descriptor) (io.ReadCloser, error) { return o.rc, nil }

// fetched is a Source that serves one manifest already read (the root, by resolve) from memory.
type fetched struct {
	Source
	desc ocispec.Descriptor
	b    []byte
}

func (f fetched) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if f.b != nil && desc.Digest == f.desc.Digest {
		return io.NopCloser(bytes.NewReader(f.b)), nil
	}
	return f.Source.Fetch(ctx, desc)
}
