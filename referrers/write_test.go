package referrers

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"airlock.dev/airlock/vocab"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
)

// indexStore is one tag of a repository, in memory.
type indexStore struct {
	tag    string
	b      []byte
	pushed []byte
}

func (s *indexStore) FetchReference(_ context.Context, ref string) (ocispec.Descriptor, io.ReadCloser, error) {
	if ref != s.tag || s.b == nil {
		return ocispec.Descriptor{}, nil, errdef.ErrNotFound
	}
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(s.b), Size: int64(len(s.b))}, io.NopCloser(bytes.NewReader(s.b)), nil
}

func (s *indexStore) PushReference(_ context.Context, _ ocispec.Descriptor, r io.Reader, ref string) error {
	b, err := io.ReadAll(r)
	s.pushed = b
	return err
}

// TestEnsureTagSchemaIndexAtTheLimit: a tag-schema index already on the target of exactly
// vocab.MaxManifestSize bytes is read whole and kept (its entry stays, the new one is added); one
// byte more is not read as an index.
func TestEnsureTagSchemaIndexAtTheLimit(t *testing.T) {
	subject := digest.FromString("subject")
	old := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("old"), Size: 1}
	add := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("new"), Size: 1}
	idx, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{old}})
	pad := func(n int) []byte {
		return append(append([]byte(nil), idx...), bytes.Repeat([]byte(" "), n-len(idx))...)
	}

	s := &indexStore{tag: TagFor(subject), b: pad(vocab.MaxManifestSize)}
	pushed, err := EnsureTagSchema(context.Background(), s, subject, []ocispec.Descriptor{add})
	if err != nil || !pushed {
		t.Fatalf("index of %d bytes: pushed %v, %v", vocab.MaxManifestSize, pushed, err)
	}
	var got ocispec.Index
	if err := json.Unmarshal(s.pushed, &got); err != nil || len(got.Manifests) != 2 || got.Manifests[0].Digest != old.Digest || got.Manifests[1].Digest != add.Digest {
		t.Errorf("pushed index %s (%v), want the old entry kept and the new one added", s.pushed, err)
	}

	s = &indexStore{tag: TagFor(subject), b: pad(vocab.MaxManifestSize + 1)}
	if _, err := EnsureTagSchema(context.Background(), s, subject, []ocispec.Descriptor{add}); err == nil || !strings.Contains(err.Error(), "over the 4194304-byte manifest limit") {
		t.Errorf("index of %d bytes: got %v, want it refused as over the limit", vocab.MaxManifestSize+1, err)
	}
}
