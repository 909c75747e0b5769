package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/registry/remote"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/referrers"
	"airlock.dev/airlock/registry"
)

// PublishOptions controls Publish.
type PublishOptions struct {
	// To is the target: HOST[:PORT][/PREFIX].
	To string
	// KeepHost keeps the source registry host as a path element: PREFIX/<host>/<repository>.
	KeepHost bool
	// DryRun maps every image to its target and pushes nothing.
	DryRun      bool
	Concurrency int
	Log         *slog.Logger
	Progress    Progress
	// Retry bounds retries of failed transfers; zero means registry.DefaultRetry.
	Retry registry.Retry
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
	// Status is "pushed", "up-to-date", "planned" (dry run) or "failed".
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// PublishReport says what Publish did.
type PublishReport struct {
	Target    string        `json:"target"`
	DryRun    bool          `json:"dryRun,omitempty"`
	Images    []ImageReport `json:"images"`
	Blobs     Counts        `json:"blobs"`
	Manifests Counts        `json:"manifests"`
	// Tags counts tags written: image tags and cosign legacy tags.
	Tags int `json:"tags"`
	// ReferrerIndexes counts tag-schema indexes written on registries without the referrers API.
	ReferrerIndexes int `json:"referrerIndexes"`
	// Verified counts manifests read back from the target and found byte-identical to the source.
	Verified int     `json:"verified"`
	Seconds  float64 `json:"seconds"`
}

// Failed reports whether any image failed.
func (r *PublishReport) Failed() bool {
	for _, i := range r.Images {
		if i.Status == "failed" {
			return true
		}
	}
	return false
}

// TargetRepository maps a source image to its repository under to (HOST[:PORT][/PREFIX]): the image's
// own target if the ImageSet sets one, else PREFIX/<source path>, or PREFIX/<source host>/<source path>
// with keepHost (a port becomes "-PORT", since ':' may not appear in a repository name).
func TargetRepository(to string, keepHost bool, img config.Image) (string, error) {
	to = strings.TrimSuffix(to, "/")
	host, prefix, _ := strings.Cut(to, "/")
	if host == "" {
		return "", fmt.Errorf("--to %q: want HOST[:PORT]/PREFIX, e.g. registry.site:5000/mirror", to)
	}
	var path string
	switch {
	case img.Target != "":
		path = img.Target
	case keepHost:
		path = strings.ReplaceAll(strings.ToLower(img.Registry), ":", "-") + "/" + img.Repository
	default:
		path = img.Repository
	}
	name := host + "/" + path
	if prefix != "" {
		name = host + "/" + prefix + "/" + path
	}
	if _, err := remote.NewRepository(name); err != nil {
		return "", fmt.Errorf("target for %s: %q is not a valid repository: %w", img, name, err)
	}
	return name, nil
}

// checkCollisions refuses two different images that would land on the same target tag: the second
// push would move the first one's tag.
func checkCollisions(images []ImageReport) error {
	byTarget := map[string]ImageReport{}
	for _, ir := range images {
		if ir.Tag == "" {
			continue
		}
		if prev, ok := byTarget[ir.Target]; ok && prev.Digest != ir.Digest {
			return fmt.Errorf("%s and %s would both land on %s (different digests): load with --keep-host to keep the source hosts apart, or give one of them a target in the ImageSet", prev.Source, ir.Source, ir.Target)
		}
		byTarget[ir.Target] = ir
	}
	return nil
}

// publishing is the state of one Publish run.
type publishing struct {
	regs   *registry.Registries
	opts   PublishOptions
	log    *slog.Logger
	report *PublishReport

	mu      sync.Mutex
	targets map[string]*remote.Repository
	probes  map[string]*probeResult
	owners  map[string]*blobOwner // registry host + digest -> the first push of that blob
	counts  struct{ blobs, manifests Counts }
	tags    atomic.Int64
	indexes atomic.Int64
	checked atomic.Int64

	// altered is the first blob read from an archive that did not match its digest as it streamed
	// (archive.Reader hashes what it serves); stopBlobs then ends every upload, and the run stops
	// before any manifest or tag is pushed, for every image.
	altered   atomic.Pointer[alteredBlob]
	stopBlobs context.CancelFunc
}

type alteredBlob struct {
	desc ocispec.Descriptor
	err  error
}

type probeResult struct {
	once sync.Once
	api  bool
	err  error
}

type blobOwner struct {
	repo string // repository path (without host) that holds the blob once done
	done chan struct{}
	ok   bool
}

// Publish pushes each plan into its target repository: blobs (mounted from another repository of the
// same registry when this run already pushed them there), then platform manifests and indexes, then
// referrers after their subjects, then tags last, so no tag ever points at content that is not all
// there. Content the target has is not pushed again. Referrers are pushed as they are where the target
// has the referrers API, and listed in the sha256-<hex> tag-schema index where it has not. Afterwards
// every manifest and tag is read back from the target and checked against the source.
func Publish(ctx context.Context, plans []*ImagePlan, regs *registry.Registries, opts PublishOptions) (*PublishReport, error) {
	start := time.Now()
	if opts.Concurrency < 1 {
		opts.Concurrency = 8
	}
	p := &publishing{
		regs: regs, opts: opts, log: opts.Log,
		report:  &PublishReport{Target: opts.To, DryRun: opts.DryRun},
		targets: map[string]*remote.Repository{},
		probes:  map[string]*probeResult{},
		owners:  map[string]*blobOwner{},
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.opts.Retry = opts.Retry.OrDefault()
	p.report.Images = make([]ImageReport, len(plans))
	for i, plan := range plans {
		repoName, err := TargetRepository(opts.To, opts.KeepHost, plan.Image)
		if err != nil {
			return nil, err
		}
		ir := ImageReport{
			Source: plan.Source, SourceRepository: plan.Image.RepositoryRef(), Repository: repoName,
			Tag: plan.Image.Tag, Digest: plan.Root.Desc.Digest, Platforms: len(plan.Root.Children), Referrers: len(plan.Referrers),
			Status: "planned",
		}
		ir.Target = repoName + "@" + ir.Digest.String()
		if ir.Tag != "" {
			ir.Target = repoName + ":" + ir.Tag
		}
		p.report.Images[i] = ir
	}
	if err := checkCollisions(p.report.Images); err != nil {
		return nil, err
	}
	if opts.DryRun {
		p.report.Seconds = time.Since(start).Seconds()
		return p.report, nil
	}

	failedBlobs := p.pushBlobs(ctx, plans)
	if err := p.alteredErr(plans); err != nil {
		for i := range p.report.Images {
			p.report.Images[i].Status, p.report.Images[i].Error = "failed", "not loaded: "+err.Error()
		}
		p.report.Blobs, p.report.Manifests = p.counts.blobs, p.counts.manifests
		p.report.Seconds = time.Since(start).Seconds()
		return p.report, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Concurrency)
	for i, plan := range plans {
		ir := &p.report.Images[i]
		g.Go(func() error {
			if d, err := failedBlobs.of(plan, ir.Repository); err != nil {
				ir.Status, ir.Error = "failed", fmt.Sprintf("blob %s could not be pushed: %v", d, err)
				return nil
			}
			pushed, err := p.pushImage(gctx, plan, ir)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				ir.Status, ir.Error = "failed", err.Error()
				p.log.Error("image failed", "image", plan.Source, "target", ir.Target, "err", err)
				return nil
			}
			ir.Status = "up-to-date"
			if pushed {
				ir.Status = "pushed"
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return p.report, err
	}
	p.report.Blobs, p.report.Manifests = p.counts.blobs, p.counts.manifests
	p.report.Tags = int(p.tags.Load())
	p.report.ReferrerIndexes = int(p.indexes.Load())
	p.report.Verified = int(p.checked.Load())
	p.report.Seconds = time.Since(start).Seconds()
	var errs []error
	for _, ir := range p.report.Images {
		if ir.Status == "failed" {
			errs = append(errs, fmt.Errorf("%s -> %s: %s", ir.Source, ir.Target, ir.Error))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return p.report, err
	}
	return p.report, nil
}

func (p *publishing) target(name string) (*remote.Repository, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.targets[name]; ok {
		return r, nil
	}
	r, err := p.regs.Target(name)
	if err != nil {
		return nil, err
	}
	p.targets[name] = r
	return r, nil
}

// referrersAPI probes the target repository once. Call it after the repository has content: some
// registries answer 404 for any request on a repository that does not exist yet.
func (p *publishing) referrersAPI(ctx context.Context, name string) (bool, error) {
	p.mu.Lock()
	pr, ok := p.probes[name]
	if !ok {
		pr = &probeResult{}
		p.probes[name] = pr
	}
	p.mu.Unlock()
	pr.once.Do(func() {
		repo, err := p.regs.Probe(name)
		if err != nil {
			pr.err = err
			return
		}
		pr.err = p.opts.Retry.Do(ctx, "probe referrers API of "+name, func(ctx context.Context) error {
			var err error
			pr.api, err = registry.ProbeReferrers(ctx, repo)
			return err
		})
		p.log.Debug("target referrers API probed", "repository", name, "api", pr.api, "err", pr.err)
	})
	return pr.api, pr.err
}

// failedSet records the blobs that could not be pushed, by target repository and digest.
type failedSet struct {
	mu sync.Mutex
	m  map[string]error // repository + "@" + digest
}

func (f *failedSet) add(repo string, d digest.Digest, err error) {
	f.mu.Lock()
	f.m[repo+"@"+d.String()] = err
	f.mu.Unlock()
}

// of returns the first blob of plan that failed to reach repo, and why.
func (f *failedSet) of(plan *ImagePlan, repo string) (digest.Digest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.m) == 0 {
		return "", nil
	}
	for _, n := range plan.Nodes() {
		for _, b := range n.Blobs {
			if err, bad := f.m[repo+"@"+b.Digest.String()]; bad {
				return b.Digest, err
			}
		}
	}
	return "", nil
}

// errMountRefused stops oras-go from uploading inside Mount when the registry declines to mount: the
// upload then goes through airlock's own retried upload.
var errMountRefused = errors.New("mount refused")

type blobJob struct {
	repoName string
	desc     ocispec.Descriptor
	src      Source
}

// pushBlobs pushes every blob of every plan to its target repository, skipping those there and
// mounting those this run already pushed into another repository of the same registry.
func (p *publishing) pushBlobs(ctx context.Context, plans []*ImagePlan) *failedSet {
	ctx, p.stopBlobs = context.WithCancel(ctx)
	defer p.stopBlobs()
	failed := &failedSet{m: map[string]error{}}
	var jobs []blobJob
	seen := map[string]bool{}
	for i, plan := range plans {
		repoName := p.report.Images[i].Repository
		for _, n := range plan.Nodes() {
			for _, b := range n.Blobs {
				key := repoName + "@" + b.Digest.String()
				if !seen[key] {
					seen[key] = true
					jobs = append(jobs, blobJob{repoName: repoName, desc: b, src: plan.repo})
				}
			}
		}
	}
	// Which does the target have already? (HEAD requests, in parallel.)
	missing := make([]bool, len(jobs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Concurrency * 2)
	for i, j := range jobs {
		g.Go(func() error {
			repo, err := p.target(j.repoName)
			if err != nil {
				return err
			}
			var ok bool
			err = p.opts.Retry.Do(gctx, "check blob "+j.desc.Digest.String()+" in "+j.repoName, func(ctx context.Context) error {
				var err error
				ok, err = repo.Blobs().Exists(ctx, j.desc)
				return err
			})
			if err != nil {
				return fmt.Errorf("check blob %s in %s: %w", j.desc.Digest, j.repoName, err)
			}
			missing[i] = !ok
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		for _, j := range jobs {
			failed.add(j.repoName, j.desc.Digest, err)
		}
		p.log.Error("checking the target failed", "err", err)
		return failed
	}
	var total int64
	var todo []blobJob
	for i, j := range jobs {
		if !missing[i] {
			p.count(func(c *Counts) { c.Skipped++; c.BytesSkipped += j.desc.Size }, true)
			p.own(j, true)
			continue
		}
		todo = append(todo, j)
		total += j.desc.Size
	}
	if p.opts.Progress != nil {
		p.opts.Progress.Start(total)
		defer p.opts.Progress.Finish()
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, p.opts.Concurrency)
	for _, j := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := ctx.Err(); err != nil {
				failed.add(j.repoName, j.desc.Digest, err) // the run was stopped
				return
			}
			if err := p.pushBlob(ctx, j); err != nil {
				failed.add(j.repoName, j.desc.Digest, err)
				p.count(func(c *Counts) { c.Failed++ }, true)
				if p.altered.Load() == nil { // else the run was stopped, and said why
					p.log.Error("blob failed", "digest", j.desc.Digest, "target", j.repoName, "err", err)
				}
			}
		}()
	}
	wg.Wait()
	return failed
}

// own records that j's repository holds (or will hold) j's blob; it returns the owner to mount from
// when another repository of the same registry got there first.
func (p *publishing) own(j blobJob, done bool) (mine *blobOwner, from *blobOwner) {
	host, path, _ := strings.Cut(j.repoName, "/")
	key := host + "@" + j.desc.Digest.String()
	p.mu.Lock()
	defer p.mu.Unlock()
	if o, ok := p.owners[key]; ok && o.repo != path {
		return nil, o
	}
	o := &blobOwner{repo: path, done: make(chan struct{})}
	if done {
		o.ok = true
		close(o.done)
	}
	p.owners[key] = o
	return o, nil
}

func (p *publishing) pushBlob(ctx context.Context, j blobJob) error {
	repo, err := p.target(j.repoName)
	if err != nil {
		return err
	}
	// open reads the blob from the source; kick tells the attempt's stall watchdog it moved.
	open := func(kick func()) (io.ReadCloser, error) {
		rc, err := j.src.Fetch(ctx, j.desc)
		if err != nil {
			return nil, err
		}
		var r io.Reader = registry.KickReader(&alteredReader{r: rc, job: j, p: p}, kick)
		if p.opts.Progress != nil {
			r = &progressReader{r: r, p: p.opts.Progress}
		}
		return struct {
			io.Reader
			io.Closer
		}{r, rc}, nil
	}
	// upload streams the blob once; a failed stream is retried from the source, since oras-go's
	// retry transport cannot rewind it.
	upload := func() error {
		return p.opts.Retry.Do(ctx, fmt.Sprintf("push blob %s to %s", j.desc.Digest, j.repoName), func(ctx context.Context) error {
			actx, kick, stop := registry.WithWatchdog(ctx, p.opts.Retry.StallTimeout)
			defer stop()
			rc, err := open(kick)
			if err != nil {
				return fmt.Errorf("read blob %s: %w", j.desc.Digest, err)
			}
			defer rc.Close()
			if err := repo.Blobs().Push(actx, j.desc, rc); err != nil {
				return registry.StallErr(actx, fmt.Errorf("push blob %s to %s: %w", j.desc.Digest, j.repoName, err))
			}
			return nil
		})
	}
	mine, from := p.own(j, false)
	if from != nil {
		select {
		case <-from.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if from.ok {
			fellBack := false
			err := p.opts.Retry.Do(ctx, fmt.Sprintf("mount blob %s into %s", j.desc.Digest, j.repoName), func(ctx context.Context) error {
				return repo.Blobs().(interface {
					Mount(context.Context, ocispec.Descriptor, string, func() (io.ReadCloser, error)) error
				}).Mount(ctx, j.desc, from.repo, func() (io.ReadCloser, error) { fellBack = true; return nil, errMountRefused })
			})
			if fellBack || errors.Is(err, errMountRefused) {
				fellBack, err = true, upload()
			}
			if err != nil {
				return fmt.Errorf("mount blob %s into %s: %w", j.desc.Digest, j.repoName, err)
			}
			if fellBack {
				p.count(func(c *Counts) { c.Pushed++; c.BytesPushed += j.desc.Size }, true)
			} else {
				p.count(func(c *Counts) { c.Mounted++; c.BytesMounted += j.desc.Size }, true)
				if p.opts.Progress != nil {
					p.opts.Progress.Add(j.desc.Size)
				}
			}
			return nil
		}
	}
	err = upload()
	if mine != nil {
		mine.ok = err == nil
		close(mine.done)
	}
	if err == nil {
		p.count(func(c *Counts) { c.Pushed++; c.BytesPushed += j.desc.Size }, true)
	}
	return err
}

// alteredReader watches a blob as it is read from the source: content that does not match its
// digest, as an archive reports it (archive.DigestMismatchError, archive.CheckError), stops the
// whole run. The archive reader withholds the last bytes of such a blob, so its upload never
// completes either.
type alteredReader struct {
	r   io.Reader
	job blobJob
	p   *publishing
}

func (a *alteredReader) Read(b []byte) (int, error) {
	n, err := a.r.Read(b)
	if err != nil && err != io.EOF {
		var dm *archive.DigestMismatchError
		var ce *archive.CheckError
		if errors.As(err, &dm) || errors.As(err, &ce) {
			if a.p.altered.CompareAndSwap(nil, &alteredBlob{desc: a.job.desc, err: err}) {
				a.p.log.Error("blob does not match its digest: stopping", "digest", a.job.desc.Digest, "err", err)
			}
			a.p.stopBlobs()
		}
	}
	return n, err
}

// alteredErr reports the blob that stopped the run, with the images it belongs to, as an
// *archive.CheckError; nil if none did.
func (p *publishing) alteredErr(plans []*ImagePlan) error {
	a := p.altered.Load()
	if a == nil {
		return nil
	}
	var images []string
	for _, plan := range plans {
	nodes:
		for _, n := range plan.Nodes() {
			for _, b := range n.Blobs {
				if b.Digest == a.desc.Digest {
					images = append(images, plan.Source)
					break nodes
				}
			}
		}
	}
	return &archive.CheckError{
		Msg: fmt.Sprintf("blob %s (of %s) does not match its digest as it is read from the archive (%v): the archive was altered or damaged after it was written; nothing was tagged and no manifest was pushed; copy the archive again from the connected side",
			a.desc.Digest, strings.Join(images, ", "), a.err),
		Digest: a.desc.Digest,
		Images: images,
	}
}

func (p *publishing) count(f func(*Counts), blobs bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if blobs {
		f(&p.counts.blobs)
	} else {
		f(&p.counts.manifests)
	}
}

// pushImage pushes the manifests of one image, its referrers, then its tags, and checks them on the
// target. It reports whether anything was pushed.
func (p *publishing) pushImage(ctx context.Context, plan *ImagePlan, ir *ImageReport) (bool, error) {
	repo, err := p.target(ir.Repository)
	if err != nil {
		return false, err
	}
	pushed := false
	retry := p.opts.Retry
	push := func(n *Node) error {
		var ok bool
		err := retry.Do(ctx, "check manifest "+n.Desc.Digest.String()+" in "+ir.Repository, func(ctx context.Context) error {
			var err error
			ok, err = repo.Manifests().Exists(ctx, n.Desc)
			return err
		})
		if err != nil {
			return fmt.Errorf("check manifest %s: %w", n.Desc.Digest, err)
		}
		if ok {
			p.count(func(c *Counts) { c.Skipped++; c.BytesSkipped += n.Desc.Size }, false)
			return nil
		}
		err = retry.Do(ctx, "push manifest "+n.Desc.Digest.String()+" to "+ir.Repository, func(ctx context.Context) error {
			return repo.Manifests().Push(ctx, n.Desc, bytes.NewReader(n.Manifest))
		})
		if err != nil {
			return fmt.Errorf("push manifest %s (%s): %w", n.Desc.Digest, n.Desc.MediaType, err)
		}
		pushed = true
		p.count(func(c *Counts) { c.Pushed++; c.BytesPushed += n.Desc.Size }, false)
		return nil
	}
	// 1. The image: children before the indexes that list them.
	imageNodes := (&ImagePlan{Root: plan.Root}).Nodes()
	for _, n := range imageNodes {
		if err := push(n); err != nil {
			return pushed, err
		}
	}
	// 2. Referrers, after their subjects; listed in tag-schema indexes where there is no API.
	if len(plan.Referrers) > 0 {
		api, err := p.referrersAPI(ctx, ir.Repository)
		if err != nil {
			return pushed, err
		}
		ir.ReferrersBy = string(referrers.TagSchema)
		if api {
			ir.ReferrersBy = string(referrers.API)
		}
		bySubject := map[digest.Digest][]ocispec.Descriptor{}
		var subjects []digest.Digest
		for _, r := range plan.Referrers {
			for _, n := range (&ImagePlan{Root: r}).Nodes() {
				if err := push(n); err != nil {
					return pushed, fmt.Errorf("referrer %s of %s: %w", r.Desc.Digest, r.Referrer.Subject, err)
				}
			}
			if r.Referrer.Method == referrers.CosignTag {
				continue // found by its tag, which travels as a tag
			}
			if _, ok := bySubject[r.Referrer.Subject]; !ok {
				subjects = append(subjects, r.Referrer.Subject)
			}
			bySubject[r.Referrer.Subject] = append(bySubject[r.Referrer.Subject], referrers.Describe(r.Desc.MediaType, r.Manifest))
		}
		if !api {
			for _, s := range subjects {
				var changed bool
				err := retry.Do(ctx, "referrers index of "+s.String()+" in "+ir.Repository, func(ctx context.Context) error {
					var err error
					changed, err = referrers.EnsureTagSchema(ctx, repo, s, bySubject[s])
					return err
				})
				if err != nil {
					return pushed, err
				}
				if changed {
					pushed = true
					p.indexes.Add(1)
				}
			}
		}
	}
	// 3. Tags, last.
	type tagged struct {
		n   *Node
		tag string
	}
	var tags []tagged
	for _, r := range plan.Referrers {
		if r.Referrer.Tag != "" {
			tags = append(tags, tagged{r, r.Referrer.Tag})
		}
	}
	if plan.Image.Tag != "" {
		tags = append(tags, tagged{plan.Root, plan.Image.Tag})
	}
	for _, t := range tags {
		cur, err := repo.Resolve(ctx, t.tag)
		if err == nil && cur.Digest == t.n.Desc.Digest {
			continue
		}
		err = retry.Do(ctx, "tag "+ir.Repository+":"+t.tag, func(ctx context.Context) error {
			return repo.Manifests().PushReference(ctx, t.n.Desc, bytes.NewReader(t.n.Manifest), t.tag)
		})
		if err != nil {
			return pushed, fmt.Errorf("tag %s:%s: %w", ir.Repository, t.tag, err)
		}
		pushed = true
		p.tags.Add(1)
	}
	// 4. Proof: read every manifest back and every tag.
	for _, n := range plan.Nodes() {
		var b []byte
		err := retry.Do(ctx, "read back manifest "+n.Desc.Digest.String(), func(ctx context.Context) error {
			var err error
			b, err = fetchManifest(ctx, repo, n.Desc)
			return err
		})
		if err != nil {
			return pushed, fmt.Errorf("%w: check on the target: %v", ErrCheckFailed, err)
		}
		if !bytes.Equal(b, n.Manifest) {
			return pushed, fmt.Errorf("%w: manifest %s on the target differs from the source", ErrCheckFailed, n.Desc.Digest)
		}
		p.checked.Add(1)
	}
	for _, t := range tags {
		var cur ocispec.Descriptor
		err := retry.Do(ctx, "resolve tag "+t.tag, func(ctx context.Context) error {
			var err error
			cur, err = repo.Resolve(ctx, t.tag)
			return err
		})
		if err != nil {
			return pushed, fmt.Errorf("%w: tag %s on the target: %v", ErrCheckFailed, t.tag, err)
		}
		if cur.Digest != t.n.Desc.Digest {
			return pushed, fmt.Errorf("%w: tag %s on the target points to %s, want %s (something else moved it)", ErrCheckFailed, t.tag, cur.Digest, t.n.Desc.Digest)
		}
	}
	return pushed, nil
}
