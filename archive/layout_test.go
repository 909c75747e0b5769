package archive

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/content"
)

// TestLayoutExistsRecordsWhatItHashed: a blob this host did not write (copied in by hand) is hashed
// before it is trusted, and once found right it is recorded, so the next Exists need not hash it;
// Discard forgets the record.
func TestLayoutExistsRecordsWhatItHashed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := CreateLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, desc := blob(t, 5000)
	p := BlobPath(dir, desc.Digest)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if l.verified.trusted(desc.Digest, fi) {
		t.Fatal("a blob copied in by hand is trusted before it is hashed")
	}
	if ok, err := l.Exists(ctx, desc); !ok || err != nil {
		t.Fatalf("Exists of a right blob: %v, %v", ok, err)
	}
	if !l.verified.trusted(desc.Digest, fi) {
		t.Error("a blob hashed and found right is not recorded")
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	record, _ := verifiedStateFile(dir)
	if _, err := os.Stat(record); err != nil {
		t.Fatalf("no record after Commit: %v", err)
	}
	l.Discard()
	if _, err := os.Stat(record); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the record is still there after Discard: %v", err)
	}
	if l.verified.trusted(desc.Digest, fi) {
		t.Error("a blob is still trusted after Discard")
	}
}

// TestLayoutPushResumesPartial: the bytes an interrupted push kept are hashed again and only the rest
// is asked for; a partial file longer than the blob is not one of its and is started over.
func TestLayoutPushResumesPartial(t *testing.T) {
	ctx := context.Background()
	b, desc := blob(t, 9000)
	for _, c := range []struct {
		name    string
		partial []byte
		from    int64
	}{
		{"kept part", b[:4000], 4000},
		{"longer than the blob", append(append([]byte(nil), b...), "trailing"...), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			l, err := CreateLayout(dir)
			if err != nil {
				t.Fatal(err)
			}
			partial := filepath.Join(dir, ingestDir, desc.Digest.Encoded()+".partial")
			if err := os.WriteFile(partial, c.partial, 0o644); err != nil {
				t.Fatal(err)
			}
			from := int64(-1)
			got, err := l.PushResumable(ctx, desc, func(off int64) (io.ReadCloser, error) {
				from = off
				return io.NopCloser(bytes.NewReader(b[off:])), nil
			})
			if err != nil || from != c.from || got != desc.Size-c.from {
				t.Fatalf("resumed from %d, %d bytes, %v; want from %d, %d bytes", from, got, err, c.from, desc.Size-c.from)
			}
			if stored, err := os.ReadFile(BlobPath(dir, desc.Digest)); err != nil || !bytes.Equal(stored, b) {
				t.Fatalf("stored blob wrong (%v)", err)
			}
			if _, err := os.Stat(partial); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the partial file is left: %v", err)
			}
		})
	}
}

// TestDigestMismatchError: the message names what the bytes hash to when known, and the error
// matches oras-go's ErrMismatchedDigest (and nothing else), so retries tell it from a transient one.
func TestDigestMismatchError(t *testing.T) {
	want, got := digest.FromString("want"), digest.FromString("got")
	e := &DigestMismatchError{Expected: want, Actual: got}
	if msg := e.Error(); msg != "content named "+want.String()+" hashes to "+got.String()+": it was damaged or altered in transit" {
		t.Errorf("message %q", msg)
	}
	if msg := (&DigestMismatchError{Expected: want}).Error(); !strings.Contains(msg, want.String()+" does not hash to that digest") {
		t.Errorf("message without the actual digest %q", msg)
	}
	if !errors.Is(e, content.ErrMismatchedDigest) {
		t.Error("not content.ErrMismatchedDigest")
	}
	if errors.Is(e, content.ErrTrailingData) || errors.Is(e, os.ErrNotExist) {
		t.Error("matches errors other than content.ErrMismatchedDigest")
	}
}

// TestOpenNamesFirstOfSeveralRewrittenBlobs: of several blobs that do not hash to their names in
// volumes rewritten with their list, the smallest digest is named and the others counted.
func TestOpenNamesFirstOfSeveralRewrittenBlobs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	_, d := writeCheckSample(t, layout)
	vols, err := WriteTar(ctx, layout, filepath.Join(dir, "a.tar"), 16<<10)
	if err != nil {
		t.Fatal(err)
	}
	var blobs [][]byte
	for _, name := range []string{"layer", "image"} {
		b, err := os.ReadFile(BlobPath(layout, d[name].Digest))
		if err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, b)
	}
	rewriteVolumes(t, dir, vols, func(stream []byte) {
		for _, b := range blobs {
			at := bytes.Index(stream, b)
			if at < 0 {
				t.Fatal("a blob is not in the tar stream")
			}
			stream[at+len(b)/2] ^= 1
		}
	})
	_, err = Open(ctx, filepath.Join(dir, "a.tar.000"))
	first := min(d["layer"].Digest, d["image"].Digest)
	wantCheckError(t, err, first, "", "blob "+first.String()+" in the tar volumes does not hash to its name (2 such blob(s))")
}
