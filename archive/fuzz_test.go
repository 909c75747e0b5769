package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fuzzTar returns a tar stream holding hdrs, each regular file filled with its Size bytes.
func fuzzTar(tb testing.TB, hdrs ...tar.Header) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i, h := range hdrs {
		h.Mode = 0o644
		if err := tw.WriteHeader(&h); err != nil {
			tb.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg && h.Size > 0 {
			if _, err := tw.Write(bytes.Repeat([]byte{byte('a' + i)}, int(h.Size))); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzTarReader checks that indexing an arbitrary tar stream never panics, and that every file it
// serves has a safe name, lies inside the stream, and reads back as exactly the bytes the tar
// stream holds for that entry.
func FuzzTarReader(f *testing.F) {
	valid := fuzzTar(f,
		tar.Header{Name: "oci-layout", Typeflag: tar.TypeReg, Size: 30},
		tar.Header{Name: "blobs/", Typeflag: tar.TypeDir},
		tar.Header{Name: "./blobs/sha256/ab", Typeflag: tar.TypeReg, Size: 700},
		tar.Header{Name: "index.json", Typeflag: tar.TypeReg, Size: 0},
	)
	f.Add(valid)
	f.Add(fuzzTar(f, tar.Header{Name: "../x", Typeflag: tar.TypeReg, Size: 1}))
	f.Add(fuzzTar(f, tar.Header{Name: "index.json", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}))
	f.Add(fuzzTar(f, tar.Header{Name: "a", Typeflag: tar.TypeReg, Size: 3, Format: tar.FormatPAX, PAXRecords: map[string]string{"comment": "x"}}))
	f.Add(fuzzTar(f, tar.Header{Name: strings.Repeat("long/", 40) + "name", Typeflag: tar.TypeReg, Size: 5, Format: tar.FormatGNU}))
	f.Add(valid[:len(valid)/2])
	f.Add(valid[:1024+100])
	f.Fuzz(func(t *testing.T, data []byte) {
		checkTarFS(t, data, valid)
		// Mutated headers almost never keep a valid checksum; fix them so the fuzzer gets past it.
		if fixed := fixTarChecksums(data); !bytes.Equal(fixed, data) {
			checkTarFS(t, fixed, valid)
		}
	})
}

// fixTarChecksums returns a copy of data with the checksum of each header it can find recomputed,
// following the size field of each header to the next one.
func fixTarChecksums(data []byte) []byte {
	out := bytes.Clone(data)
	for off := 0; off+512 <= len(out); {
		blk := out[off : off+512]
		if bytes.Count(blk, []byte{0}) == 512 {
			break
		}
		copy(blk[148:156], "        ")
		sum := 0
		for _, c := range blk {
			sum += int(c)
		}
		copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum))
		size, err := strconv.ParseInt(strings.Trim(string(blk[124:136]), " \x00"), 8, 64)
		if err != nil || size < 0 || size > int64(len(out)) {
			break
		}
		off += 512 + int((size+511)/512*512)
	}
	return out
}

// checkTarFS indexes data as newTarFS does and checks every file it serves.
func checkTarFS(t *testing.T, data, valid []byte) {
	t.Helper()
	tfs, err := newTarFS(bytes.NewReader(data))
	if err != nil && bytes.Equal(data, valid) {
		t.Fatalf("the valid seed tar is refused: %v", err)
	}
	if err != nil {
		if tfs != nil {
			t.Errorf("newTarFS returned both a file system and an error: %v", err)
		}
		return
	}
	want := tarContents(data)
	for name, e := range tfs.files {
		if !fs.ValidPath(name) {
			t.Errorf("file %q: not a valid path", name)
		}
		if e.offset < 0 || e.size < 0 || e.offset > int64(len(data)) || e.size > int64(len(data))-e.offset {
			t.Errorf("file %q: offset %d, size %d outside the %d-byte stream", name, e.offset, e.size, len(data))
			continue
		}
		fl, err := tfs.Open(name)
		if err != nil {
			t.Errorf("Open(%q): %v", name, err)
			continue
		}
		fi, err := fl.Stat()
		if err != nil || fi.Size() != e.size {
			t.Errorf("Stat(%q) = %v, %v; want size %d", name, fi, err, e.size)
		}
		got, err := io.ReadAll(fl)
		fl.Close()
		if err != nil || int64(len(got)) != e.size {
			t.Errorf("reading %q: %d bytes, %v; want %d bytes", name, len(got), err, e.size)
			continue
		}
		if w, ok := want[name]; ok && !bytes.Equal(got, w) {
			t.Errorf("file %q: served %d bytes that differ from the %d bytes archive/tar reads for it", name, len(got), len(w))
		}
	}
	if _, err := tfs.Open("no/such/file"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing file: %v, want fs.ErrNotExist", err)
	}
}

// tarContents reads the regular files of data with archive/tar alone, keyed as tarFS names them.
func tarContents(data []byte) map[string][]byte {
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err != nil {
			return out
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return out
		}
		out[strings.TrimPrefix(hdr.Name, "./")] = b
	}
}

