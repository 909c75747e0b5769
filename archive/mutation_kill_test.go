package archive

// Tests written from an honest gremlins run over the archive files that parse attacker input
// (signature.go, check.go, volumes.go, reader.go; issue 20): each kills mutants that lived, by
// asserting the value or the message at a limit and one past it. See docs/mutation.md.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestCheckDescLimits: a manifest's size is sane from 1 to MaxManifestSize bytes, the size every
// reader of manifests takes (ReadVerified, VerifyContents, the planner); the refusal of
// MaxManifestSize+1 says the range it allows, "1 to 4194304". It was 1 to MaxManifestSize-1 before:
// an archive holding a manifest of exactly 4 MiB, which save had read and stored, failed load's check.
func TestCheckDescLimits(t *testing.T) {
	d := digest.FromString("x")
	for _, size := range []int64{1, MaxManifestSize} {
		if err := checkDesc("image x", d, size, MaxManifestSize); err != nil {
			t.Errorf("size %d refused: %v", size, err)
		}
	}
	for _, size := range []int64{0, MaxManifestSize + 1} {
		err := checkDesc("image x", d, size, MaxManifestSize)
		want := fmt.Sprintf("the catalog gives image x (%s) a size of %d bytes, which is not sane for a manifest (1 to 4194304): %s", d, size, damaged)
		if err == nil || err.Error() != want {
			t.Errorf("size %d: got %v, want %q", size, err, want)
		}
	}
}

