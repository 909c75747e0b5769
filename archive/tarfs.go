package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// tarFS serves the regular files of a tar stream, read in place through an io.ReaderAt.
type tarFS struct {
	ra    io.ReaderAt
	files map[string]tarEntry
}

type tarEntry struct {
	offset, size int64
	mtime        time.Time
}

// Limits on what a tar archive may declare, so a hostile or damaged one cannot make the reader
// allocate or loop without end.
const (
	// maxTarEntries bounds the number of entries indexed: a real archive holds one per blob.
	maxTarEntries = 10_000_000
	// maxIndexSize bounds index.json, which is read into memory.
	maxIndexSize = 64 << 20
)

// layoutBlobName matches blobs/<algorithm>/<encoded>, the only files besides oci-layout and
// index.json an OCI image layout holds (the grammar of the OCI digest, without length checks).
var layoutBlobName = regexp.MustCompile(`^blobs/[a-z0-9]+(?:[+._-][a-z0-9]+)*/[a-zA-Z0-9=_-]+$`)

// layoutDirName matches the directories of a layout, which a tar may list and which are skipped.
var layoutDirName = regexp.MustCompile(`^(?:|\.|blobs|blobs/[a-z0-9]+(?:[+._-][a-z0-9]+)*)$`)

// unsafeTarPath explains why name is not a clean relative path, or returns "".
func unsafeTarPath(name string) string {
	switch {
	case path.IsAbs(name) || strings.HasPrefix(name, `\`) || (len(name) > 1 && name[1] == ':'):
		return "an absolute path"
	case name == ".." || strings.HasPrefix(name, "../") || strings.Contains(name, "/../") || strings.HasSuffix(name, "/.."):
		return `it climbs out of the archive with ".."`
	case strings.Contains(name, `\`):
		return "a backslash in the name"
	case !fs.ValidPath(name):
		return "not a clean relative path"
	}
	return ""
}

// plainOnly ends each refusal of a tar entry that is not a plain file stored whole.
const plainOnly = "refused, a tar volume holds only plain files (ustar or PAX headers, no sparse files, no links); " + damaged

// newTarFS indexes the regular files of the tar stream ra. It reads the headers with archive/tar and
// checks each one against the raw blocks (checkTarHeaders), so that every file it serves is exactly
// the bytes stored for it: a GNU sparse file, a PAX record that would change an entry's size or
// where its data lies, entries that overlap and data past the end of the stream are refused, each
// with a *tarRefusal that gives the offset of the entry's header.
func newTarFS(ra readerAtWithSize) (*tarFS, error) {
	t := &tarFS{ra: ra, files: map[string]tarEntry{}}
	size := ra.Size()
	cr := &countingReader{r: io.NewSectionReader(ra, 0, size)}
	tr := tar.NewReader(cr)
	// end is where the data of the entry before ends (0 before the first): the headers of the next
	// entry start at its block boundary, and nowhere else.
	var end int64
	for entries := 0; ; entries++ {
		hdr, err := tr.Next()
		at := max(cr.n-512, 0) // the entry's own header, for naming its volume
		refuse := func(format string, args ...any) error {
			return &tarRefusal{off: at, msg: fmt.Sprintf(format, args...)}
		}
		if err == io.EOF {
			if why := checkTarEnd(ra, blockEnd(end), size); why != "" {
				return nil, refuse("tar stream: %s: %s", why, plainOnly)
			}
			break
		}
		if err != nil {
			return nil, refuse("read tar: %v: the archive is damaged; copy it again from the connected side", err)
		}
		if entries >= maxTarEntries {
			return nil, refuse("tar: more than %d entries: refused, an airlock archive holds one per blob", maxTarEntries)
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		switch hdr.Typeflag {
		case tar.TypeDir:
			dir := strings.TrimSuffix(name, "/")
			if why := unsafeTarPath(dir); dir != "" && why != "" {
				return nil, refuse("tar entry %q: unsafe path refused: %s", hdr.Name, why)
			}
			if !layoutDirName.MatchString(dir) {
				return nil, refuse("tar entry %q: directory refused: it is not part of an OCI image layout", hdr.Name)
			}
		case tar.TypeReg:
		case tar.TypeGNUSparse:
			return nil, refuse("tar entry %q is a GNU sparse file (type 'S'): its size is not the bytes stored; %s", hdr.Name, plainOnly)
		case tar.TypeSymlink:
			return nil, refuse("tar entry %q is a symbolic link to %q: refused, an archive holds only regular files", hdr.Name, hdr.Linkname)
		case tar.TypeLink:
			return nil, refuse("tar entry %q is a hard link to %q: refused, an archive holds only regular files", hdr.Name, hdr.Linkname)
		default:
			return nil, refuse("tar entry %q: type %q refused: an archive holds only regular files", hdr.Name, hdr.Typeflag)
		}
		if why := plainTarEntry(hdr); why != "" {
			return nil, refuse("tar entry %q %s; %s", hdr.Name, why, plainOnly)
		}
		if hdr.Typeflag == tar.TypeReg {
			if why := unsafeTarPath(name); why != "" {
				return nil, refuse("tar entry %q: unsafe path refused: %s", hdr.Name, why)
			}
			if name != ocispec.ImageLayoutFile && name != ocispec.ImageIndexFile && !layoutBlobName.MatchString(name) {
				return nil, refuse("tar entry %q refused: not part of an OCI image layout (only oci-layout, index.json and blobs/<algorithm>/<digest> belong in an archive)", hdr.Name)
			}
			if _, dup := t.files[name]; dup {
				return nil, refuse("tar entry %q appears twice: the archive is damaged or tampered with", hdr.Name)
			}
			// Compared as a difference, so that a huge declared size cannot overflow the sum.
			if hdr.Size < 0 || cr.n > size || hdr.Size > size-cr.n {
				return nil, refuse("tar entry %q declares %d bytes, more than the %d-byte archive holds: truncated, damaged or hostile", hdr.Name, hdr.Size, size)
			}
			if name == ocispec.ImageIndexFile && hdr.Size > maxIndexSize {
				return nil, refuse("tar entry %q: %d bytes, over the %d-byte limit for index.json: refused", hdr.Name, hdr.Size, maxIndexSize)
			}
		}
		if why := checkTarHeaders(ra, blockEnd(end), cr.n, hdr); why != "" {
			return nil, refuse("tar entry %q: %s; %s", hdr.Name, why, plainOnly)
		}
		if hdr.Typeflag == tar.TypeDir {
			end = cr.n // a directory stores no data
			continue
		}
		end = cr.n + hdr.Size
		t.files[name] = tarEntry{offset: cr.n, size: hdr.Size, mtime: hdr.ModTime}
	}
	return t, nil
}

// checkTarEnd checks that the stream ends where its last entry does: at off there is nothing more,
// or only the zero blocks that end a tar stream.
func checkTarEnd(ra io.ReaderAt, off, size int64) string {
	if off > size {
		return fmt.Sprintf("the last entry runs %d bytes past the end of the %d-byte stream", off-size, size)
	}
	var blk [512]byte
	n := min(int64(len(blk)), size-off)
	if _, err := ra.ReadAt(blk[:n], off); err != nil && err != io.EOF {
		return fmt.Sprintf("reading the end of the stream at byte %d: %v", off, err)
	}
	for _, c := range blk[:n] {
		if c != 0 {
			return fmt.Sprintf("the end-of-archive marker is not where the last entry ends (byte %d): entries overlap", off)
		}
	}
	return ""
}

// tarRefusal is why newTarFS refused a tar stream, with the offset of the entry's header in the
// stream, so the caller can name the volume that holds it.
type tarRefusal struct {
	off int64
	msg string
}

func (e *tarRefusal) Error() string { return e.msg }

// maxUstarSize is the largest size the 11 octal digits of a ustar header hold (8 GiB - 1): a larger
// entry carries its size in a PAX "size" record, and archive/tar then writes 0 in the header.
const maxUstarSize = 1<<33 - 1

// plainPAXRecords are the PAX records a plain file may carry: archive/tar writes no others. Each
// names or dates the entry; none changes where its data lies or how long it is, except "size",
// which is checked against the header (checkTarHeaders).
var plainPAXRecords = map[string]bool{
	"path": true, "linkpath": true, "size": true, "mtime": true, "atime": true, "ctime": true,
	"uid": true, "gid": true, "uname": true, "gname": true, "comment": true,
}

// plainTarEntry says, as a predicate ("is ...", "carries ..."), why hdr is not a plain entry whose
// data is its size in bytes, stored whole: a GNU sparse file (any GNU.sparse.* PAX record: archive/tar
// then serves a logical file larger than the bytes stored, which runs over the entries after it; type
// 'S' is refused by newTarFS before it asks), or a PAX record archive/tar does not write. It returns
// "" for a plain entry.
func plainTarEntry(hdr *tar.Header) string {
	keys := make([]string, 0, len(hdr.PAXRecords))
	for k := range hdr.PAXRecords {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return fmt.Sprintf("is a GNU sparse file (PAX record %s): its logical size is not the bytes stored", k)
		}
	}
	for _, k := range keys {
		if !plainPAXRecords[k] {
			return fmt.Sprintf("carries PAX record %q, which archive/tar never writes for a plain file", k)
		}
	}
	return ""
}

// blockEnd rounds n up to the 512-byte tar block.
func blockEnd(n int64) int64 { return n + (512-n%512)%512 }

// parseTarNumber reads a numeric field of a tar header: octal, or GNU base-256.
func parseTarNumber(b []byte) (int64, bool) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		if b[0] != 0x80 || len(b) < 9 {
			return 0, false // negative, or too large for an int64
		}
		var n uint64
		for _, c := range b[len(b)-8:] {
			n = n<<8 | uint64(c)
		}
		for _, c := range b[1 : len(b)-8] {
			if c != 0 {
				return 0, false
			}
		}
		if n > 1<<63-1 {
			return 0, false
		}
		return int64(n), true
	}
	s := strings.Trim(string(b), " \x00")
	if s == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(s, 8, 64)
	return n, err == nil && n >= 0
}

// checkTarHeaders checks, on the raw blocks, that the headers of the entry whose data starts at off
// lie exactly from from (where the data of the entry before it ends, rounded to a block) to off: at
// most one PAX header ('x'), one GNU long name ('L') and one long link name ('K'), each skipping its
// own data, then the entry's own header just before off, whose size field agrees with hdr.Size. So
// the bytes the entry's size covers are the bytes stored for it, and no entry's data overlaps a
// header or the data of another entry: what archive/tar reads and what tarFS serves are the same.
func checkTarHeaders(ra io.ReaderAt, from, off int64, hdr *tar.Header) string {
	var blk [512]byte
	seen := map[byte]bool{}
	for pos := from; ; {
		if pos > off-512 {
			return fmt.Sprintf("its header is not where the entry before it ends (byte %d): entries overlap", from)
		}
		if _, err := ra.ReadAt(blk[:], pos); err != nil {
			return fmt.Sprintf("reading its header at byte %d: %v", pos, err)
		}
		size, ok := parseTarNumber(blk[124:136])
		if !ok {
			return fmt.Sprintf("the size field of its header at byte %d does not parse", pos)
		}
		if pos == off-512 {
			pax, hasPAX := hdr.PAXRecords["size"]
			switch {
			case hdr.Typeflag == tar.TypeDir && size != 0:
				return fmt.Sprintf("a directory with %d bytes of data", size)
			case hdr.Typeflag == tar.TypeDir:
			case size == hdr.Size:
			case hasPAX && size == 0 && hdr.Size > maxUstarSize:
				// archive/tar's own way to store 8 GiB or more: the size in PAX, 0 in the header.
			case hasPAX:
				return fmt.Sprintf("its PAX size record says %s bytes, its header %d: the size is given twice, differently", pax, size)
			default:
				return fmt.Sprintf("its header says %d bytes, the tar reader %d", size, hdr.Size)
			}
			return ""
		}
		flag := blk[156]
		switch flag {
		case tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		default:
			return fmt.Sprintf("a header of type %q at byte %d, between the entry before it and its own: entries overlap", flag, pos)
		}
		if seen[flag] {
			return fmt.Sprintf("two headers of type %q: only the last would count", flag)
		}
		seen[flag] = true
		if size > off-512-pos {
			return fmt.Sprintf("its %q header at byte %d declares %d bytes, past its own header", flag, pos, size)
		}
		pos += 512 + blockEnd(size)
	}
}

func (t *tarFS) Open(name string) (fs.File, error) {
	e, ok := t.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &tarFile{SectionReader: io.NewSectionReader(t.ra, e.offset, e.size), name: name, e: e}, nil
}

// tarFile is an open file of a tarFS, and its own fs.FileInfo (Size is the SectionReader's).
type tarFile struct {
	*io.SectionReader
	name string
	e    tarEntry
}

func (f *tarFile) Stat() (fs.FileInfo, error) { return f, nil }
func (f *tarFile) Close() error               { return nil }
func (f *tarFile) Name() string               { return path.Base(f.name) }
func (f *tarFile) Mode() fs.FileMode          { return 0o444 }
func (f *tarFile) ModTime() time.Time         { return f.e.mtime }
func (f *tarFile) IsDir() bool                { return false }
func (f *tarFile) Sys() any                   { return nil }

// countingReader tracks the position in the tar stream so entry offsets are known: archive/tar reads
// whole 512-byte blocks with no read-ahead and skips entry data with Seek, so after Next the position
// is the offset of the entry's data, and indexing reads only the headers.
type countingReader struct {
	r *io.SectionReader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Seek(offset int64, whence int) (int64, error) {
	n, err := c.r.Seek(offset, whence)
	if err == nil {
		c.n = n
	}
	return n, err
}

// indexStart returns where index.json's entry starts in the stream: after the end of every other
// entry, which it must follow (airlock writes it last). Sign rewrites the stream from there.
func (t *tarFS) indexStart() (int64, error) {
	idx, ok := t.files[ocispec.ImageIndexFile]
	if !ok {
		return 0, errors.New("no index.json")
	}
	end := int64(0)
	for name, e := range t.files {
		if name != ocispec.ImageIndexFile {
			end = max(end, (e.offset+e.size+511)/512*512)
		}
	}
	if idx.offset < end+512 { // its header, at least, lies between the end of the others and its data
		return 0, fmt.Errorf("index.json is not the tar stream's last entry: not an archive airlock wrote; %s", damaged)
	}
	return end, nil
}
