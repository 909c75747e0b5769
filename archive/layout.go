package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"airlock.dev/airlock/internal/atomicfile"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// ingestDir holds partly written blobs while they stream in; it is removed when the layout is closed.
const ingestDir = ".airlock-ingest"

// copyBufferSize is the buffer used to stream blobs to disk.
const copyBufferSize = 1 << 20

// ErrNotLayout reports a directory that exists, is not empty and is not an OCI image layout.
var ErrNotLayout = errors.New("not an OCI image layout")

// Layout writes an OCI image layout directory. It is safe for concurrent use.
type Layout struct {
	root string

	mu      sync.Mutex
	entries map[string]ocispec.Descriptor // key: digest + "\x00" + ref name
	writing sync.Map                      // digest.Digest -> *sync.Mutex: one writer per blob, the .partial file is shared

	// verified records the blobs hashed on this host and what their files looked like then.
	verified *verifiedState
	// repaired lists blobs found on disk that did not hash to their names, removed to be fetched again.
	repaired []digest.Digest
}

// lock serialises writers of the blob d.
func (l *Layout) lock(d digest.Digest) func() {
	m, _ := l.writing.LoadOrStore(d, &sync.Mutex{})
	m.(*sync.Mutex).Lock()
	return m.(*sync.Mutex).Unlock
}

// CreateLayout opens dir for writing, creating it when missing. A directory that already holds an OCI
// layout (an earlier, possibly interrupted run) is reused: blobs in it are kept when they are right
// (see Exists), and its index.json is replaced when Commit is called. A non-empty directory that is
// not a layout is refused.
func CreateLayout(dir string) (*Layout, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create archive directory: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read archive directory: %w", err)
	}
	if len(ents) > 0 {
		if _, err := os.Stat(filepath.Join(dir, ocispec.ImageLayoutFile)); err != nil {
			return nil, fmt.Errorf("%s: %w and not empty; name a new or empty directory", dir, ErrNotLayout)
		}
	}
	l := &Layout{root: dir, entries: map[string]ocispec.Descriptor{}, verified: loadVerified(dir)}
	layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err := atomicfile.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), layout, 0o644); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, ingestDir), 0o755); err != nil {
		return nil, err
	}
	return l, nil
}

// Root returns the layout directory.
func (l *Layout) Root() string { return l.root }

// BlobPath returns the path of the blob with digest d inside the layout.
func BlobPath(root string, d digest.Digest) string {
	return filepath.Join(root, ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

// Exists reports whether a complete, right blob for desc is stored. A blob is never trusted for being
// there: one this host hashed (when it stored it, or since) and whose file has not changed since (the
// same size, times, device and inode; see verifiedState) is right; any other is hashed now. A file
// that does not hash to its name is removed and reported as missing, so it is fetched again, and
// listed by Repaired. A symbolic link or other non-regular file is not a blob: it is replaced.
func (l *Layout) Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	if err := desc.Digest.Validate(); err != nil {
		return false, fmt.Errorf("invalid digest %q: %w", desc.Digest, err)
	}
	p := BlobPath(l.root, desc.Digest)
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	case !fi.Mode().IsRegular() || fi.Size() != desc.Size:
		return false, nil
	case l.verified.trusted(desc.Digest, fi):
		return true, nil
	}
	unlock := l.lock(desc.Digest)
	defer unlock()
	return l.rehash(ctx, desc)
}

// rehash hashes the stored blob desc; the caller holds its lock. A right blob is recorded as verified;
// a wrong one is removed.
func (l *Layout) rehash(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	p := BlobPath(l.root, desc.Digest)
	f, err := openRegular(p, "blob "+desc.Digest.String(), "")
	var ce *CheckError
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.As(err, &ce):
		return false, nil // gone, or not a blob airlock wrote: it is replaced
	case err != nil:
		return false, err
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return false, err
	}
	if before.Size() != desc.Size {
		return false, nil
	}
	v := desc.Digest.Verifier()
	buf := copyBuffer(desc.Size)
	defer buf.free()
	n, err := io.CopyBuffer(v, ctxReader{ctx, struct{ io.Reader }{f}}, buf.b)
	if err != nil {
		return false, fmt.Errorf("check stored blob %s: %w", desc.Digest, err)
	}
	if n != desc.Size || !v.Verified() {
		l.verified.forget(desc.Digest)
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("stored blob %s does not hash to its name and cannot be removed: %w", desc.Digest, err)
		}
		l.mu.Lock()
		l.repaired = append(l.repaired, desc.Digest)
		l.mu.Unlock()
		return false, nil
	}
	if after, err := f.Stat(); err == nil && sameStamp(before, after) {
		l.verified.record(desc.Digest, after)
	}
	return true, nil
}

