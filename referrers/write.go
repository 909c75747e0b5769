package referrers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"airlock.dev/airlock/vocab"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
)

// IndexStore is what keeping a tag-schema index needs of a repository.
type IndexStore interface {
	FetchReference(ctx context.Context, reference string) (ocispec.Descriptor, io.ReadCloser, error)
	PushReference(ctx context.Context, expected ocispec.Descriptor, content io.Reader, reference string) error
}

// Describe returns the descriptor a referrers listing gives the referrer manifest b: media type,
// digest, size, artifact type (from the manifest itself) and the manifest's annotations.
func Describe(mediaType string, b []byte) ocispec.Descriptor {
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	_ = json.Unmarshal(b, &m)
	return ocispec.Descriptor{
		MediaType:    mediaType,
		Digest:       digest.FromBytes(b),
		Size:         int64(len(b)),
		ArtifactType: ArtifactType(b),
		Annotations:  m.Annotations,
	}
}

// EnsureTagSchema makes the sha256-<hex> index of subject on a registry without the referrers API list
// every one of refs, keeping whatever it already lists. The referrers must already be pushed: the tag
// is written after what it points to exists. Nothing is deleted (registries often have delete
// disabled); an index that is replaced is left untagged. It reports whether it pushed a new index.
func EnsureTagSchema(ctx context.Context, repo IndexStore, subject digest.Digest, refs []ocispec.Descriptor) (bool, error) {
	tag := TagFor(subject)
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	desc, rc, err := repo.FetchReference(ctx, tag)
	switch {
	case errors.Is(err, errdef.ErrNotFound):
	case err != nil:
		return false, fmt.Errorf("read referrers index %s: %w", tag, err)
	default:
		b, rerr := io.ReadAll(io.LimitReader(rc, vocab.MaxManifestSize+1))
		rc.Close()
		if rerr != nil {
			return false, fmt.Errorf("read referrers index %s: %w", tag, rerr)
		}
		if len(b) > vocab.MaxManifestSize {
			return false, fmt.Errorf("referrers index %s on the target is over the %d-byte manifest limit; it cannot be kept: delete the tag, or use a registry with the referrers API", tag, vocab.MaxManifestSize)
		}
		if desc.MediaType == ocispec.MediaTypeImageIndex {
			if err := json.Unmarshal(b, &idx); err != nil {
				return false, fmt.Errorf("referrers index %s on the target is not valid JSON: %w", tag, err)
			}
		}
		// A tag of that name that is not an index is not a referrers index: it is replaced.
	}
	have := map[digest.Digest]bool{}
	for _, m := range idx.Manifests {
		have[m.Digest] = true
	}
	changed := false
	for _, r := range refs {
		if !have[r.Digest] {
			idx.Manifests = append(idx.Manifests, r)
			have[r.Digest] = true
			changed = true
		}
	}
	if !changed {
		return false, nil
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return false, err
	}
	nd := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if err := repo.PushReference(ctx, nd, bytes.NewReader(b), tag); err != nil {
		return false, fmt.Errorf("push referrers index %s: %w", tag, err)
	}
	return true, nil
}
