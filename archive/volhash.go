package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// hashChunk is a piece of the tar stream read once and hashed by both hashers of hashVolumesAndBlobs.
type hashChunk struct {
	off  int64
	b    []byte
	refs atomic.Int32
}

// hashVolumesAndBlobs reads the tar stream of the volumes once, in order, and hashes it twice at once,
// on two goroutines: each volume against the volume list (the early check for a bad copy, as
// checkVolumes does it) and each blob entry against the digest that names it. It returns the first
// damaged volume, in order, as checkVolumes words it, or else a blob that does not match its digest;
// blobs found right are returned for Reader.markChecked.
func hashVolumesAndBlobs(ctx context.Context, ra *multiReaderAt, vols []Volume, t *tarFS) ([]digest.Digest, error) {
	const depth = 4
	free := make(chan *hashChunk, depth)
	for range depth {
		free <- &hashChunk{b: make([]byte, hashBufferSize)}
	}
	volCh, blobCh := make(chan *hashChunk, depth), make(chan *hashChunk, depth)
	release := func(c *hashChunk) {
		if c.refs.Add(-1) == 0 {
			free <- c
		}
	}
	sums := make([]string, len(vols))
	var ok, bad []digest.Digest
	var wg sync.WaitGroup
	wg.Go(func() { hashVolumeChunks(volCh, ra, sums, release) })
	wg.Go(func() { ok, bad = hashBlobChunks(blobCh, t, release) })
	var rerr error
	for off := int64(0); off < ra.Size() && rerr == nil; {
		if rerr = ctx.Err(); rerr != nil {
			break
		}
		c := <-free
		n := min(int64(len(c.b)), ra.Size()-off)
		if _, err := ra.ReadAt(c.b[:n], off); err != nil {
			rerr = err
			free <- c
			break
		}
		c.off = off
		c.refs.Store(2)
		c.b = c.b[:n]
		volCh <- c
		blobCh <- c
		off += n
	}
	close(volCh)
	close(blobCh)
	wg.Wait()
	if rerr != nil {
		return nil, rerr
	}
	for i, v := range vols {
		if sums[i] != v.SHA256 {
			return nil, checkErr("volume %s: sha256 %s, the volume list says %s: the copy is damaged or from another archive; copy it again", v.Name, sums[i], v.SHA256)
		}
	}
	// The volumes match their list, yet a blob does not match its digest: the volumes were rewritten
	// and the list with them. Refused here, before anything is read from them.
	if len(bad) > 0 {
		sort.Slice(bad, func(i, j int) bool { return bad[i] < bad[j] })
		return nil, &CheckError{Msg: fmt.Sprintf("blob %s in the tar volumes does not hash to its name (%d such blob(s)); the volumes match NAME.tar.sha256, so they were rewritten after save and the list with them: %s", bad[0], len(bad), damaged), Digest: bad[0]}
	}
	return ok, nil
}

// hashVolumeChunks hashes the stream volume by volume into sums.
func hashVolumeChunks(ch <-chan *hashChunk, ra *multiReaderAt, sums []string, release func(*hashChunk)) {
	i, h := 0, sha256.New()
	for c := range ch {
		b, off := c.b, c.off
		for len(b) > 0 && i < len(ra.parts) {
			end := ra.starts[i] + ra.parts[i].size
			n := min(int64(len(b)), end-off)
			h.Write(b[:n])
			b, off = b[n:], off+n
			if off == end {
				sums[i] = hex.EncodeToString(h.Sum(nil))
				h.Reset()
				i++
			}
		}
		release(c)
	}
}

type blobSpan struct {
	d         digest.Digest
	off, size int64
}

// hashBlobChunks hashes each blob entry of t as its bytes go by and returns those that match their names.
func hashBlobChunks(ch <-chan *hashChunk, t *tarFS, release func(*hashChunk)) (ok, bad []digest.Digest) {
	var spans []blobSpan
	for name, e := range t.files {
		if d, ok := blobDigest(name); ok {
			spans = append(spans, blobSpan{d, e.offset, e.size})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].off < spans[j].off })
	var h hash.Hash
	j := 0
	for c := range ch {
		b, off := c.b, c.off
		for len(b) > 0 && j < len(spans) {
			s := spans[j]
			if off > s.off && h == nil {
				// The entry starts inside the one before it: newTarFS refuses such a stream, so this
				// is never reached; it is counted as bad rather than hashed from the wrong bytes.
				bad = append(bad, s.d)
				j++
				continue
			}
			if off < s.off { // a header or padding: skip to the entry
				k := min(int64(len(b)), s.off-off)
				b, off = b[k:], off+k
				continue
			}
			if h == nil {
				h = s.d.Algorithm().Hash()
			}
			n := min(int64(len(b)), s.off+s.size-off)
			h.Write(b[:n])
			b, off = b[n:], off+n
			if off == s.off+s.size {
				if digest.NewDigest(s.d.Algorithm(), h) == s.d {
					ok = append(ok, s.d)
				} else {
					bad = append(bad, s.d)
				}
				h = nil
				j++
			}
		}
		release(c)
	}
	return ok, bad
}

// blobDigest is the digest that names blobs/ALG/ENCODED (blobName's inverse); ok only when it is
// valid.
func blobDigest(name string) (d digest.Digest, ok bool) {
	rest, isBlob := strings.CutPrefix(name, ocispec.ImageBlobsDir+"/")
	alg, enc, found := strings.Cut(rest, "/")
	d = digest.NewDigestFromEncoded(digest.Algorithm(alg), enc)
	return d, isBlob && found && d.Validate() == nil
}
