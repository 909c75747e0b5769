package engine

import (
	"context"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror/plan"
)

// LayoutTarget is an OCI image layout directory (archive.Layout) as a Copy target: every image goes
// into the one layout, and is named in its index.json (each image under its source reference, each
// referrer with its subject, how it was found and its cosign tag) once Copy reaches the tag step.
// index.json itself is written by the caller (Layout.Commit), after the catalog.
type LayoutTarget struct {
	Layout *archive.Layout
}

var (
	_ Target     = (*LayoutTarget)(nil)
	_ Store      = (*layoutStore)(nil)
	_ BlobPusher = (*layoutStore)(nil)
	_ Indexer    = (*layoutStore)(nil)
)

// Store returns the layout itself, whatever the plan.
func (t *LayoutTarget) Store(context.Context, *plan.ImagePlan) (Store, error) {
	return &layoutStore{l: t.Layout}, nil
}

type layoutStore struct{ l *archive.Layout }

func (s *layoutStore) Name() string { return s.l.Root() }

func (s *layoutStore) Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	return s.l.Exists(ctx, desc)
}

func (s *layoutStore) Push(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	return s.l.Push(ctx, desc, r)
}

// ChecksOnPush is false: a layout's exists-check is a local stat.
func (s *layoutStore) ChecksOnPush(ocispec.Descriptor) bool { return false }

// PushBlob keeps a partly received blob and asks open only for the rest.
func (s *layoutStore) PushBlob(ctx context.Context, desc ocispec.Descriptor, open func(int64) (io.ReadCloser, error), _ bool) (bool, error) {
	_, err := s.l.PushResumable(ctx, desc, open)
	return false, err
}

// Index lists the image under its source reference, and each referrer, in index.json.
func (s *layoutStore) Index(_ context.Context, p *plan.ImagePlan) error {
	indexPlan(s.l, p)
	return nil
}

// indexPlan lists the image under its source reference, and each referrer, in l's index.json.
func indexPlan(l *archive.Layout, p *plan.ImagePlan) {
	root := p.Root.Desc
	root.Annotations = map[string]string{
		ocispec.AnnotationRefName:    p.Source,
		archive.AnnotationRepository: p.Root.Repository,
	}
	l.AddEntry(root)
	for _, r := range p.Referrers {
		d := r.Desc
		d.Annotations = map[string]string{
			archive.AnnotationSubject:    r.Referrer.Subject.String(),
			archive.AnnotationFoundBy:    string(r.Referrer.Method),
			archive.AnnotationRepository: r.Repository,
		}
		if r.Referrer.Tag != "" {
			d.Annotations[ocispec.AnnotationRefName] = r.Repository + ":" + r.Referrer.Tag
		}
		l.AddEntry(d)
	}
}
