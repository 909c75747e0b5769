package archive

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
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
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(hashWorkers())
	for _, j := range jobs {
		if gctx.Err() != nil {
			break // another blob failed first, or the run was stopped
		}
		g.Go(func() error {
			buf := copyBuffer(j.size)
			defer buf.free()
			return hashOne(gctx, r, j, buf.b, owners)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// hashBufferSize is the read size when hashing whole volumes or the tar stream: large reads, few system
// calls.
const hashBufferSize = 4 << 20

// hashOne reads the blob j.d once, through buf, and hashes it.
func hashOne(ctx context.Context, r *Reader, j hashJob, buf []byte, owners func(digest.Digest) []string) error {
	f, err := r.fsys.Open(blobName(j.d))
	if err != nil {
		return fileErr(r, j.d, j.what, owners(j.d), err)
	}
	defer f.Close()
	h := j.d.Algorithm().Hash()
	// One byte more than the descriptor says, to see a blob that holds more, and no further (max: a
	// size of MaxInt64 does not wrap around).
	n, err := io.CopyBuffer(h, io.LimitReader(ctxReader{ctx, f}, max(j.size, j.size+1)), buf)
	switch {
	case err != nil:
		return fmt.Errorf("%s: blob %s: %w", r.Path, j.d, err)
	case n > max(j.size, 0):
		return &CheckError{Msg: fmt.Sprintf("%s: blob %s (%s%s) holds more than the %d bytes its descriptor says: %s", r.Path, j.d, j.what, ownedBy(owners(j.d)), j.size, damaged), Digest: j.d, Images: owners(j.d)}
	case n != j.size:
		return &CheckError{Msg: fmt.Sprintf("%s: blob %s (%s%s) is %d bytes, its descriptor says %d: %s", r.Path, j.d, j.what, ownedBy(owners(j.d)), n, j.size, damaged), Digest: j.d, Images: owners(j.d)}
	}
	if got := digest.NewDigest(j.d.Algorithm(), h); got != j.d {
		return &CheckError{Msg: fmt.Sprintf("%s: blob %s does not hash to its name (its bytes hash to %s); it is the %s%s: %s", r.Path, j.d, got, j.what, ownedBy(owners(j.d)), damaged), Digest: j.d, Images: owners(j.d)}
	}
	return nil
}