// fuzzLayout writes a small layout with an image and a catalog into dir and returns its index.json.
func fuzzLayout(tb testing.TB, dir string) []byte {
	tb.Helper()
	ctx := context.Background()
	l, err := CreateLayout(dir)
	if err != nil {
		tb.Fatal(err)
	}
	b := []byte(`{"schemaVersion":2}`)
	d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(b), Size: int64(len(b)),
		Annotations: map[string]string{ocispec.AnnotationRefName: "registry.example.com/team/app:1.4.2"}}
	if err := l.PushBytes(ctx, d, b); err != nil {
		tb.Fatal(err)
	}
	l.AddEntry(d)
	key, err := l.AddFile(ctx, "release.pub", KeyMediaType, []byte("-----BEGIN PUBLIC KEY-----\n"))
	if err != nil {
		tb.Fatal(err)
	}
	cat := &Catalog{
		Tool:    Tool{Name: "airlock", Version: "fuzz"},
		Created: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
		Images:  []Image{{Source: "registry.example.com/team/app:1.4.2", Digest: d.Digest}},
		Trust:   Trust{Keys: []File{key}},
	}
	if _, err := l.WriteCatalog(ctx, cat); err != nil {
		tb.Fatal(err)
	}
	if err := l.Commit(); err != nil {
		tb.Fatal(err)
	}
	idx, err := os.ReadFile(filepath.Join(dir, ocispec.ImageIndexFile))
	if err != nil {
		tb.Fatal(err)
	}
	return idx
}

// FuzzCatalog checks that reading the catalog through an arbitrary index.json never panics, and that
// a catalog it returns is the one index.json names.
func FuzzCatalog(f *testing.F) {
	dir := f.TempDir()
	idx := fuzzLayout(f, dir)
	f.Add(idx)
	f.Add([]byte(`{"schemaVersion":2,"manifests":[]}`))
	f.Add([]byte(`{"manifests":[{"digest":"sha256:zz","size":-1,"annotations":{"org.opencontainers.image.ref.name":"airlock.catalog"}}]}`))
	f.Add([]byte(`{"manifests":[{"digest":"../../etc/passwd","size":1,"annotations":{"org.opencontainers.image.ref.name":"airlock.catalog"}}]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[`))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, ocispec.ImageIndexFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(ctx, dir)
		if err != nil {
			if bytes.Equal(data, idx) {
				t.Fatalf("the layout's own index.json is refused: %v", err)
			}
			return
		}
		defer r.Close()
		cat, desc, err := r.Catalog(ctx)
		if err != nil && bytes.Equal(data, idx) {
			t.Fatalf("the layout's own catalog is refused: %v", err)
		}
		if err != nil {
			if cat != nil {
				t.Errorf("Catalog returned both a catalog and an error: %v", err)
			}
			return
		}
		if cat == nil {
			t.Fatal("Catalog returned neither a catalog nor an error")
		}
		listed := false
		for _, d := range r.Index.Manifests {
			if d.Digest == desc.Digest && d.Annotations[ocispec.AnnotationRefName] == CatalogRefName {
				listed = true
			}
		}
		if !listed {
			t.Errorf("catalog %s is not the one index.json names %s", desc.Digest, CatalogRefName)
		}
	})
}

// FuzzVolumeList checks that opening NAME.tar.000 through an arbitrary volume list never panics, and
// that the volumes it accepts are files of the archive's own directory whose sha256 the list gives.
func FuzzVolumeList(f *testing.F) {
	root := f.TempDir()
	fuzzLayout(f, filepath.Join(root, "layout"))
	dir := filepath.Join(root, "out")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	base := filepath.Join(dir, "a.tar")
	// One volume: the sample layout is far smaller than the volume size.
	vols, err := WriteTar(context.Background(), filepath.Join(root, "layout"), base, 1<<30)
	if err != nil || len(vols) != 1 {
		f.Fatalf("WriteTar: %+v, %v", vols, err)
	}
	list, err := os.ReadFile(base + ChecksumSuffix)
	if err != nil {
		f.Fatal(err)
	}
	// A copy of the volume outside the archive's directory, so a list that escapes it could succeed.
	vol, err := os.ReadFile(base + ".000")
	if err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "a.tar.000"), vol, 0o644); err != nil {
		f.Fatal(err)
	}
	sum := vols[0].SHA256
	f.Add(list)
	f.Add([]byte(sum + "  a.tar.000\n\n" + sum + "  a.tar.000\n"))
	f.Add([]byte(sum + "  ../a.tar.000\n"))
	f.Add([]byte(sum + "  " + filepath.Join(root, "a.tar.000") + "\n"))
	f.Add([]byte(sum + "  ..\n"))
	f.Add([]byte(sum + " *a.tar.000\n"))
	f.Add([]byte(strings.ToUpper(sum) + "  a.tar.000\r\n"))
	f.Add([]byte(""))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(base+ChecksumSuffix, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(ctx, base+".000")
		if err != nil {
			if bytes.Equal(data, list) {
				t.Fatalf("the archive's own volume list is refused: %v", err)
			}
			return
		}
		defer r.Close()
		if len(r.Volumes) == 0 {
			t.Fatal("Open succeeded with no volumes")
		}
		for i, v := range r.Volumes {
			p := filepath.Join(dir, v.Name)
			if v.Name == "" || v.Name == "." || v.Name == ".." || filepath.Base(v.Name) != v.Name || filepath.Dir(p) != dir {
				t.Errorf("volume %d %q is not a file of %s", i, v.Name, dir)
				continue
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Errorf("volume %d %q: %v", i, v.Name, err)
				continue
			}
			if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != strings.ToLower(v.SHA256) || v.Size != int64(len(b)) {
				t.Errorf("volume %d %q: sha256 %x, size %d; the reader says %s, %d", i, v.Name, got, len(b), v.SHA256, v.Size)
			}
		}
		if _, err := fs.ReadFile(r.FS(), ocispec.ImageIndexFile); err != nil {
			t.Errorf("opened archive has no readable index.json: %v", err)
		}
	})
}
