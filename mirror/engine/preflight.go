package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// TagMove is an image's tag that named another digest on the target before this run.
type TagMove struct {
	Tag  string        `json:"tag"`
	From digest.Digest `json:"from"`
	To   digest.Digest `json:"to"`
	// Refused: --tag-moves=refuse left the tag where it was, and the image was not loaded.
	Refused bool `json:"refused,omitempty"`
}

// ErrNothingDone marks a run that wrote nothing, because of what the target answered before the
// first blob (unreachable, credentials refused).
var ErrNothingDone = errors.New("nothing could be done")

// tagState is where an image's tag pointed on the target before the first blob.
type tagState struct {
	found bool
	desc  ocispec.Descriptor
	b     []byte
}

type preflightResult struct {
	st  *tagState
	err error
}

// preflight asks the target, before the first blob and without writing, where each tag of each image
// points (its own, and its referrers' cosign tags): one GET by tag per (store, tag), a few at a time
// (Tagger). That answer says that the target is reachable and the credentials read, finds tags
// that would move (reported; refused with RefuseTagMoves, which fails the image before anything of it
// is pushed), and leaves a tag that already names its manifest alone without asking again. Images it
// cannot ask for (no tag, a store that cannot read tags) are not asked. Every image whose question
// failed fails at once; when all that were asked failed, the run stops with ErrNothingDone.
func (c *copying) preflight(ctx context.Context) error {
	c.pre = map[string]*tagState{}
	if !c.opts.Preflight {
		return nil
	}
	results := map[string]*preflightResult{} // what was read before the copy, then what is asked
	for _, r := range c.opts.TagsRead {
		results[r.Store+":"+r.Tag] = &preflightResult{st: &tagState{found: r.Found, desc: r.Desc, b: r.Manifest}}
	}
	// The tags asked of each image's store: none where the store cannot read tags or the image is
	// the base's (Skip).
	tagsAsked := func(i int) (Tagger, []tagged) {
		tr, ok := c.stores[i].(Tagger)
		if !ok || (c.opts.Skip != nil && c.opts.Skip(c.plans[i].Root.Desc)) {
			return nil, nil
		}
		return tr, tagsOf(c.plans[i])
	}
	var g errgroup.Group
	g.SetLimit(c.opts.Concurrency)
	for i := range c.plans {
		tr, tags := tagsAsked(i)
		for _, t := range tags {
			key := c.stores[i].Name() + ":" + t.tag
			if results[key] != nil {
				continue
			}
			r := &preflightResult{}
			results[key] = r
			g.Go(func() error {
				r.st, r.err = c.readTag(ctx, tr, t.tag)
				return nil
			})
		}
	}
	_ = g.Wait()
	var errs []error
	asked := 0
	for i, ip := range c.plans {
		ir := &c.report.Images[i]
		_, tags := tagsAsked(i)
		if len(tags) > 0 {
			asked++
		}
		for _, t := range tags {
			key := c.stores[i].Name() + ":" + t.tag
			r := results[key]
			if r.err != nil {
				err := explainRefusal(r.err, c.stores[i].Name(), nil, "")
				ir.Status, ir.Error = "failed", "before anything was pushed: "+err.Error()
				errs = append(errs, fmt.Errorf("%s -> %s: %w", ip.Source, ir.Target, err))
				break
			}
			c.pre[key] = r.st
			if r.st == nil || !r.st.found || r.st.desc.Digest == t.n.Desc.Digest {
				continue
			}
			if !t.own && (appended(r.st.b, t.n.Manifest) || appended(t.n.Manifest, r.st.b)) {
				continue // signatures appended at a cosign tag, there or in ours: no move (see tag)
			}
			m := c.recordMove(t, r.st.desc.Digest, ir)
			if c.opts.RefuseTagMoves && ir.Status != "failed" {
				ir.Status, ir.Error = "failed", refusedMove(key, m)
			}
		}
	}
	if asked > 0 && len(errs) == asked && asked == len(c.plans) {
		return fmt.Errorf("%w: the target answered no image before the first blob:\n  %w", ErrNothingDone, errors.Join(errs...))
	}
	return nil
}

func refusedMove(target string, m *TagMove) string {
	return fmt.Sprintf("tag %s would move from %s to %s; --tag-moves=refuse left it alone, and nothing of this image was pushed", target, m.From, m.To)
}

func refusedMoveLate(target string, m *TagMove) string {
	return fmt.Sprintf("tag %s would move from %s to %s; --tag-moves=refuse left it alone (the image's content was pushed, untagged)", target, m.From, m.To)
}

// readTag reads where reference points, with the manifest's bytes. A tag that is not there is no
// error. An answer that says nothing of the target's reach or credentials (a manifest it cannot read
// back, say) is no error either: the tag is then asked again when it is written.
func (c *copying) readTag(ctx context.Context, tr Tagger, reference string) (*tagState, error) {
	var st tagState
	err := c.retry.Do(ctx, "read tag "+reference+" on the target", func(ctx context.Context) error {
		var err error
		st.desc, st.b, err = tr.FetchTagged(ctx, reference)
		return err
	})
	var er *errcode.ErrorResponse
	var ne net.Error
	switch {
	case err == nil:
		st.found = true
		return &st, nil
	case errors.Is(err, errdef.ErrNotFound):
		return &st, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.As(err, &er) && er.StatusCode < 500 && er.StatusCode != 429 && er.StatusCode != 408 && er.StatusCode != 401 && er.StatusCode != 403:
		c.log.Debug("target tag unreadable before the run; asked again when written", "tag", reference, "err", err)
		return nil, nil
	case errors.As(err, &er), errors.As(err, &ne), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return nil, err
	}
	c.log.Debug("target tag unreadable before the run; asked again when written", "tag", reference, "err", err)
	return nil, nil
}
