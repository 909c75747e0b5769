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
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// Raw tar blocks, written by hand: archive/tar's writer cannot write sparse files nor the GNU.sparse.*
// PAX records, and checks sizes, so the hostile streams below are laid out block by block.

// rawHeader is a ustar header block (GNU magic when gnu) of the given type and size field.
func rawHeader(name string, flag byte, size int64, gnu bool) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], "00000000000\x00")
	b[156] = flag
	if gnu {
		copy(b[257:265], "ustar  \x00")
	} else {
		copy(b[257:265], "ustar\x0000")
	}
	return b
}

// sealHeader writes the checksum of a header block.
func sealHeader(b []byte) []byte {
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// padded is data followed by zeros up to the next 512-byte block.
func padded(data []byte) []byte {
	return append(bytes.Clone(data), make([]byte, blockEnd(int64(len(data)))-int64(len(data)))...)
}

// paxHeader is a PAX extended header ('x') holding records, each "key=value".
func paxHeader(records ...string) []byte {
	var data []byte
	for _, r := range records {
		n := len(r) + 3 // " " and "\n" and at least one digit
		for len(fmt.Sprint(n))+len(r)+2 != n {
			n = len(fmt.Sprint(n)) + len(r) + 2
		}
		data = fmt.Appendf(data, "%d %s\n", n, r)
	}
	return append(sealHeader(rawHeader("PaxHeaders/x", tar.TypeXHeader, int64(len(data)), false)), padded(data)...)
}

// plainFile is a regular file entry, header and data.
func plainFile(name string, data []byte) []byte {
	return append(sealHeader(rawHeader(name, tar.TypeReg, int64(len(data)), false)), padded(data)...)
}

// blobEntry is a blob named by the digest of data.
func blobEntry(data []byte) (string, []byte) {
	name := "blobs/sha256/" + digest.FromBytes(data).Encoded()
	return name, plainFile(name, data)
}

func tarStream(parts ...[]byte) []byte {
	return append(bytes.Join(parts, nil), make([]byte, 1024)...)
}

// attackBlobs are the blobs around the hostile entry: a victim, whose header becomes sparse or is
// reshaped, and a larger blob after it, which the victim's logical size would run over.
var (
	victimData = bytes.Repeat([]byte("v"), 600)
	afterData  = bytes.Repeat([]byte("n"), 9000)
	layoutData = []byte(`{"imageLayoutVersion":"1.0.0"}`)
	indexData  = []byte(`{"schemaVersion":2,"manifests":[]}`)
)

// hostileTars are tar streams that archive/tar reads without an error and that newTarFS must refuse,
// each with the reason the refusal must give.
func hostileTars() []struct {
	name, want string
	data       []byte
} {
	victim, _ := blobEntry(victimData)
	_, after := blobEntry(afterData)
	head := [][]byte{plainFile("oci-layout", layoutData), plainFile("index.json", indexData)}
	stream := func(mid ...[]byte) []byte {
		return tarStream(append(append(head[:2:2], mid...), after)...)
	}
	// The logical size runs over the whole blob after it, short of the end of the stream: indexed as
	// it was, hashing the volumes sliced out of bounds.
	logical := fmt.Sprint(len(victimData) + 10000)

	// Old GNU sparse ('S'): the sparse map in the header, one chunk of 600 bytes stored, real size larger.
	oldGNU := rawHeader(victim, tar.TypeGNUSparse, int64(len(victimData)), true)
	copy(oldGNU[386:398], fmt.Sprintf("%011o\x00", 0))
	copy(oldGNU[398:410], fmt.Sprintf("%011o\x00", len(victimData)))
	copy(oldGNU[483:495], fmt.Sprintf("%011o\x00", len(victimData)+10000))

	// GNU sparse 1.0: the map at the start of the data, the real name and size in PAX records.
	map10 := padded([]byte(fmt.Sprintf("1\n0\n%d\n", len(victimData))))
	sparse10 := append(sealHeader(rawHeader("blobs/sha256/GNUSparseFile.0/v", tar.TypeReg, int64(len(map10)+len(victimData)), false)), padded(append(map10, victimData...))...)

	// The victim's data, then the header and data of the blob after it.
	swallow := blockEnd(int64(len(victimData))) + int64(len(after))
	return []struct {
		name, want string
		data       []byte
	}{
		{"GNU sparse PAX 0.1", `is a GNU sparse file (PAX record GNU.sparse.major)`, stream(
			paxHeader("GNU.sparse.major=0", "GNU.sparse.minor=1", "GNU.sparse.numblocks=1", "GNU.sparse.map=0,"+fmt.Sprint(len(victimData)), "GNU.sparse.size="+logical),
			plainFile(victim, victimData))},
		{"GNU sparse PAX 0.0", `is a GNU sparse file (PAX record GNU.sparse.map)`, stream(
			paxHeader("GNU.sparse.size="+logical, "GNU.sparse.numblocks=1", "GNU.sparse.offset=0", "GNU.sparse.numbytes="+fmt.Sprint(len(victimData))),
			plainFile(victim, victimData))},
		{"GNU sparse PAX 1.0", `is a GNU sparse file (PAX record GNU.sparse.major)`, stream(
			paxHeader("GNU.sparse.major=1", "GNU.sparse.minor=0", "GNU.sparse.name="+victim, "GNU.sparse.realsize="+logical),
			sparse10)},
		{"old GNU sparse type S", `is a GNU sparse file (type 'S')`, stream(
			append(sealHeader(oldGNU), padded(victimData)...))},
		// The PAX size swallows the blob after it: archive/tar reads one file where a ustar reader reads two.
		{"PAX size override", fmt.Sprintf("its PAX size record says %d bytes, its header 600", swallow), stream(
			paxHeader(fmt.Sprintf("size=%d", swallow)),
			plainFile(victim, victimData))},
		// The other way round: the header's size covers the blob after it, the PAX record does not.
		{"PAX size override, smaller", fmt.Sprintf("its PAX size record says 600 bytes, its header %d", swallow), stream(
			paxHeader("size=600"),
			append(sealHeader(rawHeader(victim, tar.TypeReg, swallow, false)), padded(victimData)...))},
		{"two PAX headers", `two headers of type 'x'`, stream(
			// archive/tar keeps only the last PAX header; another reader may merge them.
			paxHeader(fmt.Sprintf("size=%d", swallow)), paxHeader("mtime=0"),
			plainFile(victim, victimData))},
		{"unknown PAX record", `carries PAX record "SCHILY.realsize", which archive/tar never writes`, stream(
			paxHeader("SCHILY.realsize="+logical),
			plainFile(victim, victimData))},
		{"directory with data", `tar entry "blobs/": a directory with 512 bytes of data`, tarStream(
			append(sealHeader(rawHeader("blobs/", tar.TypeDir, 512, false)), plainFile(victim, victimData)...),
			after)},
	}
}

// TestTarRefusesSparseAndReshapedEntries: each hostile stream is refused by newTarFS with its reason,
// as an error (never a panic), and Open refuses it too, naming the volume, when the volume list was
// rewritten to match (as whoever altered the volumes would).
func TestTarRefusesSparseAndReshapedEntries(t *testing.T) {
	for _, c := range hostileTars() {
		t.Run(c.name, func(t *testing.T) {
			// The stream is one archive/tar reads: the refusal is airlock's, not the tar reader's.
			tr := tar.NewReader(bytes.NewReader(c.data))
			for {
				_, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("archive/tar itself refuses the stream: %v", err)
				}
			}
			tfs, err := newTarFS(bytes.NewReader(c.data))
			if err == nil || tfs != nil {
				t.Fatalf("newTarFS accepted it: %v", tfs)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q\nlacks %q", err, c.want)
			}
			if !strings.Contains(err.Error(), "copy it again from the connected side") {
				t.Errorf("error %q does not say what to do", err)
			}

			dir := t.TempDir()
			base := filepath.Join(dir, "x.tar")
			half := blockEnd(int64(len(c.data)) / 2)
			writeRawVolumes(t, base, c.data[:half], c.data[half:])
			r, err := Open(context.Background(), base+".000")
			if err == nil {
				r.Close()
				t.Fatal("Open accepted it")
			}
			var ce *CheckError
			if !errors.As(err, &ce) {
				t.Errorf("Open: %T %v, want a *CheckError (exit status 1)", err, err)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), ": volume x.tar.00") {
				t.Errorf("Open: %q\nlacks %q or the volume's name", err, c.want)
			}
		})
	}
}

