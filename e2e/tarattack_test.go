package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
	"airlock.dev/airlock/e2e/internal/tools"
)

// TestBadInputTarVolumes attacks tar volumes the way the tar reader itself cannot see: an honest
// archive of signed images, saved in 1 MiB volumes, is rewritten so that one blob entry is a GNU sparse file whose
// logical size runs over every entry after it (which once crashed verify and load), and, apart,
// a volume or the volume list is replaced by a symbolic link to a copy of itself elsewhere (which
// was followed: a volume could point at any file of the site host). Every attacker also rewrites
// the volume list to match, as whoever altered the volumes would. verify and load must refuse each
// with exit status 1 (a failed integrity check) and the reason in words, never a panic, and push
// nothing: the target registry holds no repository afterwards.
func TestBadInputTarVolumes(t *testing.T) {
	ctx := t.Context()
	src := registries.StartDistribution(ctx, t)
	dst := registries.StartDistribution(ctx, t)
	work := t.TempDir()
	f := seed.Sample(ctx, t, src, "team/app", filepath.Join(work, "keys"))
	// A 3 MiB image, signed by the sample's key, so the archive spans several 1 MiB volumes and
	// verifies whole.
	big := pushRandomImage(ctx, t, src, "team/big", "v1", 3<<20)
	c := &seed.Cosign{Path: tools.Path(t, "cosign"), Home: t.TempDir()}
	if err := c.Sign(ctx, f.PrivateKeyPath, fmt.Sprintf("%s/team/big@%s", src, big)); err != nil {
		t.Fatal(err)
	}
	set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\n  - ref: %s/team/big:v1\ntrust:\n  keys: [keys/%s]\n", f.Ref(), src, filepath.Base(f.PublicKeyPath)))
	saved := filepath.Join(work, "saved", "airlock.tar")
	mkdir(t, filepath.Dir(saved))
	const volumeSize = 1 << 20
	mustRun(ctx, t, "save", "-c", set, "-o", saved, "--volume-size", "1MiB")
	if vols, _ := filepath.Glob(saved + ".0*"); len(vols) < 3 {
		t.Fatalf("want the archive in at least 3 volumes of 1 MiB, got %v", vols)
	}
	// The honest archive verifies: what fails below is the attack, nothing else.
	if res := run(ctx, t, "verify", saved+".000", "--insecure-archive-trust"); res.code != 0 {
		t.Fatalf("verify of the honest archive: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}

	// linkTo replaces p with a symbolic link to a copy of it outside the archive's directory: the
	// bytes are right, only the link is wrong.
	linkTo := func(t *testing.T, p string) {
		t.Helper()
		outside := filepath.Join(t.TempDir(), "elsewhere-"+filepath.Base(p))
		if err := os.Rename(p, outside); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, p); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name, input string
		prepare     func(t *testing.T, base string)
		want        string
	}{
		{
			name: "GNU sparse entry", input: "a blob entry of a tar volume rewritten as a GNU sparse file (PAX GNU.sparse.* records) whose logical size runs over every entry after it, NAME.tar.sha256 rewritten to match",
			prepare: func(t *testing.T, base string) {
				stream := readStream(t, base)
				off, size := firstBlobWithBlobsAfter(t, stream)
				// To the end-of-archive marker, over every entry after it (the PAX header added moves
				// the data 1024 bytes on, and the stream's end with it).
				logical := int64(len(stream)) - 1024 - off
				pax := paxBlock(t, "GNU.sparse.major=0", "GNU.sparse.minor=1", "GNU.sparse.numblocks=1",
					fmt.Sprintf("GNU.sparse.map=0,%d", size), fmt.Sprintf("GNU.sparse.size=%d", logical))
				hdr := off - 512
				stream = append(stream[:hdr:hdr], append(pax, stream[hdr:]...)...)
				writeStream(t, base, stream, volumeSize)
			},
			want: "is a GNU sparse file (PAX record GNU.sparse.",
		},
		{
			name: "symlinked volume", input: "a tar volume (airlock.tar.001) replaced by a symbolic link to a copy of it outside the archive's directory",
			prepare: func(t *testing.T, base string) { linkTo(t, base+".001") },
			want:    "volume airlock.tar.001 is a symbolic link: refused",
		},
		{
			name: "symlinked first volume", input: "the tar volume named on the command line (airlock.tar.000) replaced by a symbolic link to a copy of it",
			prepare: func(t *testing.T, base string) { linkTo(t, base+".000") },
			want:    "airlock.tar.000 is a symbolic link: refused",
		},
		{
			name: "symlinked volume list", input: "the volume list (airlock.tar.sha256) replaced by a symbolic link to a copy of it",
			prepare: func(t *testing.T, base string) { linkTo(t, base+archive.ChecksumSuffix) },
			want:    "airlock.tar.sha256 is a symbolic link: refused",
		},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(work, "cases", fmt.Sprintf("case%d", i))
			mkdir(t, dir)
			base := copyVolumes(t, saved, dir)
			c.prepare(t, base)
			var msgs []string
			for _, args := range [][]string{
				{"verify", base + ".000", "--insecure-archive-trust"},
				{"load", base + ".000", "--to", fmt.Sprintf("%s/case%d", dst, i), "--insecure-archive-trust"},
			} {
				res := run(ctx, t, args...)
				out := res.stdout + res.stderr
				if strings.Contains(out, "panic:") || strings.Contains(out, "goroutine ") || strings.Contains(out, "runtime error") {
					t.Fatalf("airlock %s crashed on %s (exit %d):\n%s", args[0], c.input, res.code, out)
				}
				if res.code != 1 {
					t.Errorf("airlock %s (%s): exit %d, want 1 (a failed integrity check)\n%s", args[0], c.input, res.code, out)
				}
				if !strings.Contains(res.stderr, c.want) {
					t.Errorf("airlock %s (%s): stderr lacks %q:\n%s", args[0], c.input, c.want, res.stderr)
				}
				msg := strings.TrimSpace(res.stderr)
				if j := strings.LastIndex(msg, "\nairlock: "); j >= 0 {
					msg = msg[j+1:]
				}
				msgs = append(msgs, strings.TrimSpace(strings.TrimPrefix(msg, "airlock: ")))
			}
			checkRegistryEmpty(t, dst)
			t.Logf("%s: %s", c.name, msgs[1])
			record("archive", c.input, "verify and load refuse it (exit 1), before any push: "+stableMessage(msgs[1], dir, src)+"; the target registry holds nothing")
		})
	}
}