func sameStamp(a, b fs.FileInfo) bool {
	sa, oka := stampOf(a)
	sb, okb := stampOf(b)
	return oka && okb && sa == sb
}

// Repaired lists the stored blobs that did not hash to their names: each was removed and, when the
// save needed it, fetched again.
func (l *Layout) Repaired() []digest.Digest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]digest.Digest(nil), l.repaired...)
}

// Discard forgets what this host recorded about the layout's blobs: call it when the directory is
// removed (the staging layout of a tar).
func (l *Layout) Discard() { l.verified.remove() }

// Push stores the content read from r as the blob desc: it is PushResumable with r as the only
// source, so a .partial file an interrupted run left is resumed by skipping that much of r.
func (l *Layout) Push(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	_, err := l.PushResumable(ctx, desc, onlySource(r))
	return err
}

// onlySource makes r the one source of a PushResumable: resuming at offset skips that much of r.
func onlySource(r io.Reader) func(offset int64) (io.ReadCloser, error) {
	return func(offset int64) (io.ReadCloser, error) {
		if _, err := io.CopyN(io.Discard, r, offset); err != nil {
			return nil, err
		}
		return io.NopCloser(r), nil
	}
}

// PushResumable stores the blob desc like Push, keeping what arrived of it when interrupted: the bytes
// of an earlier, interrupted attempt (kept as a .partial file) are hashed again from disk and open is
// asked only for the rest, from that offset. It returns how many bytes open's reader delivered.
func (l *Layout) PushResumable(_ context.Context, desc ocispec.Descriptor, open func(offset int64) (io.ReadCloser, error)) (int64, error) {
	if err := desc.Digest.Validate(); err != nil {
		return 0, fmt.Errorf("invalid digest %q: %w", desc.Digest, err)
	}
	unlock := l.lock(desc.Digest)
	defer unlock()
	partial := filepath.Join(l.root, ingestDir, desc.Digest.Encoded()+".partial")
	f, err := os.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 0, &LocalWriteError{Path: partial, Err: err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	have := fi.Size()
	if have > desc.Size {
		have = 0
	}
	v := desc.Digest.Verifier()
	buf := copyBuffer(desc.Size)
	defer buf.free()
	if have > 0 {
		if _, err := io.CopyBuffer(v, io.LimitReader(f, have), buf.b); err != nil {
			return 0, err
		}
	}
	if fi.Size() != have {
		if err := f.Truncate(have); err != nil {
			return 0, &LocalWriteError{Path: partial, Err: err}
		}
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return 0, err
	}
	var got int64
	if have < desc.Size {
		rc, err := open(have)
		if err != nil {
			return 0, err
		}
		got, err = io.CopyBuffer(io.MultiWriter(&localWriter{w: f, path: partial, left: desc.Size - have}, v), io.LimitReader(rc, desc.Size-have+1), buf.b)
		rc.Close()
		if err != nil {
			return got, err // keep the partial file: the next run resumes from here
		}
	}
	if have+got != desc.Size {
		os.Remove(partial)
		return got, &ShortBlobError{Digest: desc.Digest, Got: have + got, Size: desc.Size}
	}
	if !v.Verified() {
		os.Remove(partial)
		return got, &DigestMismatchError{Expected: desc.Digest}
	}
	if err := f.Close(); err != nil {
		return got, &LocalWriteError{Path: partial, Err: err}
	}
	dst := BlobPath(l.root, desc.Digest)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return got, &LocalWriteError{Path: filepath.Dir(dst), Err: err}
	}
	if err := os.Rename(partial, dst); err != nil {
		return got, &LocalWriteError{Path: dst, Err: err}
	}
	if fi, err := os.Lstat(dst); err == nil {
		l.verified.record(desc.Digest, fi) // hashed above, as it streamed in
	}
	return got, nil
}

