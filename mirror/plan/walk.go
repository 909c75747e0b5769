package plan

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/referrers"
)

// ReferrerSource tells the walker what refers to a manifest. The walker asks it of every manifest of
// an image and of every referrer found, breadth first. Sources: a registry (referrers API, tag schema,
// cosign tags; referrers_registry.go), an archive's catalog (referrers_catalog.go) and an archive's
// catalog signatures (catalogplan.go). A new source is one new file.
type ReferrerSource interface {
	// Referrers lists the referrers of subject, in the order they are to be planned.
	Referrers(ctx context.Context, subject ocispec.Descriptor) ([]referrers.Found, error)
	// Describe labels a referrer once its manifest b has been read and checked against its digest.
	// keep false leaves it out of the plan (and out of the walk: its own referrers are not asked); an
	// error refuses the whole image (a listing that its manifest contradicts).
	Describe(f referrers.Found, b []byte) (l Label, keep bool, err error)
}

// Label is what a referrer source says of one referrer.
type Label struct {
	// ArtifactType and Kind ("signature", "attestation", "sbom", "other"), from the manifest itself or
	// from a catalog that recorded them.
	ArtifactType string
	Kind         string
	// Repository, when set, is where the referrer was found, if not the walker's repository.
	Repository string
}

// referrers finds the referrers of subjects, and of every referrer found, recursively, breadth first,
// in the order src lists them under each subject. Each manifest is asked once, so cycles end; nesting
// deeper than maxDepth is refused.
func (w *walker) referrers(ctx context.Context, src ReferrerSource, subjects []*Node) ([]*Node, error) {
	var out []*Node
	asked := map[digest.Digest]bool{}
	queue := append([]*Node(nil), subjects...)
	for depth := 0; len(queue) > 0; depth++ {
		if depth > maxDepth {
			return nil, fmt.Errorf("referrers nest more than %d deep; refusing a cyclic or hostile graph", maxDepth)
		}
		var next []*Node
		for _, s := range queue {
			if asked[s.Desc.Digest] {
				continue
			}
			asked[s.Desc.Digest] = true
			found, err := src.Referrers(ctx, s.Desc)
			if err != nil {
				return nil, err
			}
			for _, f := range found {
				n, err := w.referrer(ctx, src, f)
				if err != nil {
					return nil, err
				}
				if n != nil {
					out = append(out, n)
					next = append(next, n)
					next = append(next, n.Children...)
				}
			}
		}
		queue = next
	}
	return out, nil
}

// referrer reads the manifest of f and labels it; nil when it was planned already (a manifest of the
// image itself, or a referrer found before) or when src leaves it out.
func (w *walker) referrer(ctx context.Context, src ReferrerSource, f referrers.Found) (*Node, error) {
	if _, ok := w.seen[f.Descriptor.Digest]; ok {
		return nil, nil
	}
	var sparse bool
	n, err := w.manifest(ctx, f.Descriptor, nil, 0, &sparse)
	if err != nil {
		return nil, fmt.Errorf("referrer %s of %s (%s): %w", f.Descriptor.Digest, f.Subject, f.Method, err)
	}
	l, keep, err := src.Describe(f, n.Manifest)
	if err != nil {
		return nil, fmt.Errorf("referrer %s of %s (%s): %w", f.Descriptor.Digest, f.Subject, f.Method, err)
	}
	if !keep {
		delete(w.seen, f.Descriptor.Digest)
		return nil, nil
	}
	if l.Repository != "" {
		n.Repository = l.Repository
	}
	n.ArtifactType, n.Kind = l.ArtifactType, l.Kind
	n.Desc.ArtifactType = l.ArtifactType
	n.Referrer = &f
	return n, nil
}
