package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Base is what a previous archive holds, for writing a delta against it.
type Base struct {
	// Digest is the previous archive's catalog digest.
	Digest digest.Digest
	// Contents is every digest the previous archive holds (with its own base, for a delta).
	Contents []digest.Digest
	set      map[digest.Digest]bool
	reader   *Reader
}

// Has reports whether the previous archive holds d.
func (b *Base) Has(ctx context.Context, d ocispec.Descriptor) bool {
	if b.set[d.Digest] {
		return true
	}
	if b.reader != nil {
		ok, err := b.reader.Exists(ctx, d)
		return err == nil && ok
	}
	return false
}

// Close releases the previous archive, if it was opened.
func (b *Base) Close() error {
	if b.reader != nil {
		return b.reader.Close()
	}
	return nil
}

// OpenBase reads what a previous archive holds: from the archive itself (a directory, NAME.tar or
// NAME.tar.000), or from its catalog as `airlock inspect --format json` printed it, which is all the
// connected side keeps once the archive has gone to the site.
func OpenBase(ctx context.Context, path string) (*Base, error) {
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		if b, err := os.ReadFile(path); err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
			var cf CatalogFile
			if err := json.Unmarshal(b, &cf); err != nil {
				return nil, fmt.Errorf("%s: not a catalog printed by airlock inspect --format json: %w", path, err)
			}
			if cf.Digest.Validate() != nil || len(cf.Contents) == 0 {
				return nil, fmt.Errorf("%s: the catalog has no digest or no contents list (written by an older airlock?); give the previous archive itself", path)
			}
			return newBase(cf.Digest, cf.Contents, nil), nil
		}
	}
	r, err := Open(ctx, path)
	if err != nil {
		return nil, err
	}
	cat, desc, err := r.Catalog(ctx)
	if err != nil {
		r.Close()
		return nil, err
	}
	return newBase(desc.Digest, cat.Contents, r), nil
}

func newBase(d digest.Digest, contents []digest.Digest, r *Reader) *Base {
	b := &Base{Digest: d, Contents: contents, set: make(map[digest.Digest]bool, len(contents)), reader: r}
	for _, c := range contents {
		b.set[c] = true
	}
	return b
}
