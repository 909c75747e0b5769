package archive

import (
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
