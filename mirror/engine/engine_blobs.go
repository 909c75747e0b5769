package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror/plan"
)

// blobTask is one blob to put into one store.
type blobTask struct {
	store Store
	desc  ocispec.Descriptor
	src   plan.Source
	// from names the source repository, for messages.
	from string
	// checkOnPush: the store asks whether it holds the blob as it pushes it (BlobPusher.ChecksOnPush).
	checkOnPush bool
}

// blobTasks lists every blob of every plan, each once per store, leaving out what opts.Skip names.
func (c *copying) blobTasks() []blobTask {
	var tasks []blobTask
	seen := map[string]bool{}
	for i, ip := range c.plans {
		st := c.stores[i]
		if c.report.Images[i].Status == "failed" { // before the first blob (preflight)
			continue
		}
		for _, n := range ip.Nodes() {
			for _, b := range n.Blobs {
				key := blobKey(st, b.Digest)
				if seen[key] || (c.opts.Skip != nil && c.opts.Skip(b)) {
					continue
				}
				seen[key] = true
				tasks = append(tasks, blobTask{store: st, desc: b, src: ip.Content, from: n.Repository})
			}
		}
	}
	return tasks
}

// copyBlobs is step 1: it puts every blob into its store, and records those that could not be (fail).
func (c *copying) copyBlobs(ctx context.Context) {
	ctx, c.stopBlobs = context.WithCancel(ctx)
	defer c.stopBlobs()
	tasks := c.blobTasks()
	missing, err := c.missing(ctx, tasks)
	if err != nil {
		for _, t := range tasks {
			c.fail(t, err)
		}
		c.log.Error("checking the target failed", "err", err)
		return
	}
	var total int64
	var todo []blobTask
	for i, t := range tasks {
		if !missing[i] {
			c.count(func(r *Report) { r.Blobs.Skipped++; r.Blobs.BytesSkipped += t.desc.Size })
			c.own(t, true)
			continue
		}
		if !t.checkOnPush {
			c.absent[blobKey(t.store, t.desc.Digest)] = true
		}
		todo = append(todo, t)
		total += t.desc.Size
	}
	if c.opts.Progress != nil {
		c.opts.Progress.Start(total)
		defer c.opts.Progress.Finish()
	}
	var g errgroup.Group // a failed blob does not stop the others
	g.SetLimit(c.opts.Concurrency)
	for _, t := range todo {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				c.fail(t, err) // the run was stopped
				return nil
			}
			if err := c.pushBlob(ctx, t); err != nil {
				err = explainRefusal(err, t.store.Name(), nil, "")
				c.fail(t, err)
				c.count(func(r *Report) { r.Blobs.Failed++ })
				if c.altered.Load() == nil { // else the run was stopped, and said why
					c.log.Error("blob failed", "digest", t.desc.Digest, "target", t.store.Name(), "err", err)
				}
			}
			return nil
		})
	}
	_ = g.Wait()
}

// missing asks each store, a few at a time, whether it holds each blob.
func (c *copying) missing(ctx context.Context, tasks []blobTask) ([]bool, error) {
	missing := make([]bool, len(tasks))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Concurrency * 2)
	for i, t := range tasks {
		if bp, ok := t.store.(BlobPusher); ok && bp.ChecksOnPush(t.desc) {
			tasks[i].checkOnPush, missing[i] = true, true // asked by the push itself
			continue
		}
		g.Go(func() error {
			ok, err := plan.Retried(gctx, c.retry, "check blob "+t.desc.Digest.String()+" in "+t.store.Name(), func(ctx context.Context) (bool, error) {
				return t.store.Exists(ctx, t.desc)
			})
			if err != nil {
				return fmt.Errorf("check blob %s in %s: %w", t.desc.Digest, t.store.Name(), err)
			}
			missing[i] = !ok
			return nil
		})
	}
	return missing, g.Wait()
}

// own records that t's store holds (or will hold) t's blob; it returns the owner to mount from when
// another store of the target got there first.
func (c *copying) own(t blobTask, done bool) (mine, from *heldBy) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if o, ok := c.owners[t.desc.Digest]; ok && o.store.Name() != t.store.Name() {
		return nil, o
	}
	o := &heldBy{store: t.store, done: make(chan struct{})}
	if done {
		o.ok = true
		close(o.done)
	}
	c.owners[t.desc.Digest] = o
	return o, nil
}

