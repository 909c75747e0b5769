package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/registry"
)

// CopyOptions controls Copy.
type CopyOptions struct {
	// Concurrency bounds parallel transfers (blobs) and images; 0 means 8.
	Concurrency int
	Log         *slog.Logger
	// Progress, if set, hears about blob bytes as they move.
	Progress plan.Progress
	// Retry bounds retries of failed transfers; zero means registry.DefaultRetry.
	Retry registry.Retry
	// Skip, if set, names content the target gets by other means (what a delta's base holds): it is
	// neither checked nor pushed nor counted. Indexing and tags are not affected.
	Skip func(ocispec.Descriptor) bool
	// Preflight asks the target where each image's tag points before the first blob (Tagger):
	// moved tags are reported, a tag already right is left alone without asking again, and a target
	// that answers no image stops the run with ErrNothingDone before anything is written.
	Preflight bool
	// RefuseTagMoves fails an image whose tag names another digest on the target, leaving the tag
	// alone; the other images go on.
	RefuseTagMoves bool
	// TagsRead are tags of the target read before the copy (the cosign tags the site's signing
	// appends to): with Preflight, taken as its answer for them, not asked again.
	TagsRead []TagRead
}

// TagRead is what a tag of a store named when it was read: nothing (Found false), or Desc, whose
// bytes are Manifest.
type TagRead struct {
	Store, Tag string
	Found      bool
	Desc       ocispec.Descriptor
	Manifest   []byte
}

// Report says what Copy did.
type Report struct {
	// Images has one report per plan, in order.
	Images    []ImageReport `json:"images"`
	Blobs     Counts        `json:"blobs"`
	Manifests Counts        `json:"manifests"`
	// Resumed counts blobs finished from what an interrupted run left (a partial blob).
	Resumed int `json:"-"`
	// BytesFetched counts the blob bytes actually read from the sources (less than BytesPushed on
	// resume).
	BytesFetched int64 `json:"-"`
	// Tags counts tags written (image tags and cosign legacy tags); ReferrerIndexes the tag-schema
	// indexes written on registries without the referrers API.
	Tags            int `json:"tags"`
	ReferrerIndexes int `json:"referrerIndexes"`
	// Verified counts manifests read back from the target and found byte-identical to the source.
	Verified int `json:"verified"`
}

// NewImageReport describes plan's image going to the repository (or archive) named repo.
func NewImageReport(ip *plan.ImagePlan, repo string) ImageReport {
	ir := ImageReport{
		Source: ip.Source, SourceRepository: ip.Image.RepositoryRef(), Repository: repo,
		Tag: ip.Image.Tag, Digest: ip.Root.Desc.Digest, Platforms: len(ip.Root.Children),
		Referrers: len(ip.Referrers), Status: "planned",
	}
	ir.Target = TargetReference(repo, ir.Tag, ir.Digest)
	return ir
}

// copying is the state of one Copy run.
type copying struct {
	opts   CopyOptions
	log    *slog.Logger
	retry  registry.Retry
	plans  []*plan.ImagePlan
	stores []Store
	report *Report
	// pre is where each image's tag pointed before the first blob (preflight); nil: not known.
	pre map[string]*tagState // by "store:tag", from the preflight

	mu     sync.Mutex
	owners map[digest.Digest]*heldBy // the first store of the target to hold each blob
	// absent names the blobs (blobKey) a store lacked when the run began: the manifests that list
	// them cannot be there either. Written by step 1 only. failed names those that could not be
	// stored, with why.
	absent  map[string]bool
	failed  map[string]error
	fetched atomic.Int64
	resumed atomic.Int64

	// altered is the first blob read from the source that did not match its digest as it streamed
	// (an archive hashes what it serves); stopBlobs then ends every transfer, and the run stops before
	// any manifest or tag, for every image.
	altered   atomic.Pointer[badBlob]
	stopBlobs context.CancelFunc
}

// heldBy is the first push of a blob into one store of the target; other stores mount from it.
type heldBy struct {
	store Store
	done  chan struct{}
	ok    bool
}

type badBlob struct {
	desc ocispec.Descriptor
	err  error
}

