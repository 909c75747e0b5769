package mirror

import (
	"bytes"
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// tagged is a tag to write: the image's own, or a referrer's cosign legacy tag.
type tagged struct {
	n   *Node
	tag string
}

// tagsOf lists the tags of plan, the image's own last.
func tagsOf(plan *ImagePlan) []tagged {
	var tags []tagged
	for _, r := range plan.Referrers {
		if r.Referrer != nil && r.Referrer.Tag != "" {
			tags = append(tags, tagged{r, r.Referrer.Tag})
		}
	}
	if plan.Image.Tag != "" {
		tags = append(tags, tagged{plan.Root, plan.Image.Tag})
	}
	return tags
}

// copyImage runs steps 2 to 5 for one image. It reports whether anything was written.
func (c *copying) copyImage(ctx context.Context, plan *ImagePlan, st Store, ir *ImageReport) (bool, error) {
	pushed := false
	push := func(n *Node) error {
		wrote, err := c.pushManifest(ctx, st, n)
		pushed = pushed || wrote
		return err
	}
	// 2. The image: children before the indexes that list them. A root that is pushed by its tag
	// anyway, and that nothing else references, is pushed once, by its tag, in step 4.
	byTag := c.pushByTag(st, plan)
	for _, n := range (&ImagePlan{Root: plan.Root}).Nodes() {
		if n == plan.Root && byTag {
			continue
		}
		if err := push(n); err != nil {
			return pushed, err
		}
	}
	// 3. Referrers, after their subjects (Nodes puts each referrer's own children first).
	for _, r := range plan.Referrers {
		for _, n := range (&ImagePlan{Root: r}).Nodes() {
			if err := push(n); err != nil {
				return pushed, fmt.Errorf("referrer %s of %s: %w", r.Desc.Digest, r.Referrer.Subject, err)
			}
		}
	}
	// 4. Tags (or index entries), last.
	if ix, ok := st.(Indexer); ok {
		if err := ix.Index(ctx, plan); err != nil {
			return pushed, fmt.Errorf("list %s in %s: %w", plan.Source, st.Name(), err)
		}
		return pushed, nil // what an index lists is checked when the archive is read
	}
	if ra, ok := st.(ReferrerAttacher); ok && len(plan.Referrers) > 0 {
		var a Attached
		err := c.retry.Do(ctx, "attach referrers of "+plan.Source+" in "+st.Name(), func(ctx context.Context) error {
			var err error
			a, err = ra.AttachReferrers(ctx, plan)
			return err
		})
		if err != nil {
			return pushed, err
		}
		ir.ReferrersBy = a.By
		pushed = pushed || a.Changed
		c.count(func(r *Report) { r.ReferrerIndexes += a.Indexes })
	}
	tags := tagsOf(plan)
	for _, t := range tags {
		wrote, err := c.tag(ctx, st, t)
		if err != nil {
			return pushed, err
		}
		pushed = pushed || wrote
		if byTag && t.n == plan.Root {
			c.count(func(r *Report) {
				if wrote {
					r.Manifests.Pushed++
					r.Manifests.BytesPushed += t.n.Desc.Size
				} else {
					r.Manifests.Skipped++
					r.Manifests.BytesSkipped += t.n.Desc.Size
				}
			})
		}
	}
	// 5. Proof: every manifest and tag read back.
	if rb, ok := st.(ReadBacker); ok {
		return pushed, c.readBack(ctx, rb, plan, tags)
	}
	return pushed, nil
}

// pushByTag reports whether plan's root can be pushed once, by its tag: the store pushes manifests by
// reference and can tell where a tag points, the image is tagged, and no referrer names the root as
// its subject (a referrer must not be pushed before its subject).
func (c *copying) pushByTag(st Store, plan *ImagePlan) bool {
	_, rp := st.(ReferencePusher)
	_, rb := st.(ReadBacker)
	if !rp || !rb || plan.Image.Tag == "" || (c.opts.Skip != nil && c.opts.Skip(plan.Root.Desc)) {
		return false
	}
	for _, r := range plan.Referrers {
		if r.Referrer != nil && r.Referrer.Subject == plan.Root.Desc.Digest {
			return false
		}
	}
	return true
}

// pushManifest pushes manifest n unless the store has it (or opts.Skip names it).
func (c *copying) pushManifest(ctx context.Context, st Store, n *Node) (bool, error) {
	if c.opts.Skip != nil && c.opts.Skip(n.Desc) {
		return false, nil
	}
	var ok bool
	err := c.retry.Do(ctx, "check manifest "+n.Desc.Digest.String()+" in "+st.Name(), func(ctx context.Context) error {
		var err error
		ok, err = st.Exists(ctx, n.Desc)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("check manifest %s: %w", n.Desc.Digest, err)
	}
	if ok {
		c.count(func(r *Report) { r.Manifests.Skipped++; r.Manifests.BytesSkipped += n.Desc.Size })
		return false, nil
	}
	err = c.retry.Do(ctx, "push manifest "+n.Desc.Digest.String()+" to "+st.Name(), func(ctx context.Context) error {
		return st.Push(ctx, n.Desc, bytes.NewReader(n.Manifest))
	})
	if err != nil {
		return false, fmt.Errorf("push manifest %s (%s): %w", n.Desc.Digest, n.Desc.MediaType, err)
	}
	c.count(func(r *Report) { r.Manifests.Pushed++; r.Manifests.BytesPushed += n.Desc.Size })
	return true, nil
}

// tag points t.tag at t.n unless it points there already.
func (c *copying) tag(ctx context.Context, st Store, t tagged) (bool, error) {
	if rb, ok := st.(ReadBacker); ok {
		if cur, err := rb.Resolve(ctx, t.tag); err == nil && cur.Digest == t.n.Desc.Digest {
			return false, nil
		}
	}
	err := c.retry.Do(ctx, "tag "+st.Name()+":"+t.tag, func(ctx context.Context) error {
		if rp, ok := st.(ReferencePusher); ok {
			return rp.PushReference(ctx, t.n.Desc, bytes.NewReader(t.n.Manifest), t.tag)
		}
		return st.Tag(ctx, t.n.Desc, t.tag)
	})
	if err != nil {
		return false, fmt.Errorf("tag %s:%s: %w", st.Name(), t.tag, err)
	}
	c.count(func(r *Report) { r.Tags++ })
	return true, nil
}

// readBack reads every manifest of plan back from the store and compares it with the source bytes,
// and checks every tag points where it was set.
func (c *copying) readBack(ctx context.Context, rb ReadBacker, plan *ImagePlan, tags []tagged) error {
	for _, n := range plan.Nodes() {
		if c.opts.Skip != nil && c.opts.Skip(n.Desc) {
			continue
		}
		var b []byte
		err := c.retry.Do(ctx, "read back manifest "+n.Desc.Digest.String(), func(ctx context.Context) error {
			var err error
			b, err = rb.FetchManifest(ctx, n.Desc)
			return err
		})
		if err != nil {
			return fmt.Errorf("%w: check on the target: %v", ErrCheckFailed, err)
		}
		if !bytes.Equal(b, n.Manifest) {
			return fmt.Errorf("%w: manifest %s on the target differs from the source", ErrCheckFailed, n.Desc.Digest)
		}
		c.count(func(r *Report) { r.Verified++ })
	}
	for _, t := range tags {
		var cur ocispec.Descriptor
		err := c.retry.Do(ctx, "resolve tag "+t.tag, func(ctx context.Context) error {
			var err error
			cur, err = rb.Resolve(ctx, t.tag)
			return err
		})
		if err != nil {
			return fmt.Errorf("%w: tag %s on the target: %v", ErrCheckFailed, t.tag, err)
		}
		if cur.Digest != t.n.Desc.Digest {
			return fmt.Errorf("%w: tag %s on the target points to %s, want %s (something else moved it)", ErrCheckFailed, t.tag, cur.Digest, t.n.Desc.Digest)
		}
	}
	return nil
}