// buffers recycles the copy buffers of blobs: saving many small images otherwise allocates (and
// zeroes) a megabyte per blob.
var buffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

type pooledBuffer struct {
	b    []byte
	pool *[]byte
}

// copyBuffer returns a buffer for copying a blob of size bytes: a small one for a small blob (one
// read more than its size, to see its end), a pooled megabyte otherwise.
func copyBuffer(size int64) pooledBuffer {
	if size >= 0 && size < copyBufferSize/2 {
		return pooledBuffer{b: make([]byte, max(size+1, 512))}
	}
	p := buffers.Get().(*[]byte)
	return pooledBuffer{b: *p, pool: p}
}

func (p pooledBuffer) free() {
	if p.pool != nil {
		buffers.Put(p.pool)
	}
}

// PushBytes stores b as the blob desc.
func (l *Layout) PushBytes(ctx context.Context, desc ocispec.Descriptor, b []byte) error {
	if ok, err := l.Exists(ctx, desc); err != nil || ok {
		return err
	}
	return l.Push(ctx, desc, bytes.NewReader(b))
}

// Fetch opens a stored blob.
func (l *Layout) Fetch(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return os.Open(BlobPath(l.root, desc.Digest))
}

// AddEntry lists desc in index.json. A descriptor may be listed several times under different names.
func (l *Layout) AddEntry(desc ocispec.Descriptor) {
	name := desc.Annotations[ocispec.AnnotationRefName]
	l.mu.Lock()
	l.entries[desc.Digest.String()+"\x00"+name] = desc
	l.mu.Unlock()
}

// Commit writes index.json (atomically, once) and removes the ingest directory.
func (l *Layout) Commit() error {
	l.mu.Lock()
	keys := make([]string, 0, len(l.entries))
	for k := range l.entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	idx := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: make([]ocispec.Descriptor, 0, len(keys)),
	}
	for _, k := range keys {
		idx.Manifests = append(idx.Manifests, l.entries[k])
	}
	l.mu.Unlock()
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(l.root, ocispec.ImageIndexFile), b, 0o644); err != nil {
		return err
	}
	l.verified.save(l.root)
	return os.RemoveAll(filepath.Join(l.root, ingestDir))
}

// ShortBlobError reports a source that ended a blob before its size: a transfer cut short without an
// error of its own. It is worth fetching again (Transient), unlike a blob that does not hash to its
// digest.
type ShortBlobError struct {
	Digest    digest.Digest
	Got, Size int64
}

func (e *ShortBlobError) Error() string {
	return fmt.Sprintf("blob %s: got %d bytes, the descriptor says %d; the source is damaged or changed, fetch again", e.Digest, e.Got, e.Size)
}

// Transient says that fetching again may succeed; registry.Retryable asks it.
func (e *ShortBlobError) Transient() bool { return true }

// DigestMismatchError reports content whose bytes do not hash to the digest that names them.
type DigestMismatchError struct {
	Expected digest.Digest
	Actual   digest.Digest // may be empty when not computed
}

func (e *DigestMismatchError) Error() string {
	if e.Actual != "" {
		return fmt.Sprintf("content named %s hashes to %s: it was damaged or altered in transit", e.Expected, e.Actual)
	}
	return fmt.Sprintf("content named %s does not hash to that digest: it was damaged or altered in transit", e.Expected)
}

// Is makes a DigestMismatchError match oras-go's content.ErrMismatchedDigest, so that code not
// importing archive (retries) can tell it from a transient failure.
func (e *DigestMismatchError) Is(target error) bool { return target == content.ErrMismatchedDigest }

// LocalBlobs reads blobs straight from a layout directory's blobs/ by digest, whether or not the
// layout is complete: what an earlier, possibly interrupted, save stored there.
func LocalBlobs(dir string) *Blobs { return &Blobs{root: dir} }

// Blobs reads the blobs of a layout directory.
type Blobs struct{ root string }

// Fetch opens the blob desc; callers check its digest.
func (b *Blobs) Fetch(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return os.Open(BlobPath(b.root, desc.Digest))
}

// Resolve is not supported: a blob store has no names.
func (b *Blobs) Resolve(context.Context, string) (ocispec.Descriptor, error) {
	return ocispec.Descriptor{}, fs.ErrNotExist
}
