package archive

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Reader reads an archive in place: a layout directory, one tar, or a set of tar volumes.
type Reader struct {
	// Path is the archive as named by the user.
	Path string
	// Index is the archive's index.json.
	Index ocispec.Index
	// Volumes lists the tar volumes checked against the volume list; empty for a directory.
	Volumes []Volume

	fsys    fs.FS
	closers []io.Closer

	// checked records blobs this Reader already hashed whole and found right (HashBlobs,
	// VerifyContents, or a Fetch read to its end); Fetch then reads them without hashing them a
	// second time, checking only their size. Everything else Fetch serves is hashed as it streams,
	// from a directory and from tar volumes alike: the volume list proves nothing about a blob.
	checkedMu sync.Mutex
	checked   map[digest.Digest]bool
}

// markChecked records that the blobs ds were hashed and matched their names.
func (r *Reader) markChecked(ds []digest.Digest) {
	r.checkedMu.Lock()
	defer r.checkedMu.Unlock()
	if r.checked == nil {
		r.checked = map[digest.Digest]bool{}
	}
	for _, d := range ds {
		r.checked[d] = true
	}
}

func (r *Reader) isChecked(d digest.Digest) bool {
	r.checkedMu.Lock()
	defer r.checkedMu.Unlock()
	return r.checked[d]
}

// Open opens the archive at p: a layout directory, NAME.tar, or NAME.tar.000 (the first volume). Tar
// volumes are checked against NAME.tar.sha256 before anything in them is served (their tar headers
// are indexed first, by a reader hardened against hostile input), then read in place; the same read
// hashes each blob against its digest, so what is pushed later is not hashed a second time.
// The volume list is only an early check for accidental damage (a bad or incomplete copy): it
// travels with the volumes, so whoever rewrote them could rewrite it too. Blobs are hashed against
// their own digests when they are read (Fetch) or verified (VerifyContents, HashBlobs).
//
// A directory is read through os.Root: only regular files inside it are served; a symbolic link,
// FIFO or device in place of index.json or a blob is refused with a *CheckError that names it.
func Open(ctx context.Context, p string) (*Reader, error) { return open(ctx, p, true) }

// OpenIndex opens the archive at p as Open does, but reads tar volumes only as far as their list,
// their sizes and their tar headers: nothing is hashed whole up front, for a quick look at the index
// and the catalog (inspect). Every blob read later is still hashed as it streams (Fetch).
func OpenIndex(ctx context.Context, p string) (*Reader, error) { return open(ctx, p, false) }

func open(ctx context.Context, p string, hashAll bool) (*Reader, error) {
	fi, err := os.Lstat(p)
	if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		// A tar volume, or its list, is never followed: it could point at any file of this host.
		// A directory archive may be named through a link; what is inside it is not followed.
		switch {
		case strings.HasSuffix(p, ".tar"+ChecksumSuffix):
			return nil, refuseIrregular("volume list "+p, fi.Mode(), listFix)
		case p != BaseName(p) || strings.HasSuffix(p, ".tar"):
			return nil, refuseIrregular("volume "+p, fi.Mode(), volumeFix)
		}
		fi, err = os.Stat(p)
	}
	if err != nil {
		// NAME.tar may name a set of volumes NAME.tar.000, ... by its volume list.
		if _, lerr := os.Lstat(BaseName(p) + ChecksumSuffix); lerr != nil {
			return nil, fmt.Errorf("open archive: %w", err)
		}
	}
	r := &Reader{Path: p}
	if fi != nil && fi.IsDir() {
		d, err := openDirFS(p)
		if err != nil {
			return nil, fmt.Errorf("open archive: %w", err)
		}
		r.fsys = d
		r.closers = append(r.closers, d)
	} else {
		base := BaseName(p)
		vols, err := readVolumeList(base)
		if err != nil {
			return nil, err
		}
		if err := refuseIrregularVolumes(base, vols); err != nil {
			return nil, err
		}
		if err := checkVolumeFiles(base, vols); err != nil {
			return nil, err
		}
		tfs, err := r.openVolumes(ctx, base, vols, hashAll)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.fsys = tfs
	}
	if fi, err := fs.Stat(r.fsys, ocispec.ImageIndexFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.Close()
		return nil, err
	} else if err == nil && fi.Size() > maxIndexSize {
		r.Close()
		return nil, fmt.Errorf("%s: index.json is %d bytes, over the %d-byte limit: refused; the archive is damaged or was altered", p, fi.Size(), maxIndexSize)
	}
	b, err := readLimited(r.fsys, ocispec.ImageIndexFile, maxIndexSize)
	if err != nil {
		r.Close()
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no index.json: not an OCI layout, or an interrupted save; run save again", p)
		}
		return nil, err
	}
	if err := json.Unmarshal(b, &r.Index); err != nil {
		r.Close()
		return nil, fmt.Errorf("%s: index.json: %w", p, err)
	}
	return r, nil
}

