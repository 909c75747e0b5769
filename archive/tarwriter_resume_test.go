package archive

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// interrupt pushes the first n bytes of b into its slot and fails, then stops the writer (a killed
// run) and opens it again, as the next run would: the slot then holds n journaled bytes.
func interrupt(t *testing.T, w *TarWriter, b testBlob, n int, reopen func() *TarWriter) *TarWriter {
	t.Helper()
	got, err := w.PushResumable(context.Background(), b.desc, func(off int64) (io.ReadCloser, error) {
		return io.NopCloser(&failingReader{b: b.b[off:], n: n}), nil
	})
	if err == nil || got != int64(n) {
		t.Fatalf("interrupted push: %d bytes, %v; want %d and the source's failure", got, err, n)
	}
	w.Close()
	return reopen()
}

// TestTarWriterRefusesWrongLengthAfterResume: a source that, resumed, delivers more than the blob's
// size or ends before it fails the push with what it delivered this time, and the slot is emptied, so
// the next attempt starts from the beginning.
func TestTarWriterRefusesWrongLengthAfterResume(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base, staging := filepath.Join(dir, "a.tar"), filepath.Join(dir, "a.tar.staging")
	stagingWithIndex(t, staging)
	b := randomBlobs(1, 6000)[0]
	open := func() *TarWriter {
		w, err := OpenTarWriter(base, 0, staging, []ocispec.Descriptor{b.desc})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	from := int64(-1)
	source := func(data func(off int64) []byte) func(off int64) (io.ReadCloser, error) {
		return func(off int64) (io.ReadCloser, error) {
			from = off
			return io.NopCloser(bytes.NewReader(data(off))), nil
		}
	}

	w := interrupt(t, open(), b, 1000, open)
	got, err := w.PushResumable(ctx, b.desc, source(func(off int64) []byte { return append(append([]byte(nil), b.b[off:]...), "xx"...) }))
	if from != 1000 || got != 0 || err == nil || !strings.Contains(err.Error(), "blob "+b.desc.Digest.String()+": more than the 6000 bytes the descriptor says") {
		t.Fatalf("overlong source, resumed from %d: %d bytes, %v; want 0 bytes and a refusal", from, got, err)
	}
	if ok, _ := w.Exists(ctx, b.desc); ok {
		t.Fatal("an overlong blob is reported stored")
	}

	w = interrupt(t, w, b, 1000, open)
	got, err = w.PushResumable(ctx, b.desc, source(func(off int64) []byte { return b.b[off:3000] }))
	var short *ShortBlobError
	if from != 1000 || got != 2000 || !errors.As(err, &short) || short.Got != 3000 || short.Size != 6000 || short.Digest != b.desc.Digest {
		t.Fatalf("short source, resumed from %d: %d bytes, %v; want 2000 bytes and a ShortBlobError at 3000 of 6000", from, got, err)
	}

	// The short blob was cut back out: the next attempt asks for all of it.
	if _, err := w.PushResumable(ctx, b.desc, source(func(off int64) []byte { return b.b[off:] })); err != nil || from != 0 {
		t.Fatalf("push after a short blob: from %d, %v; want from 0, no error", from, err)
	}
	if _, err := w.Finish(ctx, staging); err != nil {
		t.Fatal(err)
	}
	readTarBack(t, base, []testBlob{b})
}

// TestTarWriterDiskFullMidBlob: a volume that cannot be written (a full disk) fails the push with a
// LocalWriteError naming that volume and what was still to go into it; what the slot held before is
// kept, and the next run resumes from it.
func TestTarWriterDiskFullMidBlob(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full here")
	}
	ctx := context.Background()
	dir := t.TempDir()
	base, staging := filepath.Join(dir, "a.tar"), filepath.Join(dir, "a.tar.staging")
	stagingWithIndex(t, staging)
	b := randomBlobs(1, 6000)[0] // its data: bytes 1536 to 7536 of the stream, over a.tar.000 and .001
	open := func() *TarWriter {
		w, err := OpenTarWriter(base, 4096, staging, []ocispec.Descriptor{b.desc})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	w := open()
	if w.slots[1].data != 1536 {
		t.Fatalf("the blob's data starts at %d, want 1536", w.slots[1].data)
	}
	w.Close()
	second := base + ".001.partial"
	os.Remove(second)
	if err := os.Symlink("/dev/full", second); err != nil {
		t.Fatal(err)
	}
	w = interrupt(t, open(), b, 1000, open)
	var from int64 = -1
	got, err := w.PushResumable(ctx, b.desc, func(off int64) (io.ReadCloser, error) {
		from = off
		return io.NopCloser(bytes.NewReader(b.b[off:])), nil
	})
	var lw *LocalWriteError
	if !errors.As(err, &lw) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("got %v, want a LocalWriteError for ENOSPC", err)
	}
	if from != 1000 || got != 0 || lw.Path != second || lw.Need != 1536+6000-4096 {
		t.Errorf("resumed from %d, %d bytes, %+v; want from 1000, 0 bytes, %s needing %d more", from, got, lw, second, 1536+6000-4096)
	}
	w.Close()

	os.Remove(second) // room again
	w = open()
	if _, err := w.PushResumable(ctx, b.desc, func(off int64) (io.ReadCloser, error) {
		from = off
		return io.NopCloser(bytes.NewReader(b.b[off:])), nil
	}); err != nil || from != 1000 {
		t.Fatalf("push after the disk full: from %d, %v; want from the 1000 bytes kept", from, err)
	}
	if _, err := w.Finish(ctx, staging); err != nil {
		t.Fatal(err)
	}
	readTarBack(t, base, []testBlob{b})
}

