package mirror

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/registry/remote"

	"airlock.dev/airlock/config"
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
	// RefuseTagMoves leaves a tag that names another digest on the target alone and fails its image
	// (--tag-moves=refuse); by default the tag moves, and the move is reported.
	RefuseTagMoves bool
	// Target, when set, receives the content instead of the registry named by To (tests).
	Target Target
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

// TagMoves lists the images whose tag named another digest on the target before the run.
func (r *PublishReport) TagMoves() []ImageReport {
	var moved []ImageReport
	for _, i := range r.Images {
		if i.TagMoved != nil {
			moved = append(moved, i)
		}
	}
	return moved
}

// isCatalog reports whether plans are airlock's own catalog alone (load keeps it on the site; its tag
// is its creation time, and it needs no preflight of its own after the images').
func isCatalog(plans []*ImagePlan) bool {
	return len(plans) == 1 && plans[0].Image.Target == CatalogRepository && plans[0].Image.Registry == "airlock"
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

// Publish pushes each plan into its target repository with Copy over a RegistryTarget: blobs (mounted
// from another repository of the same registry when this run already pushed them there), then platform
// manifests and indexes, then referrers after their subjects, then tags last, so no tag ever points at
// content that is not all there. Content the target has is not pushed again. Referrers are pushed as
// they are where the target has the referrers API, and listed in the sha256-<hex> tag-schema index
// where it has not. Afterwards every manifest and tag is read back from the target and checked against
// the source.
func Publish(ctx context.Context, plans []*ImagePlan, regs *registry.Registries, opts PublishOptions) (*PublishReport, error) {
	start := time.Now()
	rep := &PublishReport{Target: opts.To, DryRun: opts.DryRun, Images: make([]ImageReport, len(plans))}
	for i, plan := range plans {
		name, err := TargetRepository(opts.To, opts.KeepHost, plan.Image)
		if err != nil {
			return nil, err
		}
		rep.Images[i] = NewImageReport(plan, name)
	}
	if err := checkCollisions(rep.Images); err != nil {
		return nil, err
	}
	if opts.DryRun {
		rep.Seconds = time.Since(start).Seconds()
		return rep, nil
	}
	var target Target = &RegistryTarget{Regs: regs, To: opts.To, KeepHost: opts.KeepHost, Retry: opts.Retry, Log: opts.Log}
	if opts.Target != nil {
		target = opts.Target
	}
	r, err := Copy(ctx, plans, target, CopyOptions{
		Concurrency: opts.Concurrency, Log: opts.Log, Progress: opts.Progress, Retry: opts.Retry,
		Preflight: !isCatalog(plans), RefuseTagMoves: opts.RefuseTagMoves,
	})
	if r == nil {
		return nil, err
	}
	rep.Images, rep.Blobs, rep.Manifests = r.Images, r.Blobs, r.Manifests
	rep.Tags, rep.ReferrerIndexes, rep.Verified = r.Tags, r.ReferrerIndexes, r.Verified
	rep.Seconds = time.Since(start).Seconds()
	return rep, err
}