// Copy puts every plan's image into target, in this order, so that nothing is visible before all it
// reaches is there:
//  1. blobs, each (store, digest) once: what the store holds is skipped; a blob another store of the
//     same target got is mounted where the store can; partial blobs are resumed where the store keeps
//     them; each transfer is retried (Retry.Do, the one retry layer) and, cut by the registry client
//     when it stalls either way, retried too;
//  2. per image, its manifests, children before the indexes that list them;
//  3. its referrers, after their subjects, then attached the store's way (Tagger);
//  4. its tags, last (or its index entries, for an Indexer);
//  5. everything read back and compared, where the store tags (Tagger).
//
// A blob that cannot be stored fails only the images that need it. A source blob that does not match
// its digest (archive.DigestMismatchError, archive.CheckError) stops the whole run before any
// manifest or tag, and Copy returns an *archive.CheckError naming it. Otherwise the error joins the
// failures of the images; the report says what happened to each.
func Copy(ctx context.Context, plans []*plan.ImagePlan, target Target, opts CopyOptions) (*Report, error) {
	if opts.Concurrency < 1 {
		opts.Concurrency = 8
	}
	c := &copying{
		opts: opts, log: opts.Log, retry: opts.Retry.OrDefault(), plans: plans,
		stores: make([]Store, len(plans)), report: &Report{Images: make([]ImageReport, len(plans))},
		owners: map[digest.Digest]*heldBy{}, absent: map[string]bool{}, failed: map[string]error{},
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	for i, ip := range plans {
		st, err := target.Store(ctx, ip)
		if err != nil {
			return nil, err
		}
		c.stores[i] = st
		c.report.Images[i] = NewImageReport(ip, st.Name())
	}
	if err := c.preflight(ctx); err != nil {
		return c.report, err
	}
	c.copyBlobs(ctx)
	c.report.BytesFetched, c.report.Resumed = c.fetched.Load(), int(c.resumed.Load())
	if err := c.alteredErr(); err != nil {
		for i := range c.report.Images {
			c.report.Images[i].Status, c.report.Images[i].Error = "failed", "not loaded: "+err.Error()
		}
		return c.report, err
	}
	if err := c.copyImages(ctx); err != nil {
		return c.report, err
	}
	var errs []error
	for _, ir := range c.report.Images {
		if ir.Status == "failed" {
			errs = append(errs, fmt.Errorf("%s -> %s: %s", ir.Source, ir.Target, ir.Error))
		}
	}
	return c.report, errors.Join(errs...)
}

// copyImages runs steps 2 to 5 for every image whose blobs are all there, a few images at a time.
func (c *copying) copyImages(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Concurrency)
	for i, ip := range c.plans {
		ir, st := &c.report.Images[i], c.stores[i]
		if ir.Status == "failed" { // before the first blob (preflight)
			continue
		}
		g.Go(func() error {
			if d, err := c.blobFailed(ip, st); err != nil {
				ir.Status, ir.Error = "failed", fmt.Sprintf("blob %s could not be pushed: %v", d, err)
				return nil
			}
			pushed, err := c.copyImage(gctx, ip, st, ir)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				ir.Status, ir.Error = "failed", err.Error()
				c.log.Error("image failed", "image", ip.Source, "target", ir.Target, "err", err)
				return nil
			}
			ir.Status = "up-to-date"
			if pushed {
				ir.Status = "pushed"
			}
			return nil
		})
	}
	return g.Wait()
}

func (c *copying) count(f func(r *Report)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c.report)
}

// blobKey names blob d in store st.
func blobKey(st Store, d digest.Digest) string { return st.Name() + "@" + d.String() }

// fail records that t's blob could not be stored, and why.
func (c *copying) fail(t blobTask, err error) {
	c.mu.Lock()
	c.failed[blobKey(t.store, t.desc.Digest)] = err
	c.mu.Unlock()
}

// blobFailed returns the first blob of plan that failed to reach st, and why.
func (c *copying) blobFailed(ip *plan.ImagePlan, st Store) (digest.Digest, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.failed) == 0 {
		return "", nil
	}
	for _, n := range ip.Nodes() {
		for _, b := range n.Blobs {
			if err, bad := c.failed[blobKey(st, b.Digest)]; bad {
				return b.Digest, err
			}
		}
	}
	return "", nil
}

// Counts counts items and bytes by what happened to them.
type Counts struct {
	Pushed       int   `json:"pushed"`
	Skipped      int   `json:"skipped"`
	Mounted      int   `json:"mounted"`
	Failed       int   `json:"failed"`
	BytesPushed  int64 `json:"bytesPushed"`
	BytesSkipped int64 `json:"bytesSkipped"`
	BytesMounted int64 `json:"bytesMounted"`
}

// ImageReport says what happened to one image.
type ImageReport struct {
	Source           string        `json:"source"`
	SourceRepository string        `json:"sourceRepository"`
	Repository       string        `json:"repository"`
	Target           string        `json:"target"`
	Tag              string        `json:"tag,omitempty"`
	Digest           digest.Digest `json:"digest"`
	Platforms        int           `json:"platforms"`
	Referrers        int           `json:"referrers"`
	// ReferrersBy is "api" or "tag-schema": how referrers are findable on the target.
	ReferrersBy string `json:"referrersBy,omitempty"`
	// TagMoved, when set, says that the image's tag named another digest on the target before.
	TagMoved *TagMove `json:"tagMoved,omitempty"`
	// ReferrerTagsMoved lists the cosign legacy tags of its referrers (sha256-<hex>.sig, .att, .sbom)
	// that named another digest on the target before.
	ReferrerTagsMoved []TagMove `json:"referrerTagsMoved,omitempty"`
	// Status is "pushed", "up-to-date", "planned" (dry run) or "failed".
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}
