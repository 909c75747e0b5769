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

// hashVolumesAndBlobs reads the tar stream of the volumes once, in order, and hashes each blob entry
// against the digest that names it and, when the volume list carries sums, each volume against it
// too (the early check for a bad copy, as checkVolumes does it), on two goroutines at once. It returns
// the first damaged volume, in order, as checkVolumes words it, or else a blob that does not match its
// digest, named with the volumes that hold it; blobs found right are returned for Reader.markChecked.
func hashVolumesAndBlobs(ctx context.Context, ra *multiReaderAt, vols []Volume, t *tarFS) ([]digest.Digest, error) {
	const depth = 4
	free := make(chan *hashChunk, depth)
	for range depth {
		free <- &hashChunk{b: make([]byte, hashBufferSize)}
	}
	volCh, blobCh := make(chan *hashChunk, depth), make(chan *hashChunk, depth)
	readers := int32(1)
	if hasSums(vols) {
		readers = 2
	}
	release := func(c *hashChunk) {
		if c.refs.Add(-1) == 0 {
			free <- c
		}
	}
	sums := make([]string, len(vols))
	var ok, bad []digest.Digest
	var wg sync.WaitGroup
	if hasSums(vols) {
		wg.Go(func() { hashVolumeChunks(volCh, ra, sums, release) })
	}
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
		c.refs.Store(readers)
		c.b = c.b[:n]
		if hasSums(vols) {
			volCh <- c
		}
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
		if hasSums(vols) && sums[i] != v.SHA256 {
			return nil, checkErr("volume %s: sha256 %s, the volume list says %s: the copy is damaged or from another archive; copy it again", v.Name, sums[i], v.SHA256)
		}
	}
	if len(bad) == 0 {
		return ok, nil
	}
	// A blob does not match its digest. Refused here, before anything is read from the volumes.
	sort.Slice(bad, func(i, j int) bool { return bad[i] < bad[j] })
	e := t.files[blobName(bad[0])]
	where := volumesHolding(ra, vols, e.offset, e.size)
	why := "a volume is damaged, out of order or from another archive, or the archive was altered; copy it again from the connected side"
	if hasSums(vols) {
		// The volumes match their list: they were rewritten and the list with them.
		why = "the volumes match NAME.tar.sha256, so they were rewritten after save and the list with them: " + damaged
	}
	return nil, &CheckError{Msg: fmt.Sprintf("blob %s in the tar volumes does not hash to its name (%d such blob(s)); it is in %s; %s", bad[0], len(bad), where, why), Digest: bad[0]}
}

// volumesHolding names the volumes that hold size bytes at offset off of the stream: "volume X", or
// "volumes X, Y and Z" (the first and last of them, when there are more than six).
func volumesHolding(ra *multiReaderAt, vols []Volume, off, size int64) string {
	at := func(o int64) int {
		return sort.Search(len(ra.starts), func(i int) bool { return ra.starts[i] > o }) - 1
	}
	first, last := at(off), at(off+max(size, 1)-1)
	if first < 0 || last >= len(vols) || first >= last {
		return "volume " + ra.volumeAt(vols, off)
	}
	if last-first >= 6 {
		return fmt.Sprintf("volumes %s to %s (%d volumes)", vols[first].Name, vols[last].Name, last-first+1)
	}
	names := make([]string, 0, last-first+1)
	for _, v := range vols[first:last] {
		names = append(names, v.Name)
	}
	return "volumes " + strings.Join(names, ", ") + " and " + vols[last].Name
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