// TestTarWriterPlannedAndAbandon: only the blobs of the plan, at their size, have a slot (duplicates
// and invalid descriptors are left out); Abandon leaves neither volumes nor journal.
func TestTarWriterPlannedAndAbandon(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "a.tar")
	blobs := randomBlobs(2, 3000)
	bad := ocispec.Descriptor{Digest: "sha256:zz", Size: 3}
	negative := ocispec.Descriptor{Digest: digest.FromString("n"), Size: -1}
	w, err := OpenTarWriter(base, 4096, dir, append(descsOf(blobs), blobs[0].desc, bad, negative))
	if err != nil {
		t.Fatal(err)
	}
	if len(w.slots) != 3 {
		t.Errorf("%d slots, want oci-layout and the 2 blobs", len(w.slots))
	}
	other := blobs[1].desc
	other.Size++
	for _, c := range []struct {
		d    ocispec.Descriptor
		want bool
	}{{blobs[0].desc, true}, {blobs[1].desc, true}, {other, false}, {bad, false}, {negative, false}, {ocispec.Descriptor{Digest: digest.FromString("x"), Size: 1}, false}} {
		if got := w.Planned(c.d); got != c.want {
			t.Errorf("Planned(%s, %d) = %v, want %v", c.d.Digest, c.d.Size, got, c.want)
		}
	}
	if err := w.Push(context.Background(), blobs[0].desc, bytes.NewReader(blobs[0].b)); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(base + ".*.partial"); len(m) == 0 {
		t.Fatal("no partial volume written")
	}
	w.Abandon()
	if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) > 0 {
		t.Errorf("left after Abandon: %v", m)
	}
}

