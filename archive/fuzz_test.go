package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
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

// FuzzTarReader checks that indexing an arbitrary tar stream, and hashing it as Open does, never
// panics, and that every file it serves has a safe name, lies inside the stream apart from every
// other, and reads back as exactly the bytes the tar stream holds for that entry, as archive/tar
// reads them (so a sparse file, whose logical bytes are not the bytes stored, is never served).
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
	// Sparse files and reshaped entries, which archive/tar reads without an error.
	for _, c := range hostileTars() {
		f.Add(c.data)
	}
	pax := fuzzTar(f,
		tar.Header{Name: "oci-layout", Typeflag: tar.TypeReg, Size: 30, Format: tar.FormatPAX, PAXRecords: map[string]string{"comment": "x"}},
		tar.Header{Name: "blobs/sha256/ab", Typeflag: tar.TypeReg, Size: 700, Format: tar.FormatPAX, ModTime: time.Unix(1, 5)},
	)
	f.Add(pax)
	f.Add(fuzzTar(f, tar.Header{Name: "blobs/sha256/" + strings.Repeat("c", 120), Typeflag: tar.TypeReg, Size: 9, Format: tar.FormatGNU}))
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
	type span struct {
		name      string
		off, size int64
	}
	var spans []span
	for name, e := range tfs.files {
		spans = append(spans, span{name, e.offset, e.size})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].off < spans[j].off })
	for i := 1; i < len(spans); i++ {
		if prev := spans[i-1]; prev.off+prev.size > spans[i].off-512 {
			t.Errorf("files %q [%d, +%d) and %q at %d overlap, or leave no room for a header between them", prev.name, prev.off, prev.size, spans[i].name, spans[i].off)
		}
	}
	checkBlobHashes(t, data, tfs)
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
		if w, ok := want[name]; !ok {
			t.Errorf("file %q: served, but archive/tar reads no such regular file", name)
		} else if !bytes.Equal(got, w) {
			t.Errorf("file %q: served %d bytes that differ from the %d bytes archive/tar reads for it", name, len(got), len(w))
		}
	}
	if _, err := tfs.Open("no/such/file"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing file: %v, want fs.ErrNotExist", err)
	}
}

// checkBlobHashes hashes data as hashVolumesAndBlobs does, in small chunks that cross entries, and
// checks that the blobs it finds right and wrong are exactly those whose served bytes do and do not
// match their names.
func checkBlobHashes(t *testing.T, data []byte, tfs *tarFS) {
	t.Helper()
	h := &blobHasher{spans: blobSpans(tfs)}
	for off := 0; off < len(data); off += 700 {
		h.write(int64(off), data[off:min(off+700, len(data))])
	}
	ok, bad := h.ok, h.bad
	verdict := map[digest.Digest]bool{}
	for _, d := range ok {
		verdict[d] = true
	}
	for _, d := range bad {
		if verdict[d] {
			t.Errorf("blob %s found both right and wrong", d)
		}
		verdict[d] = false
	}
	for name, e := range tfs.files {
		d, isBlob := blobDigest(name)
		found, hashed := verdict[d]
		if !isBlob || !hashed || e.offset < 0 || e.size < 0 || e.offset+e.size > int64(len(data)) {
			continue // a file outside the stream is reported by checkTarFS
		}
		if right := d.Algorithm().FromBytes(data[e.offset:e.offset+e.size]) == d; right != found {
			t.Errorf("blob %s: hashing the stream found it right: %v; its bytes hash right: %v", d, found, right)
		}
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
	f.Add([]byte(listHeader + strconv.Itoa(len(vol)) + "  a.tar.000\n"))
	f.Add([]byte(strconv.Itoa(len(vol)-512) + "  a.tar.000\n"))
	f.Add([]byte(strconv.Itoa(len(vol)) + "  a.tar.000\n" + sum + "  a.tar.001\n"))
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
			// A list gives sums (each must match) or sizes (each must match): never neither.
			if got := sha256.Sum256(b); v.SHA256 != "" && hex.EncodeToString(got[:]) != strings.ToLower(v.SHA256) || v.Size != int64(len(b)) {
				t.Errorf("volume %d %q: sha256 %x, size %d; the reader says %s, %d", i, v.Name, got, len(b), v.SHA256, v.Size)
			}
		}
		if _, err := fs.ReadFile(r.FS(), ocispec.ImageIndexFile); err != nil {
			t.Errorf("opened archive has no readable index.json: %v", err)
		}
	})
}

