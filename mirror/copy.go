package mirror

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"

	"airlock.dev/airlock/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/registry/remote"
)

// blobTarget receives content. It must check each blob against its digest as it streams in.
type blobTarget interface {
	Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error)
	Push(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error
}

// ResumableTarget keeps partly received blobs and asks only for the rest (archive.Layout does).
type ResumableTarget interface {
	PushResumable(ctx context.Context, desc ocispec.Descriptor, open func(offset int64) (io.ReadCloser, error)) (int64, error)
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
	Copied  int `json:"copied"`
	Skipped int `json:"skipped"`
	// Resumed counts blobs finished from a partial file an interrupted run left.
	Resumed int `json:"resumed"`
	// BytesFetched counts the bytes actually read from the source (less than BytesCopied on resume).
	BytesFetched int64 `json:"bytesFetched"`
	BytesCopied  int64 `json:"bytesCopied"`
	BytesSkipped int64 `json:"bytesSkipped"`
}

// CopyBlobs copies blobs to dst, each digest once, concurrency at a time; blobs dst has are skipped.
func CopyBlobs(ctx context.Context, dst blobTarget, blobs []Blob, concurrency int, progress Progress, retry registry.Retry) (CopyStats, error) {
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
	var copied, bytes, fetched, resumedN atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for _, b := range todo {
		g.Go(func() error {
			anyResumed := false
			err := retry.Do(gctx, fmt.Sprintf("blob %s of %s", b.Desc.Digest, b.Repository), func(ctx context.Context) error {
				actx, kick, stop := registry.WithWatchdog(ctx, retry.OrDefault().StallTimeout)
				defer stop()
				n, resumed, err := copyBlob(actx, dst, b, progress, kick)
				fetched.Add(n)
				anyResumed = anyResumed || resumed
				return registry.StallErr(actx, err)
			})
			if err != nil {
				return err
			}
			if anyResumed {
				resumedN.Add(1)
			}
			copied.Add(1)
			bytes.Add(b.Desc.Size)
			return nil
		})
	}
	err := g.Wait()
	stats.Copied, stats.BytesCopied = int(copied.Load()), bytes.Load()
	stats.BytesFetched, stats.Resumed = fetched.Load(), int(resumedN.Load())
	return stats, err
}

// copyBlob copies one blob, resuming a partial one where the target keeps them and the source can
// seek (an HTTP Range request). It returns the bytes read from the source.
func copyBlob(ctx context.Context, dst blobTarget, b Blob, progress Progress, kick func()) (int64, bool, error) {
	wrap := func(r io.Reader) io.Reader {
		r = registry.KickReader(r, kick)
		if progress != nil {
			return &progressReader{r: r, p: progress}
		}
		return r
	}
	if rt, ok := dst.(ResumableTarget); ok {
		resumed := false
		n, err := rt.PushResumable(ctx, b.Desc, func(offset int64) (io.ReadCloser, error) {
			var rc io.ReadCloser
			var err error
			if repo, ok := b.Source.(*remote.Repository); ok && offset > 0 {
				rc, err = registry.FetchFrom(ctx, repo, b.Desc, offset)
			} else {
				rc, err = b.Source.Fetch(ctx, b.Desc)
				if err == nil && offset > 0 {
					_, err = io.CopyN(io.Discard, rc, offset)
					if err != nil {
						rc.Close()
					}
				}
			}
			if err != nil {
				return nil, fmt.Errorf("fetch blob %s from %s: %w", b.Desc.Digest, b.Repository, err)
			}
			if offset > 0 {
				resumed = true
				if progress != nil {
					progress.Add(offset)
				}
			}
			return struct {
				io.Reader
				io.Closer
			}{wrap(rc), rc}, nil
		})
		if err != nil {
			return n, resumed, fmt.Errorf("copy blob %s from %s: %w", b.Desc.Digest, b.Repository, err)
		}
		return n, resumed, nil
	}
	rc, err := b.Source.Fetch(ctx, b.Desc)
	if err != nil {
		return 0, false, fmt.Errorf("fetch blob %s from %s: %w", b.Desc.Digest, b.Repository, err)
	}
	defer rc.Close()
	cr := &countReader{r: wrap(rc)}
	if err := dst.Push(ctx, b.Desc, cr); err != nil {
		return cr.n, false, fmt.Errorf("copy blob %s from %s: %w", b.Desc.Digest, b.Repository, err)
	}
	return cr.n, false, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
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
