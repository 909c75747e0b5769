package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"

	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/vocab"
)

// tagged is a tag to write: the image's own, or a referrer's cosign legacy tag.
type tagged struct {
	n   *plan.Node
	tag string
	own bool // the image's own tag
}

// tagsOf lists the tags of plan, the image's own last.
func tagsOf(ip *plan.ImagePlan) []tagged {
	var tags []tagged
	for _, r := range ip.Referrers {
		if r.Referrer != nil && r.Referrer.Tag != "" {
			tags = append(tags, tagged{r, r.Referrer.Tag, false})
		}
	}
	if ip.Image.Tag != "" {
		tags = append(tags, tagged{ip.Root, ip.Image.Tag, true})
	}
	return tags
}

// copyImage runs steps 2 to 5 for one image. It reports whether anything was written.
func (c *copying) copyImage(ctx context.Context, ip *plan.ImagePlan, st Store, ir *ImageReport) (bool, error) {
	pushed := false
	push := func(n *plan.Node) error {
		wrote, err := c.pushManifest(ctx, st, n)
		pushed = pushed || wrote
		return err
	}
	// 2. The image: children before the indexes that list them. A root that is pushed by its tag
	// anyway, and that nothing else references, is pushed once, by its tag, in step 4.
	byTag := c.pushByTag(st, ip)
	for _, n := range (&plan.ImagePlan{Root: ip.Root}).Nodes() {
		if n == ip.Root && byTag {
			continue
		}
		if err := push(n); err != nil {
			return pushed, err
		}
	}
	// 3. Referrers, after their subjects (Nodes puts each referrer's own children first).
	for _, r := range ip.Referrers {
		for _, n := range (&plan.ImagePlan{Root: r}).Nodes() {
			if err := push(n); err != nil {
				return pushed, fmt.Errorf("referrer %s of %s: %w", r.Desc.Digest, r.Referrer.Subject, err)
			}
		}
	}
	// 4. Tags (or index entries), last.
	if ix, ok := st.(Indexer); ok {
		if err := ix.Index(ctx, ip); err != nil {
			return pushed, fmt.Errorf("list %s in %s: %w", ip.Source, st.Name(), err)
		}
		return pushed, nil // what an index lists is checked when the archive is read
	}
	tg, ok := st.(Tagger)
	if !ok {
		return pushed, nil // a store that names nothing keeps the content only
	}
	if len(ip.Referrers) > 0 {
		a, err := plan.Retried(ctx, c.retry, "attach referrers of "+ip.Source+" in "+st.Name(), func(ctx context.Context) (Attached, error) {
			return tg.AttachReferrers(ctx, ip)
		})
		if err != nil {
			return pushed, err
		}
		ir.ReferrersBy = a.By
		pushed = pushed || a.Changed
		c.count(func(r *Report) { r.ReferrerIndexes += a.Indexes })
	}
	tags := tagsOf(ip)
	wrote, found, err := c.tagAll(ctx, st, tg, ip, tags, byTag, ir)
	pushed = pushed || wrote
	if err != nil {
		return pushed, err
	}
	// 5. Proof: every manifest and tag read back.
	return pushed, c.readBack(ctx, tg, ip, tags, found)
}

