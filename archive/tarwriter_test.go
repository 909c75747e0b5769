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
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type testBlob struct {
	desc ocispec.Descriptor
	b    []byte
}

func randomBlobs(n, size int) []testBlob {
	rng := rand.New(rand.NewSource(1))
	var out []testBlob
	for i := range n {
		b := make([]byte, size+i*777)
		rng.Read(b)
		out = append(out, testBlob{ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}, b})
	}
	return out
}

func descsOf(bs []testBlob) []ocispec.Descriptor {
	var ds []ocispec.Descriptor
	for _, b := range bs {
		ds = append(ds, b.desc)
	}
	return ds
}

// stagingWithIndex makes a staging layout holding index.json (and a small blob without a slot).
func stagingWithIndex(t *testing.T, dir string) {
	t.Helper()
	l, err := CreateLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	extra := []byte(`{"catalog":true}`)
	d := ocispec.Descriptor{MediaType: "application/json", Digest: digest.FromBytes(extra), Size: int64(len(extra))}
	if err := l.PushBytes(context.Background(), d, extra); err != nil {
		t.Fatal(err)
	}
	d.Annotations = map[string]string{ocispec.AnnotationRefName: "x"}
	l.AddEntry(d)
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
}

// readTarBack opens the written archive and checks every blob against its digest, and that the tar
// stream's entries end with index.json.
func readTarBack(t *testing.T, base string, blobs []testBlob) []string {
	t.Helper()
	ctx := context.Background()
	r, err := Open(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, b := range blobs {
		rc, err := r.Fetch(ctx, b.desc)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, b.b) {
			t.Fatalf("blob %s read back wrong (%v)", b.desc.Digest, err)
		}
	}
	var names []string
	var rs []io.Reader
	for _, v := range r.Volumes {
		f, err := os.Open(filepath.Join(filepath.Dir(base), v.Name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rs = append(rs, f)
	}
	tr := tar.NewReader(io.MultiReader(rs...))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if len(names) == 0 || names[0] != ocispec.ImageLayoutFile || names[len(names)-1] != ocispec.ImageIndexFile {
		t.Fatalf("entries %v: want oci-layout first and index.json last", names)
	}
	return names
}

func TestTarWriterSplitsVolumesIndexLast(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base, staging := filepath.Join(dir, "a.tar"), filepath.Join(dir, "a.tar.staging")
	stagingWithIndex(t, staging)
	blobs := randomBlobs(6, 20000)
	const size = 16 << 10
	w, err := OpenTarWriter(base, size, staging, descsOf(blobs))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blobs {
		if err := w.Push(ctx, b.desc, bytes.NewReader(b.b)); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(base + ".000"); err == nil {
			t.Fatal("a volume under its final name before the tar is complete")
		}
	}
	vols, err := w.Finish(ctx, staging)
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) < 2 {
		t.Fatalf("%d volumes, want several", len(vols))
	}
	for i, v := range vols {
		fi, err := os.Stat(filepath.Join(dir, v.Name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != v.Size || (i < len(vols)-1 && v.Size != size) || v.Size > size {
			t.Errorf("volume %s: %d bytes (listed %d), volume size %d", v.Name, fi.Size(), v.Size, size)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.partial")); len(m) > 0 {
		t.Errorf("partial volumes left: %v", m)
	}
	names := readTarBack(t, base, blobs)
	if len(names) != 1+len(blobs)+2 {
		t.Errorf("entries %v: want oci-layout, %d blobs, the staged blob, index.json", names, len(blobs))
	}
}

// failingReader delivers n bytes of b, then fails.
type failingReader struct {
	b []byte
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset")
	}
	k := copy(p, f.b[:min(len(f.b), f.n)])
	f.b, f.n = f.b[k:], f.n-k
	return k, nil
}

func TestTarWriterResumesAfterKillMidBlob(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base, staging := filepath.Join(dir, "a.tar"), filepath.Join(dir, "a.tar.staging")
	stagingWithIndex(t, staging)
	big := randomBlobs(1, 3*journalEvery)[0]
	small := randomBlobs(2, 5000)
	blobs := append([]testBlob{big}, small...)
	w, err := OpenTarWriter(base, 1<<20, staging, descsOf(blobs))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Push(ctx, small[0].desc, bytes.NewReader(small[0].b)); err != nil {
		t.Fatal(err)
	}
	cut := 2*journalEvery + 100
	_, err = w.PushResumable(ctx, big.desc, func(off int64) (io.ReadCloser, error) {
		return io.NopCloser(&failingReader{b: big.b[off:], n: cut}), nil
	})
	if err == nil {
		t.Fatal("a failing source did not fail the push")
	}
	w.Close() // killed: nothing more is written

	w, err = OpenTarWriter(base, 1<<20, staging, descsOf(blobs))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := w.Exists(ctx, small[0].desc); err != nil || !ok {
		t.Fatalf("the blob completed before the kill: exists %v, %v", ok, err)
	}
	if ok, _ := w.Exists(ctx, big.desc); ok {
		t.Fatal("the partial blob reported complete")
	}
	var from int64 = -1
	if _, err := w.PushResumable(ctx, big.desc, func(off int64) (io.ReadCloser, error) {
		from = off
		return io.NopCloser(bytes.NewReader(big.b[off:])), nil
	}); err != nil {
		t.Fatal(err)
	}
	if from < journalEvery || from > int64(cut) {
		t.Errorf("resumed from %d: want what was journaled before the kill (%d to %d)", from, journalEvery, cut)
	}
	if err := w.Push(ctx, small[1].desc, bytes.NewReader(small[1].b)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Finish(ctx, staging); err != nil {
		t.Fatal(err)
	}
	readTarBack(t, base, blobs)
}

func TestTarWriterCutsBadBlobOut(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base, staging := filepath.Join(dir, "a.tar"), filepath.Join(dir, "a.tar.staging")
	stagingWithIndex(t, staging)
	blobs := randomBlobs(3, 3000)
	w, err := OpenTarWriter(base, 4096, staging, descsOf(blobs))
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), blobs[1].b...)
	bad[100] ^= 1
	var dm *DigestMismatchError
	if err := w.Push(ctx, blobs[1].desc, bytes.NewReader(bad)); !errors.As(err, &dm) {
		t.Fatalf("altered blob pushed: %v", err)
	}
	if ok, _ := w.Exists(ctx, blobs[1].desc); ok {
		t.Fatal("a blob that failed its digest is reported stored")
	}
	for _, b := range blobs {
		if b.desc.Digest == blobs[1].desc.Digest {
			continue
		}
		if err := w.Push(ctx, b.desc, bytes.NewReader(b.b)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Finish(ctx, staging); err == nil {
		t.Fatal("Finish with a slot cut back out succeeded")
	}
	// Run again: the bad blob, fetched again, goes in; the rest is kept.
	w, err = OpenTarWriter(base, 4096, staging, descsOf(blobs))
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := w.Exists(ctx, blobs[1].desc); ok {
		t.Fatal("the cut blob is reported stored after a restart")
	}
	if ok, _ := w.Exists(ctx, blobs[0].desc); !ok {
		t.Fatal("a good blob was not kept")
	}
	if err := w.Push(ctx, blobs[1].desc, bytes.NewReader(blobs[1].b)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Finish(ctx, staging); err != nil {
		t.Fatal(err)
	}
	readTarBack(t, base, blobs)
}

func TestTarWriterRehashesKeptBlobs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base, staging := filepath.Join(dir, "a.tar"), filepath.Join(dir, "a.tar.staging")
	stagingWithIndex(t, staging)
	blobs := randomBlobs(2, 3000)
	w, err := OpenTarWriter(base, 0, staging, descsOf(blobs))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blobs {
		if err := w.Push(ctx, b.desc, bytes.NewReader(b.b)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	// Damage the kept volume where the first blob's slot is.
	w, err = OpenTarWriter(base, 0, staging, descsOf(blobs))
	if err != nil {
		t.Fatal(err)
	}
	i := w.byName[blobs[0].desc.Digest]
	if err := w.vf.WriteAt([]byte{0xff, 0xfe}, w.slots[i].data+10); err != nil {
		t.Fatal(err)
	}
	if ok, _ := w.Exists(ctx, blobs[0].desc); ok {
		t.Fatal("a damaged kept blob was trusted")
	}
	if ok, _ := w.Exists(ctx, blobs[1].desc); !ok {
		t.Fatal("an intact kept blob was not")
	}
	if err := w.Push(ctx, blobs[0].desc, bytes.NewReader(blobs[0].b)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Finish(ctx, staging); err != nil {
		t.Fatal(err)
	}
	readTarBack(t, base, blobs)
}

// TestTarWriterKeepsTheGivenOrder: the slots keep the order they are given in (the order the copy
// fetches them), not the digests' order, so the volumes fill front to back as the blobs land. The
// blobs here are given in falling digest order, and the tar lists them in that order.
func TestTarWriterKeepsTheGivenOrder(t *testing.T) {
	ctx := context.Background()
	blobs := randomBlobs(3, 3000)
	slices.SortFunc(blobs, func(a, b testBlob) int { return strings.Compare(string(b.desc.Digest), string(a.desc.Digest)) })
	dir := t.TempDir()
	base, staging := filepath.Join(dir, "a.tar"), filepath.Join(dir, "a.tar.staging")
	stagingWithIndex(t, staging)
	w, err := OpenTarWriter(base, 0, staging, descsOf(blobs))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, b := range blobs {
		if err := w.Push(ctx, b.desc, bytes.NewReader(b.b)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Finish(ctx, staging); err != nil {
		t.Fatal(err)
	}
	names := readTarBack(t, base, blobs)
	for i, b := range blobs {
		if want := blobName(b.desc.Digest); names[1+i] != want {
			t.Errorf("entry %d is %s, want %s (the order given)", 1+i, names[1+i], want)
		}
	}
}

// gatedReader delivers first, then waits for open to be true before it delivers the rest.
type gatedReader struct {
	first, rest []byte
	wait        func()
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if len(g.first) > 0 {
		n := copy(p, g.first)
		g.first = g.first[n:]
		return n, nil
	}
	if g.wait != nil {
		g.wait()
		g.wait = nil
	}
	if len(g.rest) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.rest)
	g.rest = g.rest[n:]
	return n, nil
}

// TestTarWriterSumsMatchAfterAFailedBlob: with Sums, the volume list carries each volume's sha256,
// and it is that of the bytes the volumes hold, in sha256sum -c format, even when a blob spanning two
// volumes streamed part way, waited, and another failed part way before it was pushed again (Open
// checks every volume against the list, and the test hashes the files itself).
func TestTarWriterSumsMatchAfterAFailedBlob(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base, staging := filepath.Join(dir, "a.tar"), filepath.Join(dir, "a.tar.staging")
	stagingWithIndex(t, staging)
	blobs := randomBlobs(2, 3*copyBufferSize)
	w, err := OpenTarWriter(base, 5<<20, staging, descsOf(blobs)) // the first blob spans two volumes
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Sums = true
	part := int64(copyBufferSize)
	g := &gatedReader{first: blobs[0].b[:part], rest: blobs[0].b[part:], wait: func() { time.Sleep(20 * time.Millisecond) }}
	if err := w.Push(ctx, blobs[0].desc, g); err != nil {
		t.Fatal(err)
	}
	if err := w.Push(ctx, blobs[1].desc, &failingReader{b: blobs[1].b, n: 2 * copyBufferSize}); err == nil {
		t.Fatal("a failing source did not fail the push")
	}
	if err := w.Push(ctx, blobs[1].desc, bytes.NewReader(blobs[1].b)); err != nil {
		t.Fatal(err)
	}
	vols, err := w.Finish(ctx, staging)
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) < 2 {
		t.Fatalf("%d volumes, want the first blob across two", len(vols))
	}
	var want strings.Builder
	for _, v := range vols {
		b, err := os.ReadFile(filepath.Join(dir, v.Name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if v.SHA256 != hex.EncodeToString(sum[:]) || v.Size != int64(len(b)) {
			t.Errorf("volume %s: listed %s, %d bytes; it holds %x, %d bytes", v.Name, v.SHA256, v.Size, sum, len(b))
		}
		fmt.Fprintf(&want, "%x  %s\n", sum, v.Name)
	}
	if list, err := os.ReadFile(base + ChecksumSuffix); err != nil || string(list) != want.String() {
		t.Errorf("volume list %q, %v; want %q", list, err, want.String())
	}
	readTarBack(t, base, blobs) // Open checks every volume against the list
}

// TestTarWriterNeverHoldsABlobBack: a blob far behind in the stream is written while one before it is
// still streaming in: slots are written in any order, as their blobs arrive, and nothing paces them.
func TestTarWriterNeverHoldsABlobBack(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base, staging := filepath.Join(dir, "a.tar"), filepath.Join(dir, "a.tar.staging")
	stagingWithIndex(t, staging)
	blobs := randomBlobs(3, 2*copyBufferSize)
	w, err := OpenTarWriter(base, 0, staging, descsOf(blobs))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	release, started := make(chan struct{}), make(chan struct{})
	firstDone := make(chan error, 1)
	go func() {
		firstDone <- w.Push(ctx, blobs[0].desc, &gatedReader{first: blobs[0].b[:1024], rest: blobs[0].b[1024:], wait: func() { close(started); <-release }})
	}()
	<-started // the first blob is streaming: 1 KiB written, the rest held by its source
	thirdDone := make(chan error, 1)
	go func() { thirdDone <- w.Push(ctx, blobs[2].desc, bytes.NewReader(blobs[2].b)) }()
	select {
	case err := <-thirdDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the third blob waits while the first streams")
	}
	close(release)
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	if err := w.Push(ctx, blobs[1].desc, bytes.NewReader(blobs[1].b)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Finish(ctx, staging); err != nil {
		t.Fatal(err)
	}
	readTarBack(t, base, blobs)
}