// fuzzImageLayout writes a layout as save writes one: an image (config, a layer), a cosign-tag
// signature referring to it, and a catalog listing both; it returns index.json.
func fuzzImageLayout(tb testing.TB, dir string) []byte {
	tb.Helper()
	ctx := context.Background()
	l, err := CreateLayout(dir)
	if err != nil {
		tb.Fatal(err)
	}
	push := func(mt string, b []byte) ocispec.Descriptor {
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
		if err := l.PushBytes(ctx, d, b); err != nil {
			tb.Fatal(err)
		}
		return d
	}
	layer := push(ocispec.MediaTypeImageLayer, bytes.Repeat([]byte("layer"), 2000))
	cfg := push(ocispec.MediaTypeImageConfig, []byte(`{}`))
	mb, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}})
	img := push(ocispec.MediaTypeImageManifest, mb)
	rb, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Subject: &img})
	ref := push(ocispec.MediaTypeImageManifest, rb)
	const source = "registry.example.com/team/app:1.4.2"
	e := img
	e.Annotations = map[string]string{ocispec.AnnotationRefName: source}
	l.AddEntry(e)
	tag := "sha256-" + img.Digest.Encoded() + ".sig"
	e = ref
	e.Annotations = map[string]string{ocispec.AnnotationRefName: "registry.example.com/team/app:" + tag}
	l.AddEntry(e)
	contents := []digest.Digest{layer.Digest, cfg.Digest, img.Digest, ref.Digest}
	sort.Slice(contents, func(i, j int) bool { return contents[i] < contents[j] })
	cat := &Catalog{
		Tool:      Tool{Name: "airlock", Version: "fuzz"},
		Created:   time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
		Images:    []Image{{Source: source, Digest: img.Digest, MediaType: img.MediaType, Size: img.Size}},
		Referrers: []Referrer{{Digest: ref.Digest, MediaType: ref.MediaType, Size: ref.Size, Kind: "signature", Subject: img.Digest, FoundBy: "cosign-tag", Tag: tag}},
		Contents:  contents,
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

// FuzzIndexJSON feeds an arbitrary index.json to everything that reads it once the archive is open
// (Open parses it; Catalog, Check and VerifyContents, Resolve, Exists and Fetch follow it) and checks
// that nothing panics, that the layout's own index.json passes, that what Check accepts lists every
// image of the catalog under its source with the catalog's digest, and that whatever Fetch serves
// for a descriptor of index.json and reads to its end is exactly the bytes that descriptor names.
func FuzzIndexJSON(f *testing.F) {
	dir := f.TempDir()
	idx := fuzzImageLayout(f, dir)
	var parsed ocispec.Index
	if err := json.Unmarshal(idx, &parsed); err != nil {
		f.Fatal(err)
	}
	f.Add(idx)
	// The same index, each entry's fields turned hostile in turn.
	for i := range parsed.Manifests {
		for _, edit := range []func(*ocispec.Descriptor){
			func(d *ocispec.Descriptor) { d.Size = -1 },
			func(d *ocispec.Descriptor) { d.Size = 1 << 62 },
			func(d *ocispec.Descriptor) { d.Digest = "sha256:../../../etc/passwd" },
			func(d *ocispec.Descriptor) { d.Digest = digest.Digest("sha512:" + strings.Repeat("a", 128)) },
			func(d *ocispec.Descriptor) { d.Annotations = nil },
			func(d *ocispec.Descriptor) {
				d.Annotations = map[string]string{ocispec.AnnotationRefName: CatalogRefName}
			},
			func(d *ocispec.Descriptor) { d.MediaType = ocispec.MediaTypeImageIndex },
		} {
			c := parsed
			c.Manifests = slices.Clone(parsed.Manifests)
			edit(&c.Manifests[i])
			b, _ := json.Marshal(c)
			f.Add(b)
		}
	}
	dup := parsed
	dup.Manifests = append(slices.Clone(parsed.Manifests), parsed.Manifests...)
	b, _ := json.Marshal(dup)
	f.Add(b)
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"digest":"sha256:zz","size":"1"}]}`))
	f.Add([]byte(`{"manifests":[{"manifests":[{"manifests":[]}]}],"manifests":null}`))
	f.Add([]byte(strings.Repeat(`{"a":`, 10000)))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[` + strings.Repeat(`{},`, 1000) + `{}]}`))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, ocispec.ImageIndexFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		own := bytes.Equal(data, idx)
		r, err := Open(ctx, dir)
		if err != nil {
			if own {
				t.Fatalf("the layout's own index.json is refused: %v", err)
			}
			return
		}
		defer r.Close()
		for _, d := range r.Index.Manifests {
			if got, err := r.Resolve(ctx, d.Digest.String()); err == nil && got.Digest != d.Digest {
				t.Errorf("Resolve(%s) = %s", d.Digest, got.Digest)
			}
			r.Exists(ctx, d)
			rc, err := r.Fetch(ctx, d)
			if err != nil {
				continue
			}
			b, err := io.ReadAll(io.LimitReader(rc, MaxManifestSize+1))
			rc.Close()
			if err == nil && (int64(len(b)) != d.Size || digest.FromBytes(b) != d.Digest) {
				t.Errorf("Fetch(%s, %d bytes) served %d bytes that are not it", d.Digest, d.Size, len(b))
			}
		}
		cat, _, err := r.Catalog(ctx)
		if err != nil {
			if own {
				t.Fatalf("the layout's own catalog is refused: %v", err)
			}
			return
		}
		cerr := Check(r, cat)
		if own && cerr != nil {
			t.Fatalf("the layout's own index.json fails Check: %v", cerr)
		}
		if cerr == nil {
			for _, img := range cat.Images {
				listed := false
				for _, d := range r.Index.Manifests {
					listed = listed || (d.Annotations[ocispec.AnnotationRefName] == img.Source && d.Digest == img.Digest)
				}
				if !listed {
					t.Errorf("Check accepted an index.json that does not list %s as %s", img.Source, img.Digest)
				}
			}
		}
		if err := VerifyContents(ctx, r, cat); own && err != nil {
			t.Fatalf("the layout's own index.json fails VerifyContents: %v", err)
		}
	})
}
