package archive

// Tests written from an honest gremlins run over tarwriter.go and tarvolfiles.go (issue 20): the
// slots TarWriter plans (an empty blob is one) and the volumes finish lists when the stream fills its
// last volume exactly. Each was seen failing with the mutant it was written for applied. See
// docs/mutation.md.

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestTarWriterPlansEmptyBlob: an empty blob gets a slot like any other; a duplicate, an invalid
// digest and a negative size do not.
func TestTarWriterPlansEmptyBlob(t *testing.T) {
	empty := ocispec.Descriptor{Digest: digest.FromBytes(nil), Size: 0}
	one := ocispec.Descriptor{Digest: digest.FromString("x"), Size: 1}
	w := &TarWriter{vf: &volumeFiles{base: "a.tar"}, byName: map[digest.Digest]int{}}
	content := []ocispec.Descriptor{empty, one, empty, {Digest: "sha256:nothex", Size: 1}, {Digest: digest.FromString("y"), Size: -1}}
	if err := w.plan([]byte("{}"), content); err != nil {
		t.Fatal(err)
	}
	var got []digest.Digest
	for _, s := range w.slots[1:] {
		got = append(got, s.desc.Digest)
	}
	if !slices.Equal(got, []digest.Digest{empty.Digest, one.Digest}) || w.byName[empty.Digest] != 1 || w.byName[one.Digest] != 2 {
		t.Fatalf("slots after oci-layout %v, byName %v; want the empty blob, then x", got, w.byName)
	}
	// The empty blob's entry is its header alone; the next starts right after.
	if s := w.slots[1]; s.next != s.data || w.slots[2].off != s.next {
		t.Fatalf("empty blob's slot %+v, next slot at %d", s, w.slots[2].off)
	}
}

// TestVolumeFilesFinishExactFill: a stream that fills its last volume exactly makes no empty volume
// after it; one byte more makes a volume of one byte.
func TestVolumeFilesFinishExactFill(t *testing.T) {
	for _, c := range []struct {
		total int64
		sizes []int64
	}{
		{8, []int64{4, 4}},
		{9, []int64{4, 4, 1}},
		{7, []int64{4, 3}},
	} {
		v := &volumeFiles{base: filepath.Join(t.TempDir(), "a.tar"), size: 4}
		if err := v.WriteAt(make([]byte, c.total), 0); err != nil {
			t.Fatal(err)
		}
		vols, err := v.finish(c.total, false, nil)
		if err != nil {
			t.Fatalf("%d bytes: %v", c.total, err)
		}
		var sizes []int64
		for i, vol := range vols {
			sizes = append(sizes, vol.Size)
			if fi, err := os.Stat(v.final(i)); err != nil || fi.Size() != vol.Size {
				t.Errorf("%d bytes: volume %s: %v, %v", c.total, vol.Name, fi, err)
			}
		}
		if !slices.Equal(sizes, c.sizes) {
			t.Errorf("%d bytes in volumes of 4: sizes %v, want %v", c.total, sizes, c.sizes)
		}
	}
}

// openTarWriter1 opens a TarWriter in a new directory for one blob, b.
func openTarWriter1(t *testing.T, b []byte) (*TarWriter, ocispec.Descriptor) {
	t.Helper()
	dir := t.TempDir()
	desc := ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}
	w, err := OpenTarWriter(filepath.Join(dir, "a.tar"), 0, dir, []ocispec.Descriptor{desc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w, desc
}

// TestTarWriterReplayHave: a journal's "have" line is taken from 0 to the blob's size, both included,
// and replaces what an earlier line said; past the size it is ignored.
func TestTarWriterReplayHave(t *testing.T) {
	w, desc := openTarWriter1(t, []byte("hello"))
	d := desc.Digest.String()
	for _, c := range []struct {
		line string
		want slotState
	}{
		{"have " + d + " 5", slotState{have: 5}},
		{"have " + d + " 6", slotState{have: 5}},
		{"done " + d, slotState{done: true}},
		{"have " + d + " 0", slotState{}},
	} {
		w.replay(c.line)
		if got := w.state[1]; got != c.want {
			t.Fatalf("after %q: %+v, want %+v", c.line, got, c.want)
		}
	}
}

// TestTarWriterZeroesPadding: completing a slot writes the zeros that pad its data to a block, over
// whatever an earlier attempt left there.
func TestTarWriterZeroesPadding(t *testing.T) {
	w, _ := openTarWriter1(t, []byte("hello"))
	s := w.slots[1]
	if err := w.vf.WriteAt(bytes.Repeat([]byte("j"), 507), s.data+5); err != nil {
		t.Fatal(err)
	}
	if err := w.fill(1, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 512)
	if err := w.vf.ReadAt(got, s.data); err != nil {
		t.Fatal(err)
	}
	if string(got[:5]) != "hello" || !slices.Equal(got[5:], make([]byte, 507)) {
		t.Fatalf("the slot's block: %q", got)
	}
}

// TestTarWriterCloseClosesJournal: Close closes the journal (what it wrote is kept for the next run).
func TestTarWriterCloseClosesJournal(t *testing.T) {
	w, _ := openTarWriter1(t, []byte("hello"))
	j := w.journal
	w.Close()
	if _, err := j.WriteString("x\n"); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("writing to the journal after Close: %v, want os.ErrClosed", err)
	}
}