// writeZeroVolumes writes, in a new directory, files a.tar.000, ... of the sizes given (zeros, so each
// stream ends as a tar stream does) and returns base (dir/a.tar) and their list.
func writeZeroVolumes(t *testing.T, sizes ...int64) (string, []Volume) {
	t.Helper()
	dir := t.TempDir()
	base := filepath.Join(dir, "a.tar")
	var vols []Volume
	for i, n := range sizes {
		v := Volume{Name: volumeName(base, i, len(sizes)), Size: n}
		if err := os.WriteFile(filepath.Join(dir, v.Name), make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
		vols = append(vols, v)
	}
	return base, vols
}

// TestCheckVolumeFilesLimits: the sizes checkVolumeFiles accepts and refuses, each at its limit and
// one past it, with the message it gives.
func TestCheckVolumeFilesLimits(t *testing.T) {
	for _, c := range []struct {
		name  string
		sizes []int64
		want  string // "" = accepted
	}{
		{"one volume, the smallest tar stream", []int64{1024}, ""},
		{"one volume, a block short", []int64{512}, "volume a.tar is 512 bytes: the archive does not end where a tar stream ends, it is truncated"},
		{"one volume, a byte past a block", []int64{1025}, "volume a.tar is 1025 bytes: the archive does not end where a tar stream ends"},
		{"one volume, a byte short of a block", []int64{1535}, "volume a.tar is 1535 bytes: the archive does not end"},
		{"three volumes, the last as large as the others", []int64{1024, 1024, 1024}, ""},
		{"three volumes, the last smaller", []int64{1024, 1024, 512}, ""},
		{"three volumes, the last a block larger", []int64{1024, 1024, 1536}, "volume a.tar.002 is 1536 bytes, larger than the 1024-byte volumes before it: it is from another archive; copy the volumes listed in "},
		{"the middle one a block short", []int64{1024, 512, 1024}, "volume a.tar.001 is 512 bytes, the other volumes 1024: it is truncated"},
		{"the first one a block short", []int64{512, 1024, 1024}, "volume a.tar.000 is 512 bytes, the other volumes 1024: it is truncated"},
		{"two volumes, 1024 bytes in all", []int64{512, 512}, ""},
		{"two volumes, 512 bytes in all", []int64{512, 0}, "volume a.tar.001 is 0 bytes: the archive does not end where a tar stream ends"},
	} {
		t.Run(c.name, func(t *testing.T) {
			base, vols := writeZeroVolumes(t, c.sizes...)
			err := checkVolumeFiles(base, vols)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// TestCheckVolumeFilesNamesTheMissingOne: the missing volume is named with its place in the list.
func TestCheckVolumeFilesNamesTheMissingOne(t *testing.T) {
	base, vols := writeZeroVolumes(t, 1024, 1024, 1024)
	os.Remove(filepath.Join(filepath.Dir(base), "a.tar.001"))
	err := checkVolumeFiles(base, vols)
	want := "volume 2 of 3 (a.tar.001) is missing: copy every volume listed in " + base + ".sha256"
	var ce *CheckError
	if !errors.As(err, &ce) || err.Error() != want {
		t.Fatalf("got %v, want a *CheckError %q", err, want)
	}
}

// TestCheckVolumeFilesEndMarker: the last 1024 bytes of the stream must be zeros (the end-of-archive
// marker), and only those: a byte set just before them is data.
func TestCheckVolumeFilesEndMarker(t *testing.T) {
	for _, c := range []struct {
		name  string
		sizes []int64
		at    int64 // offset in the last volume of the byte set to 1
		want  bool  // refused
	}{
		{"last byte", []int64{2048}, 2047, true},
		{"first byte of the marker", []int64{2048}, 1024, true},
		{"last byte before the marker", []int64{2048}, 1023, false},
		{"a last volume of 512 bytes, its first byte", []int64{1024, 512}, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			base, vols := writeZeroVolumes(t, c.sizes...)
			last := filepath.Join(filepath.Dir(base), vols[len(vols)-1].Name)
			f, err := os.OpenFile(last, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte{1}, c.at)
			f.Close()
			err = checkVolumeFiles(base, vols)
			want := "volume " + vols[len(vols)-1].Name + " does not end with the end-of-archive marker of a tar stream"
			switch {
			case !c.want && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want && (err == nil || !strings.Contains(err.Error(), want)):
				t.Fatalf("got %v, want an error containing %q", err, want)
			}
		})
	}
}

// TestOpenIndexSizeLimit: index.json is read up to maxIndexSize bytes; one byte more is refused by
// Open, before it is read, with its size and the limit.
func TestOpenIndexSizeLimit(t *testing.T) {
	t.Parallel() // reads 64 MiB of JSON: about 2 s
	ctx := context.Background()
	dir := t.TempDir()
	writeCheckSample(t, dir)
	p := filepath.Join(dir, ocispec.ImageIndexFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var want ocispec.Index
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	pad := func(n int) {
		t.Helper()
		// JSON allows white space after the value: the same index, n bytes long.
		if err := os.WriteFile(p, append(b, bytes.Repeat([]byte(" "), n-len(b))...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pad(maxIndexSize)
	r, err := Open(ctx, dir)
	if err != nil {
		t.Fatalf("index.json of %d bytes refused: %v", maxIndexSize, err)
	}
	if len(r.Index.Manifests) != len(want.Manifests) || r.Index.Manifests[0].Digest != want.Manifests[0].Digest {
		t.Errorf("index read as %+v, want %+v", r.Index, want)
	}
	r.Close()
	pad(maxIndexSize + 1)
	_, err = Open(ctx, dir)
	wantErr := dir + ": index.json is 67108865 bytes, over the 67108864-byte limit: refused; the archive is damaged or was altered"
	if err == nil || err.Error() != wantErr {
		t.Fatalf("got %v, want %q", err, wantErr)
	}
}

// TestFetchWithholdsBytesPastTheDescriptor: a blob file one byte longer than its descriptor is refused
// on the first Read that would pass the size, and none of its bytes are handed out; a file of exactly
// the descriptor's size is read whole.
func TestFetchWithholdsBytesPastTheDescriptor(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_, d := writeCheckSample(t, dir)
	layer := d["layer"]
	r, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	rc, err := r.Fetch(ctx, layer)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(rc); err != nil || int64(len(b)) != layer.Size {
		t.Fatalf("a blob of its descriptor's size: read %d bytes, %v; want %d bytes", len(b), err, layer.Size)
	}
	rc.Close()
	// Read whole and found right: recorded, so the next Fetch only counts its bytes.
	if !r.isChecked(layer.Digest) {
		t.Errorf("a blob read whole through Fetch is not recorded as checked")
	}
	if rc, err := r.Fetch(ctx, layer); err != nil {
		t.Fatal(err)
	} else {
		if vr, ok := rc.(*verifyingReader); !ok || vr.v != nil {
			t.Errorf("the second Fetch of a checked blob is a %T that hashes (%+v), want one that checks only the size", rc, rc)
		}
		rc.Close()
	}

	p := BlobPath(dir, layer.Digest)
	b, _ := os.ReadFile(p)
	short := layer
	short.Size = int64(len(b)) - 1
	r2, err := Open(ctx, dir) // a Reader that has not read the blob whole
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	rc, err = r2.Fetch(ctx, short)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, len(b)+100)
	n, err := rc.Read(buf)
	want := fmt.Sprintf("blob %s: more than the %d bytes its descriptor says: %s", layer.Digest, short.Size, damaged)
	var ce *CheckError
	if n != 0 || !errors.As(err, &ce) || err.Error() != want || ce.Digest != layer.Digest {
		t.Fatalf("first read of a blob a byte longer than its descriptor: %d bytes, %v; want 0 bytes and %q", n, err, want)
	}
	if r2.isChecked(layer.Digest) {
		t.Errorf("a blob refused by Fetch is recorded as checked")
	}
}

// TestTarRefusalOffset: a refused entry is located by the offset of its own header (which openVolumes
// turns into the volume that holds it): 0 for the first entry, 1024 for an entry after a 30-byte file
// (its header and one data block), 2560 after that file and a 600-byte one.
func TestTarRefusalOffset(t *testing.T) {
	link := sealHeader(rawHeader("index.json", tar.TypeSymlink, 0, false))
	_, victim := blobEntry(victimData)
	for _, c := range []struct {
		name string
		data []byte
		off  int64
	}{
		{"first entry", tarStream(link), 0},
		{"second entry", tarStream(plainFile("oci-layout", layoutData), link), 1024},
		{"third entry", tarStream(plainFile("oci-layout", layoutData), victim, link), 2560},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := newTarFS(bytes.NewReader(c.data))
			var tre *tarRefusal
			if !errors.As(err, &tre) || !strings.Contains(err.Error(), `tar entry "index.json" is a symbolic link`) {
				t.Fatalf("got %v, want a *tarRefusal of the symbolic link", err)
			}
			if tre.off != c.off {
				t.Errorf("refusal at byte %d, want %d (its header)", tre.off, c.off)
			}
		})
	}
}

// TestTarEntrySizeAtTheEndOfTheStream: the size check of a tar entry at its limit, an entry whose
// header is the last block of the stream (no end marker: newTarFS alone, Open's checkVolumeFiles asks
// for one first): 0 bytes declared fit, 1 byte declared is more than the stream holds.
func TestTarEntrySizeAtTheEndOfTheStream(t *testing.T) {
	empty := plainFile("oci-layout", nil)
	tfs, err := newTarFS(bytes.NewReader(empty))
	if err != nil {
		t.Fatalf("an empty file whose header ends the stream: %v", err)
	}
	if e, ok := tfs.files["oci-layout"]; !ok || e.offset != 512 || e.size != 0 {
		t.Errorf("indexed as %+v (%v), want offset 512, size 0", e, ok)
	}
	one := sealHeader(rawHeader("oci-layout", tar.TypeReg, 1, false))
	_, err = newTarFS(bytes.NewReader(one))
	want := `tar entry "oci-layout" declares 1 bytes, more than the 512-byte archive holds: truncated, damaged or hostile`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// TestTarEndPastTheStream: a stream cut inside the padding of its last entry (30 bytes of data, the
// rest of the block missing) is refused with how far the entry's block runs past the end; the same
// entry with its block whole and no end marker is the limit and passes newTarFS (Open asks for the
// marker before, in checkVolumeFiles).
func TestTarEndPastTheStream(t *testing.T) {
	whole := plainFile("oci-layout", layoutData) // 1024 bytes
	if _, err := newTarFS(bytes.NewReader(whole)); err != nil {
		t.Fatalf("a stream ending at its last block: %v", err)
	}
	cut := whole[:512+len(layoutData)]
	_, err := newTarFS(bytes.NewReader(cut))
	want := "tar stream: the last entry runs 482 bytes past the end of the 542-byte stream: " + plainOnly
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// TestParseTarNumber: the numeric fields of a tar header, octal or GNU base-256, at the limits of each.
func TestParseTarNumber(t *testing.T) {
	b256 := func(n int, tail ...byte) []byte { // an n-byte base-256 field ending with tail
		b := make([]byte, n)
		b[0] = 0x80
		copy(b[n-len(tail):], tail)
		return b
	}
	for _, c := range []struct {
		name string
		b    []byte
		n    int64
		ok   bool
	}{
		{"empty field", []byte{}, 0, true},
		{"spaces and NULs", []byte("   \x00\x00"), 0, true},
		{"octal", []byte("00000001750\x00"), 1000, true},
		{"octal with spaces", []byte(" 17 "), 15, true},
		{"not octal", []byte("00000000008\x00"), 0, false},
		{"negative octal", []byte("-1"), -1, false},
		{"base-256, 12 bytes", b256(12, 0x10, 0x00), 4096, true},
		{"base-256, 9 bytes (the shortest)", b256(9, 0x01, 0x02), 0x0102, true},
		{"base-256, 8 bytes", b256(8, 0x01), 0, false},
		{"base-256, largest int64", b256(12, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), 1<<63 - 1, true},
		{"base-256, one past the largest int64", b256(12, 0x80, 0, 0, 0, 0, 0, 0, 0), 0, false},
		{"base-256, a byte set in the middle of the prefix", func() []byte { b := b256(12, 0x01); b[2] = 1; return b }(), 0, false},
		{"base-256, a byte set just before the last 8", func() []byte { b := b256(12, 0x01); b[3] = 1; return b }(), 0, false},
		{"base-256 with the second byte set", func() []byte { b := b256(12, 0x01); b[1] = 1; return b }(), 0, false},
		{"base-256, negative (0xff)", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}, 0, false},
	} {
		n, ok := parseTarNumber(c.b)
		if ok != c.ok || (ok && n != c.n) {
			t.Errorf("%s (% x): got %d, %v; want %d, %v", c.name, c.b, n, ok, c.n, c.ok)
		}
	}
}

// TestCheckTarHeadersStartLimit: the headers of an entry start where the entry before it ends; that
// end at the entry's own header is the limit (passes), one block later (at the entry's data) the
// entries overlap, and the message says where the entry before ends.
func TestCheckTarHeadersStartLimit(t *testing.T) {
	_, victimEntry := blobEntry(victimData)
	afterName, afterEntry := blobEntry(afterData)
	ra := bytes.NewReader(tarStream(victimEntry, afterEntry))
	afterOff := int64(len(victimEntry)) + 512 // the data of the second entry
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: afterName, Size: int64(len(afterData))}
	if why := checkTarHeaders(ra, afterOff-512, afterOff, hdr); why != "" {
		t.Errorf("headers starting at the entry's own header: %q", why)
	}
	for _, from := range []int64{afterOff - 511, afterOff} {
		want := fmt.Sprintf("its header is not where the entry before it ends (byte %d): entries overlap", from)
		if why := checkTarHeaders(ra, from, afterOff, hdr); why != want {
			t.Errorf("from %d: got %q, want %q", from, why, want)
		}
	}
}

// TestCheckTarHeadersExtendedSize: a PAX header ('x') between the entry before and the entry's own
// header may declare no more bytes than lie between its own header and the entry's data; one byte
// more is refused with its place and size. The PAX header sits after a first entry, so that its
// place in the stream (not 0) counts.
func TestCheckTarHeadersExtendedSize(t *testing.T) {
	name, entry := blobEntry(victimData) // header at 2048, data at 2560
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(victimData))}
	stream := func(paxSize int64) *bytes.Reader {
		x := append(sealHeader(rawHeader("PaxHeaders/x", tar.TypeXHeader, paxSize, false)), make([]byte, 512)...)
		return bytes.NewReader(tarStream(plainFile("oci-layout", layoutData), x, entry))
	}
	const from, off = 1024, 2560
	if why := checkTarHeaders(stream(30), from, off, hdr); why != "" {
		t.Errorf("a PAX header of 30 bytes: %q", why)
	}
	// 1024 bytes: they reach the entry's data, past its own header, which is then not where it is.
	if why, want := checkTarHeaders(stream(1024), from, off, hdr), "its header is not where the entry before it ends (byte 1024): entries overlap"; why != want {
		t.Errorf("a PAX header of 1024 bytes: got %q, want %q", why, want)
	}
	if why, want := checkTarHeaders(stream(1025), from, off, hdr), `its 'x' header at byte 1024 declares 1025 bytes, past its own header`; why != want {
		t.Errorf("a PAX header of 1025 bytes: got %q, want %q", why, want)
	}
}

// TestParseVolumeLineSizes: a volume's size in a list without sums may be 0, not negative, and is
// written as FormatInt writes it; 64 hex digits are a sum, 63 or 65 are neither.
func TestParseVolumeLineSizes(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	for _, c := range []struct {
		line string
		want Volume
		err  string
	}{
		{"0  a.tar.001", Volume{Name: "a.tar.001", Size: 0}, ""},
		{"1  a.tar.001", Volume{Name: "a.tar.001", Size: 1}, ""},
		{"-1  a.tar.001", Volume{}, `bad size "-1": want a number of bytes, or a sha256`},
		{"-0  a.tar.001", Volume{}, `bad size "-0"`},
		{"007  a.tar.001", Volume{}, `bad size "007"`},
		{sum + "  a.tar", Volume{Name: "a.tar", SHA256: sum}, ""},
		{sum[:63] + "  a.tar", Volume{}, `bad size "` + sum[:63] + `"`},
		{sum + "a  a.tar", Volume{}, `bad size "` + sum + `a"`},
		{strings.Repeat("zz", 32) + "  a.tar", Volume{}, `bad sha256 "` + strings.Repeat("zz", 32) + `"`},
	} {
		v, err := parseVolumeLine(c.line)
		switch {
		case c.err == "" && (err != nil || v != c.want):
			t.Errorf("%q: got %+v, %v; want %+v", c.line, v, err, c.want)
		case c.err != "" && (err == nil || err.Error() != c.err && !strings.HasPrefix(err.Error(), c.err)):
			t.Errorf("%q: got %+v, %v; want an error %q", c.line, v, err, c.err)
		}
	}
}

// TestTarIndexSizeLimit: an index.json entry of maxIndexSize bytes is indexed; one byte more is
// refused from its header, with its size and the limit.
func TestTarIndexSizeLimit(t *testing.T) {
	t.Parallel() // two streams of 64 MiB
	for _, size := range []int64{maxIndexSize, maxIndexSize + 1} {
		stream := make([]byte, 512+blockEnd(size)+1024)
		copy(stream, sealHeader(rawHeader("index.json", tar.TypeReg, size, false)))
		tfs, err := newTarFS(bytes.NewReader(stream))
		if size == maxIndexSize {
			if err != nil || tfs.files["index.json"].size != size {
				t.Errorf("index.json of %d bytes: %v", size, err)
			}
			continue
		}
		want := `tar entry "index.json": 67108865 bytes, over the 67108864-byte limit for index.json: refused`
		if err == nil || err.Error() != want {
			t.Errorf("index.json of %d bytes: got %v, want %q", size, err, want)
		}
	}
}

// TestHasSums: a list with no volumes has no sums (and hasSums does not look at a first volume it
// does not have); a list whose volumes carry a sha256 has them.
func TestHasSums(t *testing.T) {
	if hasSums(nil) || hasSums([]Volume{}) {
		t.Error("an empty list has sums")
	}
	if hasSums([]Volume{{Name: "a.tar", Size: 1024}}) {
		t.Error("a list of sizes has sums")
	}
	if !hasSums([]Volume{{Name: "a.tar", SHA256: strings.Repeat("ab", 32)}}) {
		t.Error("a list of sums has none")
	}
}

// TestStreamWriterAbortClosesAndRemoves: abort closes the volume being written and removes it.
func TestStreamWriterAbortClosesAndRemoves(t *testing.T) {
	base := filepath.Join(t.TempDir(), "a.tar")
	w := newStreamWriter(base, 1024)
	if _, err := w.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	cur := w.v.files[0]
	w.abort()
	if err := cur.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("the volume being written is still open after abort (Close: %v)", err)
	}
	if _, err := os.Stat(base + ".000.partial"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the partial volume is still there: %v", err)
	}
}