// checkRegistryEmpty fails unless the registry lists no repository, and no repository it lists has a tag.
func checkRegistryEmpty(t *testing.T, host string) {
	t.Helper()
	status, _, body := get(t.Context(), t, http.MethodGet, host, "/v2/_catalog?n=1000")
	if status != http.StatusOK {
		t.Fatalf("GET %s/v2/_catalog: status %d, %s", host, status, body)
	}
	var cat struct{ Repositories []string }
	if err := json.Unmarshal(body, &cat); err != nil {
		t.Fatalf("_catalog: %v: %s", err, body)
	}
	for _, repo := range cat.Repositories {
		status, _, body := get(t.Context(), t, http.MethodGet, host, "/v2/"+repo+"/tags/list")
		var tags struct{ Tags []string }
		json.Unmarshal(body, &tags)
		t.Errorf("a refused archive left repository %s on the target (tags: status %d, %v)", repo, status, tags.Tags)
	}
}

// readStream joins the volumes of base into one tar stream.
func readStream(t *testing.T, base string) []byte {
	t.Helper()
	vols, _ := filepath.Glob(base + ".0*")
	sort.Strings(vols)
	var stream []byte
	for _, v := range vols {
		b, err := os.ReadFile(v)
		if err != nil {
			t.Fatal(err)
		}
		stream = append(stream, b...)
	}
	return stream
}

// writeStream splits stream into volumes of size bytes in place of base's, and writes a volume list
// that matches them, as save would.
func writeStream(t *testing.T, base string, stream []byte, size int) {
	t.Helper()
	old, _ := filepath.Glob(base + ".0*")
	for _, v := range old {
		if err := os.Remove(v); err != nil {
			t.Fatal(err)
		}
	}
	var list strings.Builder
	for i := 0; len(stream) > 0; i++ {
		part := stream[:min(size, len(stream))]
		stream = stream[len(part):]
		name := fmt.Sprintf("%s.%03d", filepath.Base(base), i)
		if err := os.WriteFile(filepath.Join(filepath.Dir(base), name), part, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(part)
		fmt.Fprintf(&list, "%s  %s\n", hex.EncodeToString(sum[:]), name)
	}
	if err := os.WriteFile(base+archive.ChecksumSuffix, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// firstBlobWithBlobsAfter returns the data offset and size of the first blob entry of stream that
// other blob entries follow.
func firstBlobWithBlobsAfter(t *testing.T, stream []byte) (off, size int64) {
	t.Helper()
	br := bytes.NewReader(stream)
	tr := tar.NewReader(br)
	type entry struct{ off, size int64 }
	var blobs []entry
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(hdr.Name, "blobs/sha256/") && hdr.Typeflag == tar.TypeReg {
			// archive/tar reads no further than the header: the data starts here.
			blobs = append(blobs, entry{int64(len(stream)) - int64(br.Len()), hdr.Size})
		}
	}
	if len(blobs) < 2 {
		t.Fatalf("the saved stream holds %d blob entries, want at least 2", len(blobs))
	}
	if !bytes.Equal(stream[blobs[0].off-512+257:blobs[0].off-512+262], []byte("ustar")) {
		t.Fatal("the first blob's header is not a plain ustar header just before its data")
	}
	return blobs[0].off, blobs[0].size
}

// paxBlock is a PAX extended header ('x') holding records ("key=value"), written by hand:
// archive/tar's writer drops GNU.sparse.* records.
func paxBlock(t *testing.T, records ...string) []byte {
	t.Helper()
	var data []byte
	for _, r := range records {
		n := len(r) + 3
		for len(fmt.Sprint(n))+len(r)+2 != n {
			n = len(fmt.Sprint(n)) + len(r) + 2
		}
		data = fmt.Appendf(data, "%d %s\n", n, r)
	}
	if len(data) > 512 {
		t.Fatal("PAX records over one block")
	}
	b := make([]byte, 1024)
	copy(b[0:], "PaxHeaders/sparse")
	copy(b[100:], "0000644\x00")
	copy(b[108:], "0000000\x00")
	copy(b[116:], "0000000\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00", len(data)))
	copy(b[136:], "00000000000\x00")
	b[156] = tar.TypeXHeader
	copy(b[257:], "ustar\x0000")
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	copy(b[512:], data)
	return b
}