// writeRawVolumes writes parts as the volumes base.000, ... and a volume list that matches them.
func writeRawVolumes(t *testing.T, base string, parts ...[]byte) {
	t.Helper()
	var list strings.Builder
	for i, p := range parts {
		name := fmt.Sprintf("%s.%03d", filepath.Base(base), i)
		if err := os.WriteFile(filepath.Join(filepath.Dir(base), name), p, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(p)
		fmt.Fprintf(&list, "%s  %s\n", hex.EncodeToString(sum[:]), name)
	}
	if err := os.WriteFile(base+ChecksumSuffix, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTarAcceptsHonestStreams: what archive/tar writes for plain files is served, byte for byte: a
// ustar stream, a PAX one (records that only name or date the entry), a large file's PAX size (0 in
// the header, the size in the record) is not taken for a size override.
func TestTarAcceptsHonestStreams(t *testing.T) {
	victim, _ := blobEntry(victimData)
	afterName, _ := blobEntry(afterData)
	write := func(format tar.Format) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, f := range []struct {
			name string
			data []byte
		}{{"oci-layout", layoutData}, {"index.json", indexData}, {victim, victimData}, {afterName, afterData}} {
			hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Size: int64(len(f.data)), Mode: 0o644, Format: format,
				ModTime: time.Unix(1700000000, 5), Uname: "someone"}
			if format == tar.FormatPAX {
				hdr.PAXRecords = map[string]string{"comment": "honest"}
			}
			if format != tar.FormatPAX {
				hdr.ModTime = hdr.ModTime.Truncate(time.Second)
			}
			if err := tw.WriteHeader(hdr); err != nil {
				t.Fatal(err)
			}
			tw.Write(f.data)
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	for _, format := range []tar.Format{tar.FormatUSTAR, tar.FormatPAX, tar.FormatGNU} {
		data := write(format)
		tfs, err := newTarFS(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%v: an honest stream is refused: %v", format, err)
		}
		for name, want := range map[string][]byte{victim: victimData, afterName: afterData, "index.json": indexData} {
			f, err := tfs.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := io.ReadAll(f); !bytes.Equal(got, want) {
				t.Errorf("%v: %s: served %d bytes that are not the %d stored", format, name, len(got), len(want))
			}
		}
	}

	// A blob of 8 GiB or more: archive/tar writes its size as a PAX record and 0 in the header. Only
	// the header is written: it is refused for running past the stream, not for its PAX record.
	var buf bytes.Buffer
	if err := tar.NewWriter(&buf).WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: victim, Size: 9 << 30, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	_, err := newTarFS(bytes.NewReader(append(buf.Bytes(), make([]byte, 1024)...)))
	if err == nil || !strings.Contains(err.Error(), "declares 9663676416 bytes, more than the") {
		t.Errorf("a large blob's header: %v, want it refused only for the bytes it lacks", err)
	}

	// And an archive as save writes it opens.
	dir := t.TempDir()
	base, _ := writeVolumes(t, dir, 4096)
	r, err := Open(context.Background(), base+".000")
	if err != nil {
		t.Fatalf("an honest archive is refused: %v", err)
	}
	r.Close()
}

// TestTarLayoutChecks: the checks on the raw blocks behind the explicit refusals, for what the tar
// reader would take for an entry whose size runs over the next one or past the stream.
func TestTarLayoutChecks(t *testing.T) {
	victim, victimEntry := blobEntry(victimData)
	afterName, afterEntry := blobEntry(afterData)
	data := tarStream(victimEntry, afterEntry)
	afterOff := int64(len(victimEntry)) + 512
	ra := bytes.NewReader(data)
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: afterName, Size: int64(len(afterData))}
	if why := checkTarHeaders(ra, blockEnd(512+int64(len(victimData))), afterOff, hdr); why != "" {
		t.Fatalf("honest layout refused: %s", why)
	}
	// The entry before said it held 4096 bytes more than it stores: it overlaps this one's header.
	if why := checkTarHeaders(ra, blockEnd(512+int64(len(victimData))+4096), afterOff, hdr); !strings.Contains(why, "entries overlap") {
		t.Errorf("overlapping entries: %q", why)
	}
	// The entry before said it held fewer bytes than it stores: its tail would be taken for headers.
	if why := checkTarHeaders(ra, blockEnd(512+100), afterOff, hdr); !strings.Contains(why, "entries overlap") {
		t.Errorf("an entry shorter than its data: %q", why)
	}
	// The header says one size, the tar reader another.
	if why := checkTarHeaders(ra, 0, 512, &tar.Header{Typeflag: tar.TypeReg, Name: victim, Size: 4096}); !strings.Contains(why, "its header says 600 bytes, the tar reader 4096") {
		t.Errorf("size disagreement: %q", why)
	}
	// The last entry runs past the end of the stream, or ends before the end-of-archive marker.
	if why := checkTarEnd(ra, int64(len(data))+512, int64(len(data))); !strings.Contains(why, "past the end of the") {
		t.Errorf("past the end: %q", why)
	}
	if why := checkTarEnd(ra, 512, int64(len(data))); !strings.Contains(why, "entries overlap") {
		t.Errorf("end marker elsewhere: %q", why)
	}
	if why := checkTarEnd(ra, int64(len(data))-1024, int64(len(data))); why != "" {
		t.Errorf("honest end refused: %s", why)
	}
}

// TestBlobHasherSurvivesOverlap: were overlapping entries ever indexed, hashing the stream counts
// them as bad instead of slicing out of bounds.
func TestBlobHasherSurvivesOverlap(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 8192)
	a, b := digest.FromBytes(data[512:4608]), digest.FromBytes(data[1024:1536])
	tfs := &tarFS{ra: bytes.NewReader(data), files: map[string]tarEntry{
		"blobs/sha256/" + a.Encoded(): {offset: 512, size: 4096},
		"blobs/sha256/" + b.Encoded(): {offset: 1024, size: 512},
	}}
	h := &blobHasher{spans: blobSpans(tfs)}
	for off := 0; off < len(data); off += 1000 {
		h.write(int64(off), data[off:min(off+1000, len(data))])
	}
	ok, bad := h.ok, h.bad
	if len(ok) != 1 || ok[0] != a || len(bad) != 1 || bad[0] != b {
		t.Errorf("ok %v, bad %v; want ok [%s], bad [%s] (the blob inside another)", ok, bad, a, b)
	}
}

// TestMultiReaderAtNegativeOffset: a negative offset is an error, not an index out of range.
func TestMultiReaderAtNegativeOffset(t *testing.T) {
	m := newMultiReaderAt([]readerAtSize{{bytes.NewReader(make([]byte, 10)), 10}})
	if _, err := m.ReadAt(make([]byte, 4), -1); err == nil {
		t.Error("ReadAt(-1) succeeded")
	}
}

// TestVolumesAreNotFollowed: a volume, or the volume list, that is a symbolic link (to a copy of
// itself, even) is refused by name, before anything in it is read.
func TestVolumesAreNotFollowed(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name, open, link, want string
	}{
		{"symlinked later volume", ".000", ".001", "volume a.tar.001 is a symbolic link: refused"},
		{"symlinked first volume, opened by its list", ".sha256", ".000", "volume a.tar.000 is a symbolic link: refused"},
		{"symlinked first volume, named", ".000", ".000", "a.tar.000 is a symbolic link: refused"},
		{"symlinked volume list", ".000", ".sha256", "volume list " + "%s/a.tar.sha256 is a symbolic link: refused"},
		{"symlinked volume list, named", ".sha256", ".sha256", "a.tar.sha256 is a symbolic link: refused"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			base, vols := writeVolumes(t, dir, 4096)
			if len(vols) < 3 {
				t.Fatalf("%d volumes, want at least 3", len(vols))
			}
			// The link points at a copy of the very file it replaces: only being a link is wrong.
			p := base + c.link
			aside := filepath.Join(dir, "elsewhere"+c.link)
			if err := os.Rename(p, aside); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(aside, p); err != nil {
				t.Fatal(err)
			}
			r, err := Open(ctx, base+c.open)
			if err == nil {
				r.Close()
				t.Fatal("Open followed the link")
			}
			want := c.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, dir)
			}
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "; copy the ") {
				t.Errorf("Open: %q\nlacks %q and what to do", err, want)
			}
			var ce *CheckError
			if !errors.As(err, &ce) {
				t.Errorf("Open: %T, want a *CheckError", err)
			}
		})
	}
}

// TestOpenRegularRefusesLink checks openRegular on its own: a link swapped in is refused, not followed.
func TestOpenRegularRefusesLink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if f, err := openRegular(link, "volume link", "fix it"); err == nil {
		f.Close()
		t.Fatal("openRegular followed a symbolic link")
	} else if !strings.Contains(err.Error(), "volume link is a symbolic link: refused") {
		t.Errorf("openRegular: %v", err)
	}
	f, err := openRegular(target, "volume target", "fix it")
	if err != nil {
		t.Fatalf("a regular file is refused: %v", err)
	}
	f.Close()
}
