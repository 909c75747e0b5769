package mirror

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Target receives content. It must check each blob against its digest as it streams in.
type Target interface {
	Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error)
	Push(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error
}

// Progress hears about bytes as they move. Implementations must be safe for concurrent use.
type Progress interface {
	// Start announces the total number of bytes to move.
	Start(total int64)
	// Add reports n more bytes moved.
	Add(n int64)
	// Finish ends the display.
	Finish()
}

// Blob is a blob to copy and the repository it comes from.
type Blob struct {
	Desc   ocispec.Descriptor
	Source Source
	// Repository names the source repository, for messages.
	Repository string
}

// CopyStats counts what a copy did.
type CopyStats struct {
	Copied       int   `json:"copied"`
	Skipped      int   `json:"skipped"`
	BytesCopied  int64 `json:"bytesCopied"`
	BytesSkipped int64 `json:"bytesSkipped"`
}

// CopyBlobs copies blobs to dst, each digest once, concurrency at a time; blobs dst has are skipped.
func CopyBlobs(ctx context.Context, dst Target, blobs []Blob, concurrency int, progress Progress) (CopyStats, error) {
	var todo []Blob
	var stats CopyStats
	seen := map[digest.Digest]bool{}
	var total int64
	for _, b := range blobs {
		if seen[b.Desc.Digest] {
			continue
		}
		seen[b.Desc.Digest] = true
		ok, err := dst.Exists(ctx, b.Desc)
		if err != nil {
			return stats, fmt.Errorf("check blob %s: %w", b.Desc.Digest, err)
		}
		if ok {
			stats.Skipped++
			stats.BytesSkipped += b.Desc.Size
			continue
		}
		todo = append(todo, b)
		total += b.Desc.Size
	}
	if progress != nil {
		progress.Start(total)
		defer progress.Finish()
	}
	if concurrency < 1 {
		concurrency = 1
	}
	var copied, bytes atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for _, b := range todo {
		g.Go(func() error {
			rc, err := b.Source.Fetch(gctx, b.Desc)
			if err != nil {
				return fmt.Errorf("fetch blob %s from %s: %w", b.Desc.Digest, b.Repository, err)
			}
			defer rc.Close()
			var r io.Reader = rc
			if progress != nil {
				r = &progressReader{r: rc, p: progress}
			}
			if err := dst.Push(gctx, b.Desc, r); err != nil {
				return fmt.Errorf("copy blob %s from %s: %w", b.Desc.Digest, b.Repository, err)
			}
			copied.Add(1)
			bytes.Add(b.Desc.Size)
			return nil
		})
	}
	err := g.Wait()
	stats.Copied, stats.BytesCopied = int(copied.Load()), bytes.Load()
	return stats, err
}

type progressReader struct {
	r io.Reader
	p Progress
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.p.Add(int64(n))
	return n, err
}