// openVolumes opens the volumes of base and checks them against their list before anything in them
// is served: the tar stream is read once and hashed twice at once, each volume against the list and
// each blob against its name (hashVolumesAndBlobs), so the blobs found right are not hashed again
// when they are read (Fetch). A stream the tar reader refuses is hashed volume by volume first, so a
// bad copy is named as such.
func (r *Reader) openVolumes(ctx context.Context, base string, vols []Volume, hashAll bool) (*tarFS, error) {
	files, err := openVolumeFiles(base, vols)
	if err != nil {
		return nil, err
	}
	ras := make([]readerAtSize, len(files))
	for i, f := range files {
		r.closers = append(r.closers, f)
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		vols[i].Size = st.Size()
		ras[i] = readerAtSize{f, st.Size()}
	}
	r.Volumes = vols
	ra := newMultiReaderAt(ras)
	tfs, err := newTarFS(ra)
	if err != nil {
		if verr := checkVolumes(files, vols); verr != nil {
			return nil, verr
		}
		var tre *tarRefusal
		if errors.As(err, &tre) {
			// Refused: damaged or hostile. Named by the volume that holds the entry's header.
			return nil, &CheckError{Msg: fmt.Sprintf("%s: volume %s: %v", r.Path, ra.volumeAt(vols, tre.off), err)}
		}
		return nil, &CheckError{Msg: fmt.Sprintf("%s: %v", r.Path, err)}
	}
	if !hashAll {
		return tfs, nil
	}
	ok, err := hashVolumesAndBlobs(ctx, ra, vols, tfs)
	if err != nil {
		return nil, err
	}
	r.markChecked(ok)
	return tfs, nil
}

// Close releases the archive's files.
func (r *Reader) Close() error {
	var errs []error
	for _, c := range r.closers {
		errs = append(errs, c.Close())
	}
	r.closers = nil
	return errors.Join(errs...)
}

// FS returns the archive as a file system in OCI layout form, for oras-go's oci.NewFromFS and others.
func (r *Reader) FS() fs.FS { return r.fsys }

// Fetch opens the blob desc. The returned reader checks the size and digest as it is read and fails
// at the end when they do not match.
func (r *Reader) Fetch(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("invalid digest %q: %w", desc.Digest, err)
	}
	f, err := r.fsys.Open(path.Join(ocispec.ImageBlobsDir, desc.Digest.Algorithm().String(), desc.Digest.Encoded()))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: blob %s is missing from the archive", r.Path, desc.Digest)
		}
		return nil, err
	}
	if r.isChecked(desc.Digest) {
		return &sizedReader{f: f, desc: desc}, nil
	}
	return &verifyingReader{f: f, desc: desc, v: desc.Digest.Verifier(), verified: func() { r.markChecked([]digest.Digest{desc.Digest}) }}, nil
}

// sizedReader reads a blob already hashed whole by this Reader, checking only its size.
type sizedReader struct {
	f    fs.File
	desc ocispec.Descriptor
	n    int64
}

func (r *sizedReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	r.n += int64(n)
	if r.n > r.desc.Size || (err == io.EOF && r.n != r.desc.Size) {
		return n, &CheckError{Msg: fmt.Sprintf("blob %s: %d bytes or more, the descriptor says %d: the archive changed while it was read; %s", r.desc.Digest, r.n, r.desc.Size, damaged), Digest: r.desc.Digest}
	}
	return n, err
}

func (r *sizedReader) Close() error { return r.f.Close() }

