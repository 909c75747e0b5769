package archive

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// volumeFiles is a tar stream spread over volume files of size bytes (0: one file), written and read
// at any offset of the stream. Until finish they are NAME.tar.NNN.partial (NAME.tar.partial for one
// file): nothing is under a final name before the whole stream is written.
type volumeFiles struct {
	base string
	size int64

	mu    sync.Mutex
	files map[int]*os.File
}

func (v *volumeFiles) final(i int) string {
	if v.size <= 0 {
		return v.base
	}
	return fmt.Sprintf("%s.%03d", v.base, i)
}

func (v *volumeFiles) partial(i int) string { return v.final(i) + ".partial" }

// file opens volume i for reading and writing, creating it when missing.
func (v *volumeFiles) file(i int) (*os.File, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if f := v.files[i]; f != nil {
		return f, nil
	}
	p := v.partial(i)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, &LocalWriteError{Path: p, Err: err}
	}
	if v.files == nil {
		v.files = map[int]*os.File{}
	}
	v.files[i] = f
	return f, nil
}

// span calls f for each volume piece of [off, off+n): volume index, offset in it, and the piece's
// start and end within the n bytes.
func (v *volumeFiles) span(off, n int64, f func(i int, local, from, to int64) error) error {
	for done := int64(0); done < n; {
		i, local, room := 0, off+done, n-done
		if v.size > 0 {
			i, local = int(local/v.size), local%v.size
			room = min(room, v.size-local)
		}
		if err := f(i, local, done, done+room); err != nil {
			return err
		}
		done += room
	}
	return nil
}

// WriteAt writes p at offset off of the stream.
func (v *volumeFiles) WriteAt(p []byte, off int64) error {
	return v.span(off, int64(len(p)), func(i int, local, from, to int64) error {
		f, err := v.file(i)
		if err != nil {
			return err
		}
		if _, err := f.WriteAt(p[from:to], local); err != nil {
			return &LocalWriteError{Path: v.partial(i), Err: err, Need: int64(len(p)) - from}
		}
		return nil
	})
}

// ReadAt fills p from offset off of the stream.
func (v *volumeFiles) ReadAt(p []byte, off int64) error {
	return v.span(off, int64(len(p)), func(i int, local, from, to int64) error {
		f, err := v.file(i)
		if err != nil {
			return err
		}
		if _, err := f.ReadAt(p[from:to], local); err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%s: shorter than the stream written into it: %w", v.partial(i), io.ErrUnexpectedEOF)
			}
			return err
		}
		return nil
	})
}

// partials lists the partial volume files of base on disk.
func (v *volumeFiles) partials() []string {
	var out []string
	if _, err := os.Stat(v.base + ".partial"); err == nil {
		out = append(out, v.base+".partial")
	}
	m, _ := filepath.Glob(v.base + ".[0-9][0-9][0-9].partial")
	return append(out, m...)
}

// truncate cuts the stream back to end bytes: the volume holding end is truncated, later ones removed,
// and so is any partial volume of another volume size, which is not part of this stream.
func (v *volumeFiles) truncate(end int64) error {
	v.closeAll()
	keep := map[string]int64{} // each partial volume of the stream, and the bytes of it the stream holds
	v.span(0, end, func(i int, _, from, to int64) error {
		keep[v.partial(i)] = to - from
		return nil
	})
	for _, p := range v.partials() {
		n, ok := keep[p]
		if !ok {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			continue
		}
		if fi, err := os.Stat(p); err == nil && fi.Size() > n {
			if err := os.Truncate(p, n); err != nil {
				return &LocalWriteError{Path: p, Err: err}
			}
		}
	}
	return nil
}

func (v *volumeFiles) closeAll() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for i, f := range v.files {
		f.Close()
		delete(v.files, i)
	}
}

// remove deletes every partial volume.
func (v *volumeFiles) remove() {
	v.closeAll()
	for _, p := range v.partials() {
		os.Remove(p)
	}
}

// finish renames the volumes of a stream of total bytes into place and writes the volume list last;
// with sums, each volume's sha256 is computed first, in one read of the volumes once they are written.
// The first len(kept) volumes are in place already, untouched, and listed as kept says.
func (v *volumeFiles) finish(total int64, sums bool, kept []Volume) ([]Volume, error) {
	v.closeAll()
	n := 1
	if v.size > 0 {
		n = int((total + v.size - 1) / v.size)
	}
	vols := make([]Volume, n)
	partials := make([]string, n)
	from := copy(vols, kept)
	for i := from; i < n; i++ {
		size := total
		if v.size > 0 {
			size = min(v.size, total-int64(i)*v.size)
		}
		vols[i], partials[i] = Volume{Name: filepath.Base(v.final(i)), Size: size}, v.partial(i)
	}
	if sums {
		if err := addSums(vols[from:], partials[from:]); err != nil {
			return nil, err
		}
	}
	for i := from; i < n; i++ {
		if err := os.Rename(partials[i], v.final(i)); err != nil {
			return nil, &LocalWriteError{Path: v.final(i), Err: err}
		}
	}
	if err := writeVolumeList(v.base, vols); err != nil {
		return nil, err
	}
	return vols, nil
}

// appendEntry writes b as the regular file name at offset pos of the stream (header, data, padding,
// as archive/tar writes them); it returns the offset after it.
func (v *volumeFiles) appendEntry(pos int64, name string, b []byte) (int64, error) {
	hdr, err := tarHeader(name, int64(len(b)))
	if err != nil {
		return 0, err
	}
	entry := append(append(hdr, b...), make([]byte, pad(int64(len(b))))...)
	if err := v.WriteAt(entry, pos); err != nil {
		return 0, err
	}
	return pos + int64(len(entry)), nil
}