// pushBlob mounts t's blob from another store where it can, and uploads it otherwise.
func (c *copying) pushBlob(ctx context.Context, t blobTask) error {
	mine, from := c.own(t, false)
	if m, ok := t.store.(Mounter); ok && from != nil {
		select {
		case <-from.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if from.ok {
			mounted, err := plan.Retried(ctx, c.retry, fmt.Sprintf("mount blob %s into %s", t.desc.Digest, t.store.Name()), func(ctx context.Context) (bool, error) {
				return m.Mount(ctx, t.desc, from.store)
			})
			if err != nil {
				return fmt.Errorf("mount blob %s into %s: %w", t.desc.Digest, t.store.Name(), err)
			}
			if mounted {
				c.count(func(r *Report) { r.Blobs.Mounted++; r.Blobs.BytesMounted += t.desc.Size })
				if c.opts.Progress != nil {
					c.opts.Progress.Add(t.desc.Size)
				}
				return nil
			}
		}
	}
	held, err := c.upload(ctx, t)
	if mine != nil {
		mine.ok = err == nil
		close(mine.done)
	}
	switch {
	case err == nil && held:
		c.count(func(r *Report) { r.Blobs.Skipped++; r.Blobs.BytesSkipped += t.desc.Size })
		if c.opts.Progress != nil {
			c.opts.Progress.Add(t.desc.Size)
		}
	case err == nil:
		c.count(func(r *Report) {
			r.Blobs.Pushed++
			r.Blobs.BytesPushed += t.desc.Size
			if t.checkOnPush { // it was not there, nor are the manifests that list it
				c.absent[blobKey(t.store, t.desc.Digest)] = true
			}
		})
	}
	return err
}

// upload streams t's blob from its source into its store, retried from the source (a stream cannot
// be rewound). A store that keeps partial blobs is asked to resume, and the source read from that
// offset. A transfer that stalls, either way, is cut by the registry client (--stall-timeout) and
// retried here: both ends of a copy that can stall are registries, and the client watches both
// directions of every request.
func (c *copying) upload(ctx context.Context, t blobTask) (held bool, err error) {
	resumed := false
	err = c.retry.Do(ctx, fmt.Sprintf("push blob %s to %s", t.desc.Digest, t.store.Name()), func(ctx context.Context) error {
		open := func(offset int64) (io.ReadCloser, error) {
			rc, err := c.open(ctx, t, offset)
			if err == nil && offset > 0 {
				resumed = true
				if c.opts.Progress != nil {
					c.opts.Progress.Add(offset)
				}
			}
			return rc, err
		}
		var err error
		if held, err = pushOpened(ctx, t, open); err != nil {
			return fmt.Errorf("push blob %s to %s: %w", t.desc.Digest, t.store.Name(), err)
		}
		return nil
	})
	if err == nil && resumed {
		c.resumed.Add(1)
	}
	return held, err
}

// pushOpened stores t's blob, read with open, the store's way. held reports a blob the store turned
// out to hold already (BlobPusher.ChecksOnPush).
func pushOpened(ctx context.Context, t blobTask, open func(int64) (io.ReadCloser, error)) (held bool, err error) {
	if bp, ok := t.store.(BlobPusher); ok {
		return bp.PushBlob(ctx, t.desc, open, t.checkOnPush)
	}
	rc, err := open(0)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	return false, t.store.Push(ctx, t.desc, rc)
}

// open reads t's blob from its source from offset on (a Range request where the source is a
// registry), watched for damage and progress (checkReader).
func (c *copying) open(ctx context.Context, t blobTask, offset int64) (io.ReadCloser, error) {
	var rc io.ReadCloser
	var err error
	if rf, ok := t.src.(RangeFetcher); ok && offset > 0 {
		rc, err = rf.FetchFrom(ctx, t.desc, offset)
	} else if rc, err = t.src.Fetch(ctx, t.desc); err == nil && offset > 0 {
		if _, err = io.CopyN(io.Discard, rc, offset); err != nil {
			rc.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("read blob %s from %s: %w", t.desc.Digest, t.from, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{&checkReader{r: rc, task: t, c: c}, rc}, nil
}

// RangeFetcher is a Source that can read a blob from an offset, so a resumed blob is not read from
// the start again (a registry answers a Range request: registrySource, registry.FetchFrom).
type RangeFetcher interface {
	FetchFrom(ctx context.Context, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error)
}

// checkReader watches a blob as it is read from the source, counts the bytes and shows them
// (Progress): content that does not match its digest, as an archive reports it
// (archive.DigestMismatchError, archive.CheckError), stops the whole run. The archive reader withholds
// the last bytes of such a blob, so its upload never completes either.
type checkReader struct {
	r    io.Reader
	task blobTask
	c    *copying
}

func (a *checkReader) Read(b []byte) (int, error) {
	n, err := a.r.Read(b)
	a.c.fetched.Add(int64(n))
	if a.c.opts.Progress != nil {
		a.c.opts.Progress.Add(int64(n))
	}
	if err != nil && err != io.EOF {
		var dm *archive.DigestMismatchError
		var ce *archive.CheckError
		if errors.As(err, &dm) || errors.As(err, &ce) {
			if a.c.altered.CompareAndSwap(nil, &badBlob{desc: a.task.desc, err: err}) {
				a.c.log.Error("blob does not match its digest: stopping", "digest", a.task.desc.Digest, "err", err)
			}
			a.c.stopBlobs()
		}
	}
	return n, err
}

// alteredErr reports the blob that stopped the run, with the images it belongs to, as an
// *archive.CheckError; nil if none did.
func (c *copying) alteredErr() error {
	a := c.altered.Load()
	if a == nil {
		return nil
	}
	var images []string
	for _, ip := range c.plans {
		if planHasBlob(ip, a.desc) {
			images = append(images, ip.Source)
		}
	}
	return &archive.CheckError{
		Msg: fmt.Sprintf("blob %s (of %s) does not match its digest as it is read from the archive (%v): the archive was altered or damaged after it was written; nothing was tagged and no manifest was pushed; copy the archive again from the connected side",
			a.desc.Digest, strings.Join(images, ", "), a.err),
		Digest: a.desc.Digest,
		Images: images,
	}
}

func planHasBlob(ip *plan.ImagePlan, d ocispec.Descriptor) bool {
	for _, n := range ip.Nodes() {
		for _, b := range n.Blobs {
			if b.Digest == d.Digest {
				return true
			}
		}
	}
	return false
}