// Catalog reads and checks the catalog of the archive.
func (r *Reader) Catalog(ctx context.Context) (*Catalog, ocispec.Descriptor, error) {
	var desc ocispec.Descriptor
	found := false
	for _, d := range r.Index.Manifests {
		if d.Annotations[ocispec.AnnotationRefName] == CatalogRefName {
			desc, found = d, true
		}
	}
	if !found {
		return nil, desc, fmt.Errorf("%s: %w", r.Path, ErrNoCatalog)
	}
	mb, err := ReadVerified(ctx, r, desc, maxCatalogSize)
	if err != nil {
		return nil, desc, fmt.Errorf("catalog manifest: %w", err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, desc, fmt.Errorf("catalog manifest %s: %w", desc.Digest, err)
	}
	if m.ArtifactType != CatalogArtifactType || len(m.Layers) == 0 || m.Layers[0].MediaType != CatalogMediaType {
		return nil, desc, fmt.Errorf("catalog manifest %s: not an airlock catalog (artifactType %q)", desc.Digest, m.ArtifactType)
	}
	cb, err := ReadVerified(ctx, r, m.Layers[0], maxCatalogSize)
	if err != nil {
		return nil, desc, fmt.Errorf("catalog: %w", err)
	}
	var c Catalog
	dec := json.NewDecoder(strings.NewReader(string(cb)))
	if err := dec.Decode(&c); err != nil {
		return nil, desc, fmt.Errorf("catalog %s: %w", m.Layers[0].Digest, err)
	}
	return &c, desc, nil
}

// ReadFile returns a catalog file (a key, the trusted root, the policy), checked against its digest.
func (r *Reader) ReadFile(ctx context.Context, f File) ([]byte, error) {
	return ReadVerified(ctx, r, ocispec.Descriptor{MediaType: f.MediaType, Digest: f.Digest, Size: f.Size}, maxCatalogSize)
}

type verifyingReader struct {
	f    fs.File
	desc ocispec.Descriptor
	v    digest.Verifier
	n    int64
	done bool
	// verified is called once the whole blob was read and matched its digest.
	verified func()
}

// Read hashes what it reads. When the blob is complete it checks the digest before handing out the
// last bytes: on a mismatch those bytes are withheld, so a consumer streaming the blob elsewhere (an
// upload to a registry) never sends the whole of it.
func (r *verifyingReader) Read(p []byte) (int, error) {
	if r.done {
		return 0, io.EOF
	}
	n, err := r.f.Read(p)
	if r.n+int64(n) > r.desc.Size {
		return 0, &CheckError{Msg: fmt.Sprintf("blob %s: more than the %d bytes its descriptor says: %s", r.desc.Digest, r.desc.Size, damaged), Digest: r.desc.Digest}
	}
	r.n += int64(n)
	r.v.Write(p[:n])
	if r.n == r.desc.Size {
		r.done = true
		if !r.v.Verified() {
			return 0, &DigestMismatchError{Expected: r.desc.Digest}
		}
		if r.verified != nil {
			r.verified()
			r.verified = nil
		}
		return n, nil
	}
	if err == io.EOF {
		return n, &CheckError{Msg: fmt.Sprintf("blob %s: %d bytes, the descriptor says %d: %s", r.desc.Digest, r.n, r.desc.Size, damaged), Digest: r.desc.Digest}
	}
	return n, err
}

func (r *verifyingReader) Close() error { return r.f.Close() }

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
// data is its size in bytes, stored whole: a GNU sparse file (type 'S', or any GNU.sparse.* PAX
// record: archive/tar then serves a logical file larger than the bytes stored, which runs over the
// entries after it), or a PAX record archive/tar does not write. It returns "" for a plain entry.
func plainTarEntry(hdr *tar.Header) string {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return "is a GNU sparse file (type 'S'): its logical size is not the bytes stored"
	}
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

type tarFile struct {
	*io.SectionReader
	name string
	e    tarEntry
}

func (f *tarFile) Stat() (fs.FileInfo, error) { return tarFileInfo{f.name, f.e}, nil }
func (f *tarFile) Close() error               { return nil }

type tarFileInfo struct {
	name string
	e    tarEntry
}

func (i tarFileInfo) Name() string       { return path.Base(i.name) }
func (i tarFileInfo) Size() int64        { return i.e.size }
func (i tarFileInfo) Mode() fs.FileMode  { return 0o444 }
func (i tarFileInfo) ModTime() time.Time { return i.e.mtime }
func (i tarFileInfo) IsDir() bool        { return false }
func (i tarFileInfo) Sys() any           { return nil }

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

// Exists reports whether the archive holds the blob desc (its size is checked; its digest when read).
func (r *Reader) Exists(_ context.Context, desc ocispec.Descriptor) (bool, error) {
	if err := desc.Digest.Validate(); err != nil {
		return false, fmt.Errorf("invalid digest %q: %w", desc.Digest, err)
	}
	fi, err := fs.Stat(r.fsys, path.Join(ocispec.ImageBlobsDir, desc.Digest.Algorithm().String(), desc.Digest.Encoded()))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return fi.Size() == desc.Size, nil
}

// Resolve finds a manifest listed in index.json by its ref name or digest.
func (r *Reader) Resolve(_ context.Context, reference string) (ocispec.Descriptor, error) {
	if reference == "" {
		// An empty reference names nothing: not the first entry without a ref name.
		return ocispec.Descriptor{}, fmt.Errorf("%s: an empty reference is not listed in index.json: %w", r.Path, fs.ErrNotExist)
	}
	for _, d := range r.Index.Manifests {
		if d.Annotations[ocispec.AnnotationRefName] == reference || d.Digest.String() == reference {
			return d, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("%s: %q is not listed in index.json: %w", r.Path, reference, fs.ErrNotExist)
}
