package archive

import (
	"errors"
	"fmt"
	"io"
	"sort"
)

type readerAtSize struct {
	r    io.ReaderAt
	size int64
}

type readerAtWithSize interface {
	io.ReaderAt
	Size() int64
}

// multiReaderAt joins the volumes of an archive into one io.ReaderAt, so the tar stream is read in
// place across volume boundaries.
type multiReaderAt struct {
	parts  []readerAtSize
	starts []int64
	size   int64
}

func newMultiReaderAt(parts []readerAtSize) *multiReaderAt {
	m := &multiReaderAt{parts: parts}
	for _, p := range parts {
		m.starts = append(m.starts, m.size)
		m.size += p.size
	}
	return m
}

func (m *multiReaderAt) Size() int64 { return m.size }

func (m *multiReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("multiReaderAt.ReadAt: negative offset")
	}
	if off >= m.size {
		return 0, io.EOF
	}
	i := sort.Search(len(m.starts), func(i int) bool { return m.starts[i] > off }) - 1
	total := 0
	for len(p) > 0 && i < len(m.parts) {
		local := off - m.starts[i]
		want := p
		if rem := m.parts[i].size - local; int64(len(want)) > rem {
			want = want[:rem]
		}
		n, err := m.parts[i].r.ReadAt(want, local)
		total += n
		off += int64(n)
		p = p[n:]
		if err != nil && err != io.EOF {
			return total, err
		}
		if n < len(want) {
			return total, io.ErrUnexpectedEOF
		}
		i++
	}
	if len(p) > 0 {
		return total, io.EOF
	}
	return total, nil
}

// volumeAt names the volume of vols (the parts of m, in order) that holds byte off of the stream.
func (m *multiReaderAt) volumeAt(vols []Volume, off int64) string {
	i := sort.Search(len(m.starts), func(i int) bool { return m.starts[i] > off }) - 1
	if i < 0 || i >= len(vols) {
		return fmt.Sprintf("(byte %d of %d)", off, m.size)
	}
	return vols[i].Name
}
