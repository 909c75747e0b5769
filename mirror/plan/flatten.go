package plan

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Sparse index modes of load and copy (--sparse-index).
const (
	// SparsePush pushes a sparse index as it was saved: the target must accept an index whose
	// platform manifests are not all there.
	SparsePush = "push"
	// SparseFlatten tags the one platform manifest saved of a sparse index instead of the index.
	SparseFlatten = "flatten"
)

// FlattenReport says what flattening did to one image: the tag names the platform manifest, and the
// index, with what is attached to it, stays behind.
type FlattenReport struct {
	Source string `json:"source"`
	// Index is the digest of the sparse index as saved, not pushed.
	Index digest.Digest `json:"index"`
	// Platform and Digest name the platform manifest the tag names instead; its digest is unchanged.
	Platform string        `json:"platform"`
	Digest   digest.Digest `json:"digest"`
	// Carried counts the referrers carried with the platform manifest (its signatures, SBOMs...).
	Carried int `json:"carried"`
	// LeftBehind lists the referrers of the index (and what is attached to them), not pushed.
	LeftBehind []LeftBehind `json:"leftBehind,omitempty"`
}

// LeftBehind is one referrer of a flattened index that is not pushed.
type LeftBehind struct {
	Digest  digest.Digest `json:"digest"`
	Kind    string        `json:"kind"`
	Subject digest.Digest `json:"subject"`
}

// FlattenError refuses --sparse-index=flatten for images that saved more than one platform (or none):
// there is no one manifest to tag. Nothing has been pushed when it is returned.
type FlattenError struct {
	// Refused names each image and why.
	Refused []string
}

func (e *FlattenError) Error() string {
	return fmt.Sprintf("--sparse-index=flatten needs exactly one platform manifest saved per sparse index; nothing was pushed; refused:\n  %s\nload these with --sparse-index=push into a registry that accepts sparse indexes, or save them again with one platform each",
		strings.Join(e.Refused, "\n  "))
}

// Flatten rewrites each sparse plan (an index a platform filter left with fewer manifests) into a plan
// of its one platform manifest: the tag then names that manifest, with its digest unchanged, and only
// the referrers attached to it (recursively) are carried. The index and its referrers are left behind
// and reported. Plans that are not sparse are returned as they are. A sparse plan with more than one
// platform manifest (or none) is refused, for every such image at once, before anything is pushed.
func Flatten(plans []*ImagePlan) ([]*ImagePlan, []FlattenReport, error) {
	out := make([]*ImagePlan, 0, len(plans))
	var reports []FlattenReport
	var refused []string
	for _, p := range plans {
		if !p.Sparse || !p.Root.IsIndex() {
			out = append(out, p)
			continue
		}
		if why := Flattenable(p); why != "" {
			refused = append(refused, fmt.Sprintf("%s (index %s): %s", p.Source, p.Root.Desc.Digest, why))
			continue
		}
		fp, rep := FlattenOne(p)
		out = append(out, fp)
		reports = append(reports, rep)
	}
	if len(refused) > 0 {
		return nil, nil, &FlattenError{Refused: refused}
	}
	return out, reports, nil
}

// Flattenable says why p cannot be flattened, or "" when it can.
func Flattenable(p *ImagePlan) string {
	switch cs := p.Root.Children; {
	case len(cs) == 0:
		return "no platform manifest was saved"
	case len(cs) > 1:
		names := make([]string, len(cs))
		for i, c := range cs {
			names[i] = c.Platform
			if names[i] == "" {
				names[i] = c.Desc.Digest.String()
			}
		}
		return fmt.Sprintf("%d platform manifests were saved (%s); flatten tags one", len(cs), strings.Join(names, ", "))
	case cs[0].IsIndex():
		return "its one entry is itself an index, not a platform manifest"
	}
	return ""
}

// FlattenOne makes the plan of p's one platform manifest: the referrers whose subject is that manifest,
// or a referrer carried already, are kept, in their order; the others are left behind.
func FlattenOne(p *ImagePlan) (*ImagePlan, FlattenReport) {
	child := p.Root.Children[0]
	fp := &ImagePlan{Image: p.Image, Source: p.Source, Root: child, Content: p.Content, UnsignedName: p.UnsignedName}
	rep := FlattenReport{Source: p.Source, Index: p.Root.Desc.Digest, Platform: child.Platform, Digest: child.Desc.Digest}
	carried := map[digest.Digest]bool{}
	mark := func(n *Node) {
		for _, m := range (&ImagePlan{Root: n}).Nodes() {
			carried[m.Desc.Digest] = true
		}
	}
	mark(child)
	kept := make([]bool, len(p.Referrers))
	// Referrers come after their subjects, but a referrer of a referrer's child may not: repeat until
	// nothing more is carried.
	for changed := true; changed; {
		changed = false
		for i, r := range p.Referrers {
			if !kept[i] && r.Referrer != nil && carried[r.Referrer.Subject] {
				kept[i], changed = true, true
				mark(r)
			}
		}
	}
	for i, r := range p.Referrers {
		if kept[i] {
			fp.Referrers = append(fp.Referrers, r)
			continue
		}
		lb := LeftBehind{Digest: r.Desc.Digest, Kind: r.Kind}
		if r.Referrer != nil {
			lb.Subject = r.Referrer.Subject
		}
		rep.LeftBehind = append(rep.LeftBehind, lb)
	}
	rep.Carried = len(fp.Referrers)
	return fp, rep
}

// Flattened reports whether p is the plan of one platform manifest standing for its index (what
// Flatten makes, or what the mirror workflows find (plansOnRegistry) where a flattened image was loaded).
func (p *ImagePlan) Flattened() bool {
	return p.Root != nil && !p.Root.IsIndex() && p.Root.Platform != ""
}
