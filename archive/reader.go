package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"

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
	checked sync.Map // digest.Digest -> true
}

// markChecked records that the blobs ds were hashed and matched their names.
func (r *Reader) markChecked(ds []digest.Digest) {
	for _, d := range ds {
		r.checked.Store(d, true)
	}
}

func (r *Reader) isChecked(d digest.Digest) bool {
	_, ok := r.checked.Load(d)
	return ok
}

// Open opens the archive at p: a layout directory, NAME.tar, or NAME.tar.000 (the first volume). Tar
// volumes are checked against their list NAME.tar.sha256 (names, sizes and order; their sums too when
// save wrote them with --volume-sums) before anything in them is served: their tar headers are
// indexed first, by a reader hardened against hostile input (tarfs.go), then read in place; the
// same read hashes each blob against its digest, so what is pushed later is not hashed again.
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

func open(ctx context.Context, p string, hashAll bool) (_ *Reader, err error) {
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
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
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
		tfs, err := r.openVolumes(ctx, base, vols, hashAll)
		if err != nil {
			return nil, err
		}
		r.fsys = tfs
	}
	if fi, err := fs.Stat(r.fsys, ocispec.ImageIndexFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	} else if err == nil && fi.Size() > maxIndexSize {
		return nil, fmt.Errorf("%s: index.json is %d bytes, over the %d-byte limit: refused; the archive is damaged or was altered", p, fi.Size(), maxIndexSize)
	}
	b, err := readLimited(r.fsys, ocispec.ImageIndexFile, maxIndexSize)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no index.json: not an OCI layout, or an interrupted save; run save again", p)
		}
		return nil, err
	}
	if err := json.Unmarshal(b, &r.Index); err != nil {
		return nil, fmt.Errorf("%s: index.json: %w", p, err)
	}
	return r, nil
}

// openVolumes opens the volumes of base and checks them against their list before anything in them
// is served: the tar stream is read once, each blob hashed against its name and, when the list has
// sums, each volume against the list (hashVolumesAndBlobs), so the blobs found right are not hashed again
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
		ras[i] = readerAtSize{f, vols[i].Size}
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

// Fetch opens the blob desc. The returned reader checks the size and digest as it is read and fails
// at the end when they do not match.
func (r *Reader) Fetch(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("invalid digest %q: %w", desc.Digest, err)
	}
	f, err := r.fsys.Open(blobName(desc.Digest))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: blob %s is missing from the archive", r.Path, desc.Digest)
		}
		return nil, err
	}
	if r.isChecked(desc.Digest) {
		return &verifyingReader{f: f, desc: desc}, nil // hashed whole already: its size is checked
	}
	return &verifyingReader{f: f, desc: desc, v: desc.Digest.Verifier(), verified: func() { r.markChecked([]digest.Digest{desc.Digest}) }}, nil
}

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
	if err := json.Unmarshal(cb, &c); err != nil {
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
	v    digest.Verifier // nil for a blob this Reader already hashed whole: only its size is checked
	n    int64
	done bool
	// verified is called once the whole blob was read and matched its digest.
	verified func()
}

// Read hashes what it reads (unless v is nil). When the blob is complete it checks the digest before handing out the
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
	if r.v != nil {
		r.v.Write(p[:n])
	}
	if r.n == r.desc.Size {
		r.done = true
		if r.v != nil && !r.v.Verified() {
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

// Exists reports whether the archive holds the blob desc (its size is checked; its digest when read).
func (r *Reader) Exists(_ context.Context, desc ocispec.Descriptor) (bool, error) {
	if err := desc.Digest.Validate(); err != nil {
		return false, fmt.Errorf("invalid digest %q: %w", desc.Digest, err)
	}
	fi, err := fs.Stat(r.fsys, blobName(desc.Digest))
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