// TestTarWriterFinishWithoutStagedBlobs: a staging directory with no blobs/ (nothing but index.json
// comes after the slots) is fine.
func TestTarWriterFinishWithoutStagedBlobs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base, staging := filepath.Join(dir, "a.tar"), filepath.Join(dir, "staging")
	if err := os.MkdirAll(staging, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(staging, ocispec.ImageIndexFile), []byte(`{"schemaVersion":2,"manifests":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
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
	if _, err := w.Finish(ctx, staging); err != nil {
		t.Fatal(err)
	}
	if names := readTarBack(t, base, blobs); len(names) != 1+len(blobs)+1 {
		t.Errorf("entries %v: want oci-layout, the %d blobs, index.json", names, len(blobs))
	}
}

// TestTarWriterCutsStaleTailOnResume: a Finish that failed after appending past the slots (here:
// index.json missing from the staging layout) leaves volumes beyond the slots; the next run cuts the
// stream back to the end of the slots (volumes after it removed, the one holding it truncated) and
// finishes a right archive.
func TestTarWriterCutsStaleTailOnResume(t *testing.T) {
	ctx := context.Background()
	const size = 4096
	for _, c := range []struct {
		name  string
		sizes []int
		end   int64
	}{
		// oci-layout takes 1024 bytes; a blob 512 for its header and its size rounded up to 512.
		{"end inside a volume", []int{1000, 3000}, 1024 + 1536 + 3584},
		{"end on a volume boundary", []int{2560, 3584}, 2 * size},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			base, staging := filepath.Join(dir, "a.tar"), filepath.Join(dir, "staging")
			l, err := CreateLayout(staging)
			if err != nil {
				t.Fatal(err)
			}
			extra, extraDesc := blob(t, 3*size) // staged, no slot: appended by Finish
			if err := l.PushBytes(ctx, extraDesc, extra); err != nil {
				t.Fatal(err)
			}
			var blobs []testBlob
			for i, n := range c.sizes {
				b := bytes.Repeat([]byte{byte('a' + i)}, n)
				blobs = append(blobs, testBlob{ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(n)}, b})
			}
			open := func() *TarWriter {
				w, err := OpenTarWriter(base, size, staging, descsOf(blobs))
				if err != nil {
					t.Fatal(err)
				}
				if w.end != c.end {
					t.Fatalf("slots end at %d, want %d", w.end, c.end)
				}
				return w
			}
			w := open()
			for _, b := range blobs {
				if err := w.Push(ctx, b.desc, bytes.NewReader(b.b)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := w.Finish(ctx, staging); err == nil || !strings.Contains(err.Error(), ocispec.ImageIndexFile) {
				t.Fatalf("Finish without index.json: %v", err)
			}
			w.Close()
			if _, err := os.Stat(base + ".003.partial"); err != nil {
				t.Fatalf("the failed Finish wrote nothing past the slots: %v", err)
			}

			w = open()
			n := int((c.end + size - 1) / size) // volumes holding the slots
			var want []string
			for i := range n {
				want = append(want, w.vf.partial(i))
			}
			got, _ := filepath.Glob(base + ".*.partial")
			if !slices.Equal(got, want) {
				t.Errorf("partial volumes %v, want %v", got, want)
			}
			if fi, err := os.Stat(want[n-1]); err != nil || fi.Size() != c.end-int64(n-1)*size {
				t.Errorf("last volume holding the slots: %v, %v; want %d bytes", fi.Size(), err, c.end-int64(n-1)*size)
			}
			for _, b := range blobs {
				if ok, err := w.Exists(ctx, b.desc); !ok || err != nil {
					t.Errorf("blob %s not kept: %v", b.desc.Digest, err)
				}
			}
			if err := l.Commit(); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Finish(ctx, staging); err != nil {
				t.Fatal(err)
			}
			names := readTarBack(t, base, append(blobs, testBlob{extraDesc, extra}))
			if len(names) != 1+len(blobs)+2 {
				t.Errorf("entries %v: want oci-layout, %d blobs, the staged blob, index.json", names, len(blobs))
			}
		})
	}
}

// TestTarWriterRewritesLayoutFileOnResume: oci-layout, journaled complete by an earlier run, is not
// trusted from the kept volume: damaged there, the finished archive still holds it right.
func TestTarWriterRewritesLayoutFileOnResume(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base, staging := filepath.Join(dir, "a.tar"), filepath.Join(dir, "a.tar.staging")
	stagingWithIndex(t, staging)
	blobs := randomBlobs(1, 3000)
	w, err := OpenTarWriter(base, 0, staging, descsOf(blobs))
	if err != nil {
		t.Fatal(err)
	}
	data := w.slots[0].data
	w.Close()
	f, err := os.OpenFile(base+".partial", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XXXX"), data); err != nil {
		t.Fatal(err)
	}
	f.Close()
	w, err = OpenTarWriter(base, 0, staging, descsOf(blobs))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Push(ctx, blobs[0].desc, bytes.NewReader(blobs[0].b)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Finish(ctx, staging); err != nil {
		t.Fatal(err)
	}
	readTarBack(t, base, blobs)
	got, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"imageLayoutVersion":"1.0.0"}`
	if !bytes.Equal(got[data:data+int64(len(want))], []byte(want)) {
		t.Fatalf("oci-layout in the archive: %q, want %q", got[data:data+int64(len(want))], want)
	}
}