// TestTarWriterJournalsEveryEightMiB: a blob's progress is journaled each time 8 MiB more of it have
// arrived (at 8 MiB exactly, here), not more often: a blob of 9 MiB and a byte, read 1 MiB at a time,
// leaves one "have" line, at 8 MiB, before its "done".
func TestTarWriterJournalsEveryEightMiB(t *testing.T) {
	b := make([]byte, 9<<20+1)
	b[0] = 1
	dir := t.TempDir()
	desc := ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}
	w, err := OpenTarWriter(filepath.Join(dir, "a.tar"), 0, dir, []ocispec.Descriptor{desc})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.PushResumable(t.Context(), desc, func(off int64) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b[off:])), nil
	}); err != nil {
		t.Fatal(err)
	}
	j, err := os.ReadFile(filepath.Join(dir, journalName))
	if err != nil {
		t.Fatal(err)
	}
	var progress []string
	for _, l := range strings.Split(string(j), "\n") {
		if strings.HasPrefix(l, "have "+desc.Digest.String()) || strings.HasPrefix(l, "done "+desc.Digest.String()) {
			progress = append(progress, l)
		}
	}
	want := []string{"have " + desc.Digest.String() + " 8388608", "done " + desc.Digest.String()}
	if !slices.Equal(progress, want) {
		t.Fatalf("journal lines of the blob %q, want %q", progress, want)
	}
}

// failAfter serves b, then fails with errBroken.
type failAfter struct{ r io.Reader }

var errBroken = errors.New("connection reset")

func (f failAfter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errBroken
	}
	return n, err
}

func (failAfter) Close() error { return nil }

// TestTarWriterResumeCounts: each attempt, in a run of its own (a TarWriter opened again on the
// journal), reports the bytes its own source delivered, not counting what earlier runs kept, whether
// it fails or completes the blob.
func TestTarWriterResumeCounts(t *testing.T) {
	b := bytes.Repeat([]byte("0123456789"), 300)
	dir := t.TempDir()
	desc := ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}
	var froms []int64
	attempt := func(upTo int, fail bool) (int64, error) {
		w, err := OpenTarWriter(filepath.Join(dir, "a.tar"), 0, dir, []ocispec.Descriptor{desc})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		return w.PushResumable(t.Context(), desc, func(off int64) (io.ReadCloser, error) {
			froms = append(froms, off)
			if fail {
				return failAfter{bytes.NewReader(b[off:upTo])}, nil
			}
			return io.NopCloser(bytes.NewReader(b[off:])), nil
		})
	}
	if got, err := attempt(1000, true); got != 1000 || !errors.Is(err, errBroken) {
		t.Fatalf("first attempt: %d, %v; want 1000, %v", got, err, errBroken)
	}
	if got, err := attempt(1500, true); got != 500 || !errors.Is(err, errBroken) {
		t.Fatalf("second attempt: %d, %v; want 500, %v (asked from %v)", got, err, errBroken, froms)
	}
	if got, err := attempt(0, false); got != 1500 || err != nil {
		t.Fatalf("third attempt: %d, %v; want 1500, nil (asked from %v)", got, err, froms)
	}
	if !slices.Equal(froms, []int64{0, 1000, 1500}) {
		t.Fatalf("asked from %v, want [0 1000 1500]", froms)
	}
}

// TestTarWriterResumesWithinARun: when the source fails, a retry of PushResumable on the same
// TarWriter (the engine's Retry.Do, in one run) asks the source only for the rest, as a new run
// would; the blob is complete and right after it.
func TestTarWriterResumesWithinARun(t *testing.T) {
	b := bytes.Repeat([]byte("0123456789"), 300)
	dir := t.TempDir()
	desc := ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}
	w, err := OpenTarWriter(filepath.Join(dir, "a.tar"), 0, dir, []ocispec.Descriptor{desc})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var froms []int64
	open := func(upTo int) func(int64) (io.ReadCloser, error) {
		return func(off int64) (io.ReadCloser, error) {
			froms = append(froms, off)
			if upTo > 0 {
				return failAfter{bytes.NewReader(b[off:upTo])}, nil
			}
			return io.NopCloser(bytes.NewReader(b[off:])), nil
		}
	}
	if got, err := w.PushResumable(t.Context(), desc, open(1000)); got != 1000 || !errors.Is(err, errBroken) {
		t.Fatalf("first attempt: %d, %v; want 1000, %v", got, err, errBroken)
	}
	if got, err := w.PushResumable(t.Context(), desc, open(0)); got != 2000 || err != nil {
		t.Fatalf("retry: %d, %v; want the 2000 bytes left, nil (asked from %v)", got, err, froms)
	}
	if !slices.Equal(froms, []int64{0, 1000}) {
		t.Errorf("asked from %v, want [0 1000]", froms)
	}
	if ok, err := w.Exists(t.Context(), desc); !ok || err != nil {
		t.Errorf("the blob is not held after the retry: %v, %v", ok, err)
	}
}
