package archive

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync"

	"github.com/opencontainers/go-digest"
)

type hashJob struct {
	d    digest.Digest
	size int64
	what string
}

// hashWorkers is how many blobs are hashed at once: enough to keep a few cores and the disk busy.
func hashWorkers() int { return min(max(runtime.GOMAXPROCS(0), 2), 8) }

// hashInParallel hashes each job's blob, a few at a time, and stops at the first that fails.
func hashInParallel(ctx context.Context, r *Reader, jobs []hashJob, owners func(digest.Digest) []string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	ch := make(chan hashJob)
	for range min(hashWorkers(), max(len(jobs), 1)) {
		wg.Go(func() {
			buf := make([]byte, hashBufferSize)
			var h hash.Hash
			for j := range ch {
				if ctx.Err() != nil {
					continue
				}
				if err := hashOne(ctx, r, j, buf, &h, owners); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					cancel()
				}
			}
		})
	}
feed:
	for _, j := range jobs {
		select {
		case ch <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(ch)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// hashBufferSize is the read size when hashing blobs: large reads, few system calls.
const hashBufferSize = 4 << 20

// hashOne reads the blob j.d once, into buf, and hashes it; h is reused across calls for sha256.
func hashOne(ctx context.Context, r *Reader, j hashJob, buf []byte, h *hash.Hash, owners func(digest.Digest) []string) error {
	f, err := r.fsys.Open(blobName(j.d))
	if err != nil {
		return fileErr(r, j.d, j.what, owners(j.d), err)
	}
	defer f.Close()
	var hh hash.Hash
	if j.d.Algorithm() == digest.SHA256 {
		if *h == nil {
			*h = sha256.New()
		}
		hh = *h
		hh.Reset()
	} else {
		hh = j.d.Algorithm().Hash()
	}
	var n int64
	for {
		k, err := f.Read(buf)
		if k > 0 {
			n += int64(k)
			if n > j.size {
				return &CheckError{Msg: fmt.Sprintf("%s: blob %s (%s%s) holds more than the %d bytes its descriptor says: %s", r.Path, j.d, j.what, ownedBy(owners(j.d)), j.size, damaged), Digest: j.d, Images: owners(j.d)}
			}
			hh.Write(buf[:k])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: blob %s: %w", r.Path, j.d, err)
		}
		if err := ctx.Err(); err != nil {
			return nil // another blob failed first, or the run was stopped
		}
	}
	if n != j.size {
		return &CheckError{Msg: fmt.Sprintf("%s: blob %s (%s%s) is %d bytes, its descriptor says %d: %s", r.Path, j.d, j.what, ownedBy(owners(j.d)), n, j.size, damaged), Digest: j.d, Images: owners(j.d)}
	}
	if got := digest.NewDigest(j.d.Algorithm(), hh); got != j.d {
		return &CheckError{Msg: fmt.Sprintf("%s: blob %s does not hash to its name (its bytes hash to %s); it is the %s%s: %s", r.Path, j.d, got, j.what, ownedBy(owners(j.d)), damaged), Digest: j.d, Images: owners(j.d)}
	}
	return nil
}
