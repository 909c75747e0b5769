package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestDamagedBlobNamesItsVolumes: a blob of tar volumes that does not hash to its name is refused at
// open, naming the volumes that hold it, exactly: one volume; two to six, listed ("volumes A, B and
// C"); seven or more, as a range ("volumes A to G (7 volumes)"), at six and at seven volumes too. The
// volumes are computed here from the tar stream itself.
func TestDamagedBlobNamesItsVolumes(t *testing.T) {
	seen := map[int]bool{}
	// One layout per victim, its blob damaged, so that every tar written from it is the same stream
	// (the sample's blobs are random: a new sample puts them elsewhere).
	layouts := map[int]string{}
	check := func(victim int, volumeSize int64) (off, end int64) {
		t.Helper()
		ctx := context.Background()
		dir := t.TempDir()
		layout, ok := layouts[victim]
		if !ok {
			layout = filepath.Join(t.TempDir(), "layout")
			_, descs := writeSample(t, layout)
			d := descs[victim]
			p := filepath.Join(layout, "blobs", "sha256", d.Digest.Encoded())
			if err := os.WriteFile(p, bytes.Repeat([]byte("x"), int(d.Size)), 0o644); err != nil {
				t.Fatal(err)
			}
			layouts[victim] = layout
		}
		name, size := damagedBlob(t, layout)
		base := filepath.Join(dir, "a.tar")
		vols, err := writeTar(ctx, layout, base, volumeSize, false)
		if err != nil {
			t.Fatal(err)
		}
		want, span, off := holdingVolumes(t, dir, vols, volumeSize, name, size)
		seen[span] = true
		_, err = Open(ctx, filepath.Join(dir, vols[0].Name))
		if err == nil || !strings.Contains(err.Error(), "it is in "+want+";") {
			t.Errorf("volume size %d: open: %v\nwant it to name %q", volumeSize, err, want)
		}
		return off, off + size
	}
	off, end := check(0, 1<<20) // one volume; where blob 0 lies in the stream
	check(0, end)               // it ends exactly where the first volume does: one volume (volhash.go:102)
	check(0, end-100)           // it starts in the first volume and ends in the second (volhash.go:103)
	if off >= 1024 {
		check(0, off) // it starts exactly where the second volume does (volhash.go:100)
	}
	check(0, 2048) // a few
	check(1, 4096) // many
	for vs := int64(700); vs <= 1100 && !(seen[6] && seen[7]); vs += 4 {
		check(0, vs)
	}
	few, many := false, false
	for n := range seen {
		few, many = few || (n >= 2 && n <= 5), many || n >= 8
	}
	if !seen[1] || !few || !seen[6] || !seen[7] || !many {
		t.Errorf("the cases held the blob in %v volumes; want 1, 2 to 5, 6, 7 and 8 or more", seen)
	}
}

// damagedBlob names the blob of layout that does not hash to its name, and its size.
func damagedBlob(t *testing.T, layout string) (string, int64) {
	t.Helper()
	dir := filepath.Join(layout, "blobs", "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if digest.FromBytes(b).Encoded() != e.Name() {
			return "blobs/sha256/" + e.Name(), int64(len(b))
		}
	}
	t.Fatal("no damaged blob in " + layout)
	return "", 0
}

// holdingVolumes finds the entry name in the stream of vols (each volumeSize bytes but the last) and
// says which volumes hold its size bytes, as volumesHolding words it.
func holdingVolumes(t *testing.T, dir string, vols []Volume, volumeSize int64, name string, size int64) (string, int, int64) {
	t.Helper()
	var stream []byte
	for _, v := range vols {
		b, err := os.ReadFile(filepath.Join(dir, v.Name))
		if err != nil {
			t.Fatal(err)
		}
		stream = append(stream, b...)
	}
	r := bytes.NewReader(stream)
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("%s not in the stream", name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name != name {
			continue
		}
		off := r.Size() - int64(r.Len())
		first, last := int(off/volumeSize), int((off+size-1)/volumeSize)
		span := last - first + 1
		switch {
		case span == 1:
			return "volume " + vols[first].Name, span, off
		case span >= 7:
			return fmt.Sprintf("volumes %s to %s (%d volumes)", vols[first].Name, vols[last].Name, span), span, off
		}
		var names []string
		for _, v := range vols[first:last] {
			names = append(names, v.Name)
		}
		return "volumes " + strings.Join(names, ", ") + " and " + vols[last].Name, span, off
	}
}

// TestErrJoin: an error with nothing more to say is returned as it is; with a second failure (the
// journal could not be written), both are in the message and the first still matches.
func TestErrJoin(t *testing.T) {
	first, also := errors.New("blob short"), errors.New("journal full")
	if got := errJoin(first, nil); got != first {
		t.Errorf("errJoin(err, nil) = %v, want err itself", got)
	}
	got := errJoin(first, also)
	if !errors.Is(got, first) || got.Error() != "blob short (and journal full)" {
		t.Errorf("errJoin(err, also) = %q", got)
	}
}
