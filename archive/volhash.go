package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// hashVolumesAndBlobs reads the tar stream of the volumes and hashes each blob entry against the
// digest that names it and, when the volume list carries sums, each volume against it too (the early
// check for a bad copy, as checkVolumes does it). Without sums the blobs are cut into hashWorkers()
// runs of about equal bytes, each read in order by a goroutine of its own, so that a stream in the
// page cache is hashed on every core as a directory is; with sums the stream is read once, in order.
// It returns the first damaged volume, in order, as checkVolumes words it, or else a blob that does
// not match its digest, named with the volumes that hold it; blobs found right are returned for
// Reader.markChecked.
func hashVolumesAndBlobs(ctx context.Context, ra *multiReaderAt, vols []Volume, t *tarFS) ([]digest.Digest, error) {
	spans := blobSpans(t)
	runs := [][]blobSpan{spans}
	if !hasSums(vols) {
		runs = splitSpans(spans, hashWorkers())
	}
	sums := make([]hash.Hash, len(ra.parts))
	for i := range sums {
		sums[i] = sha256.New()
	}
	hashers := make([]*blobHasher, len(runs))
	g, gctx := errgroup.WithContext(ctx)
	for k, run := range runs {
		h := &blobHasher{spans: run}
		hashers[k] = h
		from, to := int64(0), ra.size
		if !hasSums(vols) {
			// One byte past the last entry, so that an empty blob at the end is hashed too.
			from, to = run[0].off, min(run[len(run)-1].off+run[len(run)-1].size+1, ra.size)
		}
		g.Go(func() error {
			return readAhead(gctx, ra, from, to, max(2, 8/len(runs)), func(i int, off int64, b []byte) {
				if hasSums(vols) {
					sums[i].Write(b)
				}
				h.write(off, b)
			})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i, v := range vols {
		if got := hex.EncodeToString(sums[i].Sum(nil)); hasSums(vols) && got != v.SHA256 {
			return nil, checkErr("volume %s: sha256 %s, the volume list says %s: the copy is damaged or from another archive; copy it again", v.Name, got, v.SHA256)
		}
	}
	var ok, bad []digest.Digest
	for _, h := range hashers {
		ok, bad = append(ok, h.ok...), append(bad, h.bad...)
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

// splitSpans cuts spans (in stream order) into at most n runs of about equal bytes, each run
// contiguous in the stream; none when there are no spans.
func splitSpans(spans []blobSpan, n int) [][]blobSpan {
	var total int64
	for _, s := range spans {
		total += s.size
	}
	var runs [][]blobSpan
	start, acc := 0, int64(0)
	for i, s := range spans {
		acc += s.size
		if (len(runs) < n-1 && acc*int64(n) >= total*int64(len(runs)+1)) || i == len(spans)-1 {
			runs = append(runs, spans[start:i+1])
			start = i + 1
		}
	}
	return runs
}

// readAhead reads bytes [from, to) of ra in order, in chunks of hashBufferSize, on a goroutine of its
// own, so that the disk reads up to depth chunks ahead while use hashes the last one. A chunk never
// spans two volumes: use is given its volume i and its offset in the stream.
func readAhead(ctx context.Context, ra *multiReaderAt, from, to int64, depth int, use func(i int, off int64, b []byte)) error {
	type chunk struct {
		i   int
		off int64
		b   []byte
	}
	chunks, free := make(chan chunk, depth), make(chan []byte, depth)
	for range depth {
		free <- make([]byte, hashBufferSize)
	}
	var err error // the reader's, read once chunks is closed
	go func() {
		defer close(chunks)
		for i, part := range ra.parts {
			start := ra.starts[i]
			for local, end := max(from-start, 0), min(part.size, to-start); local < end; {
				if err = ctx.Err(); err != nil {
					return
				}
				b := <-free
				n := min(int64(len(b)), end-local)
				if _, err = part.r.ReadAt(b[:n], local); err != nil {
					return
				}
				chunks <- chunk{i, start + local, b[:n]}
				local += n
			}
		}
	}()
	for c := range chunks {
		use(c.i, c.off, c.b)
		free <- c.b[:cap(c.b)]
	}
	return err
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

type blobSpan struct {
	d         digest.Digest
	off, size int64
}

// blobHasher hashes each blob entry of a tar stream as the stream's bytes are written to it, in order,
// and sorts the blobs into those that match their names and those that do not.
type blobHasher struct {
	spans   []blobSpan // in stream order
	j       int        // the span being hashed, or next
	h       hash.Hash  // of span j, once its first byte went by
	ok, bad []digest.Digest
}

// blobSpans lists the blob entries of t in stream order.
func blobSpans(t *tarFS) []blobSpan {
	var spans []blobSpan
	for name, e := range t.files {
		if d, ok := blobDigest(name); ok {
			spans = append(spans, blobSpan{d, e.offset, e.size})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].off < spans[j].off })
	return spans
}

// write hashes p, the bytes of the stream from offset off on.
func (b *blobHasher) write(off int64, p []byte) {
	for len(p) > 0 && b.j < len(b.spans) {
		s := b.spans[b.j]
		if off > s.off && b.h == nil {
			// The entry starts inside the one before it: newTarFS refuses such a stream, so this
			// is never reached; it is counted as bad rather than hashed from the wrong bytes.
			b.bad = append(b.bad, s.d)
			b.j++
			continue
		}
		if off < s.off { // a header or padding: skip to the entry
			k := min(int64(len(p)), s.off-off)
			p, off = p[k:], off+k
			continue
		}
		if b.h == nil {
			b.h = s.d.Algorithm().Hash()
		}
		n := min(int64(len(p)), s.off+s.size-off)
		b.h.Write(p[:n])
		p, off = p[n:], off+n
		if off == s.off+s.size {
			if digest.NewDigest(s.d.Algorithm(), b.h) == s.d {
				b.ok = append(b.ok, s.d)
			} else {
				b.bad = append(b.bad, s.d)
			}
			b.h = nil
			b.j++
		}
	}
}

// blobDigest is the digest that names blobs/ALG/ENCODED (blobName's inverse); ok only when it is
// valid.
func blobDigest(name string) (d digest.Digest, ok bool) {
	rest, isBlob := strings.CutPrefix(name, ocispec.ImageBlobsDir+"/")
	alg, enc, found := strings.Cut(rest, "/")
	d = digest.NewDigestFromEncoded(digest.Algorithm(alg), enc)
	return d, isBlob && found && d.Validate() == nil
}