// tagAll writes the tags of plan, counting the root as a manifest when it is pushed by its tag. It
// returns what it found at each tag: written, found right and read back whole on the way (so not
// read again), or kept.
func (c *copying) tagAll(ctx context.Context, st Store, tg Tagger, ip *plan.ImagePlan, tags []tagged, byTag bool, ir *ImageReport) (bool, map[string]tagOutcome, error) {
	pushed, found := false, map[string]tagOutcome{}
	for _, t := range tags {
		out, err := c.tag(ctx, st, tg, t, c.pre[st.Name()+":"+t.tag], ir)
		if err != nil {
			return pushed, found, err
		}
		wrote := out == tagWritten
		pushed, found[t.tag] = pushed || wrote, out
		if byTag && t.n == ip.Root {
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
	return pushed, found, nil
}

// pushByTag reports whether plan's root can be pushed once, by its tag: the store tags (Tagger), the
// image is tagged, and it has no referrers: a referrer
// must not be pushed before its subject, and no tag of the image (a cosign tag, a tag-schema index)
// may be written before the root is known to be taken, so that an image whose root the target
// refuses leaves nothing of it tagged.
func (c *copying) pushByTag(st Store, ip *plan.ImagePlan) bool {
	if _, ok := st.(Tagger); !ok || ip.Image.Tag == "" || (c.opts.Skip != nil && c.opts.Skip(ip.Root.Desc)) {
		return false
	}
	return len(ip.Referrers) == 0
}

// absentFrom reports whether manifest n cannot be in st: a blob it lists, or one a manifest it lists
// lists, was missing from st when the run began (a store does not hold a manifest without its blobs).
// Its exists-check is left out: the answer is known.
func (c *copying) absentFrom(st Store, n *plan.Node) bool {
	for _, b := range n.Blobs {
		if c.absent[blobKey(st, b.Digest)] {
			return true
		}
	}
	return slices.ContainsFunc(n.Children, func(ch *plan.Node) bool { return c.absentFrom(st, ch) })
}

// pushManifest pushes manifest n unless the store has it (or opts.Skip names it).
func (c *copying) pushManifest(ctx context.Context, st Store, n *plan.Node) (bool, error) {
	if c.opts.Skip != nil && c.opts.Skip(n.Desc) {
		return false, nil
	}
	ok := false
	if !c.absentFrom(st, n) {
		var err error
		ok, err = plan.Retried(ctx, c.retry, "check manifest "+n.Desc.Digest.String()+" in "+st.Name(), func(ctx context.Context) (bool, error) {
			return st.Exists(ctx, n.Desc)
		})
		if err != nil {
			return false, fmt.Errorf("check manifest %s: %w", n.Desc.Digest, err)
		}
	}
	if ok {
		c.count(func(r *Report) { r.Manifests.Skipped++; r.Manifests.BytesSkipped += n.Desc.Size })
		return false, nil
	}
	err := c.retry.Do(ctx, "push manifest "+n.Desc.Digest.String()+" to "+st.Name(), func(ctx context.Context) error {
		return st.Push(ctx, n.Desc, bytes.NewReader(n.Manifest))
	})
	if err != nil {
		return false, fmt.Errorf("push manifest %s (%s): %w", n.Desc.Digest, n.Desc.MediaType, explainRefusal(err, st.Name(), n, ""))
	}
	c.count(func(r *Report) { r.Manifests.Pushed++; r.Manifests.BytesPushed += n.Desc.Size })
	return true, nil
}

// tagOutcome is what tag found and did at a tag.
type tagOutcome int

const (
	tagWritten tagOutcome = iota // written now
	tagProven                    // already right: names t.n, its bytes read whole
	tagKept                      // a cosign tag whose manifest holds t.n's layers and more: left alone
)

// appended reports whether manifest a holds every layer of manifest b, in order, and more: how cosign
// adds a signature or an attestation to the manifest at a sha256-<hex>.sig/.att tag (and how the
// site's signature is added to an upstream one). Such a tag does not move: what it holds grows.
func appended(a, b []byte) bool {
	sa, err := vocab.ParseSuccessors("", a)
	if err != nil {
		return false
	}
	sb, err := vocab.ParseSuccessors("", b)
	return err == nil && len(sb.Layers) > 0 && len(sa.Layers) > len(sb.Layers) && vocab.LayersStartWith(sa.Layers, sb.Layers)
}

// tag points t.tag at t.n unless it points there already: known from the preflight (pre, for the
// image's own tag), else asked once, with the manifest's bytes, and not asked at all when t.n cannot
// be there yet. A tag that names another digest is a move, the image's own tag or a referrer's cosign
// tag alike: reported in ir, and refused with RefuseTagMoves. A cosign tag is no move where one side's
// layers were appended to the other's: one that holds t.n's layers and more is kept as it is, and t.n
// that holds the tag's layers and more is written.
func (c *copying) tag(ctx context.Context, st Store, tg Tagger, t tagged, pre *tagState, ir *ImageReport) (tagOutcome, error) {
	switch {
	case pre != nil:
		if pre.found && pre.desc.Digest == t.n.Desc.Digest && bytes.Equal(pre.b, t.n.Manifest) {
			return tagProven, nil
		}
		if pre.found && !t.own && appended(pre.b, t.n.Manifest) {
			return tagKept, nil
		}
	case !t.own || !c.absentFrom(st, t.n):
		// A referrer's cosign tag has no preflight: it is asked even when t.n cannot be there yet,
		// since it may name something else.
		cur, b, err := tg.FetchTagged(ctx, t.tag)
		switch {
		case err != nil:
		case cur.Digest == t.n.Desc.Digest && bytes.Equal(b, t.n.Manifest):
			return tagProven, nil
		case !t.own && appended(b, t.n.Manifest):
			return tagKept, nil
		case cur.Digest != t.n.Desc.Digest && ir != nil && (t.own || !appended(t.n.Manifest, b)):
			if err := c.moved(st, t, cur.Digest, ir); err != nil {
				return tagWritten, err
			}
		}
	}
	err := c.retry.Do(ctx, "tag "+st.Name()+":"+t.tag, func(ctx context.Context) error {
		return tg.PushTagged(ctx, t.n.Desc, t.n.Manifest, t.tag)
	})
	if err != nil {
		return tagWritten, fmt.Errorf("tag %s:%s: %w", st.Name(), t.tag, explainRefusal(err, st.Name(), t.n, t.tag))
	}
	c.count(func(r *Report) { r.Tags++ })
	return tagWritten, nil
}

// moved records that a tag of the image (its own, or a referrer's cosign tag) named from before this
// run; with RefuseTagMoves it refuses.
func (c *copying) moved(st Store, t tagged, from digest.Digest, ir *ImageReport) error {
	if m := c.recordMove(t, from, ir); c.opts.RefuseTagMoves {
		return errors.New(refusedMoveLate(st.Name()+":"+t.tag, m))
	}
	return nil
}

// recordMove reports in ir that t's tag named from, not t's manifest, before this run.
func (c *copying) recordMove(t tagged, from digest.Digest, ir *ImageReport) *TagMove {
	m := &TagMove{Tag: t.tag, From: from, To: t.n.Desc.Digest, Refused: c.opts.RefuseTagMoves}
	if t.own {
		ir.TagMoved = m
	} else {
		ir.ReferrerTagsMoved = append(ir.ReferrerTagsMoved, *m)
	}
	return m
}

// readBack reads every manifest of plan back from the store and compares it with the source bytes,
// and checks every tag points where it was set. A tagged manifest is read by its tag: one request
// proves both; a tag proven when it was found right is not read again. A kept cosign tag must still
// hold the manifest's layers; the manifest itself is read back by its digest.
func (c *copying) readBack(ctx context.Context, tg Tagger, ip *plan.ImagePlan, tags []tagged, found map[string]tagOutcome) error {
	viaTag := map[digest.Digest]bool{}
	for _, t := range tags {
		viaTag[t.n.Desc.Digest] = found[t.tag] != tagKept
	}
	for _, n := range ip.Nodes() {
		if (c.opts.Skip != nil && c.opts.Skip(n.Desc)) || viaTag[n.Desc.Digest] {
			continue
		}
		b, err := plan.Retried(ctx, c.retry, "read back manifest "+n.Desc.Digest.String(), func(ctx context.Context) ([]byte, error) {
			return plan.FetchManifest(ctx, tg, n.Desc)
		})
		if err != nil {
			return fmt.Errorf("%w: check on the target: %v", plan.ErrCheckFailed, err)
		}
		if !bytes.Equal(b, n.Manifest) {
			return fmt.Errorf("%w: manifest %s on the target differs from the source", plan.ErrCheckFailed, n.Desc.Digest)
		}
		c.count(func(r *Report) { r.Verified++ })
	}
	for _, t := range tags {
		if err := c.readBackTag(ctx, tg, t, found[t.tag]); err != nil {
			return err
		}
	}
	return nil
}

// readBackTag checks that t.tag points at t.n, with the manifest's bytes, and counts the manifest
// verified; or, for a kept cosign tag, that it still holds t.n's layers and more.
func (c *copying) readBackTag(ctx context.Context, tg Tagger, t tagged, found tagOutcome) error {
	cur, b := t.n.Desc, t.n.Manifest
	if found != tagProven {
		err := c.retry.Do(ctx, "resolve tag "+t.tag, func(ctx context.Context) error {
			var err error
			cur, b, err = tg.FetchTagged(ctx, t.tag)
			return err
		})
		if err != nil {
			return fmt.Errorf("%w: tag %s on the target: %v", plan.ErrCheckFailed, t.tag, err)
		}
	}
	if found == tagKept {
		if !appended(b, t.n.Manifest) {
			return fmt.Errorf("%w: tag %s on the target no longer holds the layers of %s (something else moved it)", plan.ErrCheckFailed, t.tag, t.n.Desc.Digest)
		}
		return nil
	}
	if cur.Digest != t.n.Desc.Digest {
		return fmt.Errorf("%w: tag %s on the target points to %s, want %s (something else moved it)", plan.ErrCheckFailed, t.tag, cur.Digest, t.n.Desc.Digest)
	}
	if !bytes.Equal(b, t.n.Manifest) {
		return fmt.Errorf("%w: manifest %s (tag %s) on the target differs from the source", plan.ErrCheckFailed, t.n.Desc.Digest, t.tag)
	}
	c.count(func(r *Report) { r.Verified++ })
	return nil
}
