package mirror

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/registry"
)

// Diff statuses.
const (
	DiffOK         = "ok"         // same digest, everything attached is there
	DiffMissing    = "missing"    // the image is not there
	DiffStale      = "stale"      // the tag points at another digest
	DiffIncomplete = "incomplete" // the image is there, but manifests, referrers or blobs are not
)

// DiffEntry compares one image of the source with a mirror.
type DiffEntry struct {
	Source       string        `json:"source"`
	Target       string        `json:"target"`
	Digest       digest.Digest `json:"digest"`
	TargetDigest digest.Digest `json:"targetDigest,omitempty"`
	Status       string        `json:"status"`
	// Flattened names the platform manifest the mirror holds in place of a sparse index (loaded with
	// --sparse-index=flatten): TargetDigest is that manifest's, and the index's referrers are not
	// expected there.
	Flattened string `json:"flattened,omitempty"`
	// Missing lists what the mirror lacks: "manifest sha256:...", "referrer sha256:... (signature)", "blob sha256:...".
	Missing []string `json:"missing,omitempty"`
}

// contentChecker is a mirror's content, asked where a tag points and whether it holds a manifest or
// a blob: a registry repository (oras-go's Repository tells manifests and blobs apart by media type)
// or an archive.
type contentChecker interface {
	Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error)
	Exists(ctx context.Context, d ocispec.Descriptor) (bool, error)
}

// Diff resolves set in its source registries, with every referrer, and compares it with against: a
// mirror HOST[:PORT]/PREFIX, where each image lands as load maps it (keepHost: as load --keep-host),
// or an archive. Any image or repository that does not resolve fails the run: a *plan.ResolutionError
// lists every one of them.
func Diff(ctx context.Context, set *config.ImageSet, against string, regs *registry.Registries, keepHost bool, o plan.PlanOptions) ([]DiffEntry, error) {
	form, err := plan.FormOf(against)
	if err != nil {
		return nil, err
	}
	var r *archive.Reader
	if form != plan.FormRegistry {
		if r, err = plan.OpenArchive(ctx, against); err != nil {
			return nil, err
		}
		defer r.Close()
	}
	o.KeepGoing = false
	sp, err := plan.PlanSet(ctx, set, regs, o)
	if err != nil {
		return nil, err
	}
	if r != nil {
		return DiffArchive(ctx, sp.Plans, r)
	}
	return DiffRegistry(ctx, sp.Plans, regs, against, keepHost)
}

// DiffRegistry compares each plan with its target repository under to.
func DiffRegistry(ctx context.Context, plans []*plan.ImagePlan, regs *registry.Registries, to string, keepHost bool) ([]DiffEntry, error) {
	var out []DiffEntry
	for _, p := range plans {
		name, err := engine.TargetRepository(to, keepHost, p.Image)
		if err != nil {
			return nil, err
		}
		repo, err := regs.Target(name)
		if err != nil {
			return nil, err
		}
		e, err := diffOne(ctx, p, engine.TargetReference(name, p.Image.Tag, p.Root.Desc.Digest), repo, p.Image.Tag)
		if err != nil {
			return nil, fmt.Errorf("diff %s against %s: %w", p.Source, name, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// DiffArchive compares each plan with what an archive holds.
func DiffArchive(ctx context.Context, plans []*plan.ImagePlan, r *archive.Reader) ([]DiffEntry, error) {
	var out []DiffEntry
	for _, p := range plans {
		e, err := diffOne(ctx, p, r.Path+":"+p.Source, r, p.Source)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func diffOne(ctx context.Context, p *plan.ImagePlan, target string, c contentChecker, tagRef string) (DiffEntry, error) {
	e := DiffEntry{Source: p.Source, Target: target, Digest: p.Root.Desc.Digest, Status: DiffOK}
	// The tag is asked once: where it points says both whether the image is flattened and whether
	// it is there.
	var tagged *ocispec.Descriptor
	var tagErr error
	if tagRef != "" {
		d, err := c.Resolve(ctx, tagRef)
		tagged, tagErr = &d, err
	}
	fp, err := flattenedOn(ctx, p, c, tagged, tagErr)
	if err != nil {
		return e, err
	}
	if fp != nil {
		p, e.Flattened = fp, fp.Root.Platform
	}
	if tagged != nil {
		switch {
		case errors.Is(tagErr, errdef.ErrNotFound) || isNotExist(tagErr):
			e.Status = DiffMissing
			return e, nil
		case tagErr != nil:
			return e, tagErr
		}
		e.TargetDigest = tagged.Digest
		if tagged.Digest != p.Root.Desc.Digest {
			e.Status = DiffStale
			return e, nil
		}
	}
	e.Missing, err = missingOf(ctx, p, c)
	if err != nil {
		return e, err
	}
	if len(e.Missing) > 0 {
		// The image is on the mirror when its root manifest is; the nodes come children first, so
		// the root may be anywhere in the list.
		if slices.Contains(e.Missing, "manifest "+p.Root.Desc.Digest.String()) {
			e.Status = DiffMissing
		} else {
			e.Status = DiffIncomplete
		}
	} else {
		e.TargetDigest = p.Root.Desc.Digest
	}
	return e, nil
}

// flattenedOn returns the flattened plan of p when the mirror holds p's image flattened: p is a sparse
// index with one platform manifest, and the tag names that manifest (tagged, as the mirror resolved
// it, with tagErr; nil when untagged) or, untagged, the mirror lacks the index and has the manifest.
// Otherwise nil.
func flattenedOn(ctx context.Context, p *plan.ImagePlan, c contentChecker, tagged *ocispec.Descriptor, tagErr error) (*plan.ImagePlan, error) {
	if !p.Sparse || !p.Root.IsIndex() || plan.Flattenable(p) != "" {
		return nil, nil
	}
	child := p.Root.Children[0]
	if tagged != nil {
		if tagErr != nil || tagged.Digest != child.Desc.Digest {
			return nil, nil // missing or not flattened: the caller says which
		}
	} else {
		hasIndex, err := c.Exists(ctx, p.Root.Desc)
		if err != nil || hasIndex {
			return nil, err
		}
		if hasChild, err := c.Exists(ctx, child.Desc); err != nil || !hasChild {
			return nil, err
		}
	}
	fp, _ := plan.FlattenOne(p)
	return fp, nil
}

// missingOf lists what of p the mirror lacks: manifests, referrers and blobs.
func missingOf(ctx context.Context, p *plan.ImagePlan, c contentChecker) ([]string, error) {
	var missing []string
	for _, n := range p.Nodes() {
		ok, err := c.Exists(ctx, n.Desc)
		if err != nil {
			return nil, err
		}
		if !ok {
			what := "manifest " + n.Desc.Digest.String()
			if n.Referrer != nil {
				what = fmt.Sprintf("referrer %s (%s of %s)", n.Desc.Digest, n.Kind, n.Referrer.Subject)
			}
			missing = append(missing, what)
			continue
		}
		for _, b := range n.Blobs {
			ok, err := c.Exists(ctx, b)
			if err != nil {
				return nil, err
			}
			if !ok {
				missing = append(missing, "blob "+b.Digest.String())
			}
		}
	}
	return missing, nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
