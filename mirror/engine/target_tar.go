package engine

import (
	"context"
	"fmt"
	"io"
	"os"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror/plan"
)

// TarTarget is tar volumes (NAME.tar, or NAME.tar.000, .001, ... with a volume list) as a Copy target.
//
// Blobs and manifests go straight into the volumes (archive.TarWriter): each has a slot at a fixed
// offset of the tar stream, planned from the save's plans before the first byte, so blobs fetched
// together are written together, each hashed once against its digest as it streams in. Nothing is
// written twice. What is small and comes after the copy (index.json entries, trust files, the catalog
// and its signature) is kept in a staging layout (NAME.tar.staging) that Finish appends after the
// slots, index.json last, before the volume list (with Sums, each volume's sha256, read back once the
// volumes are written).
//
// Resume: the volumes stay as NAME.tar.NNN.partial with a journal in the staging directory (what each
// slot holds, how far a partly written blob got); a killed save run again with the same plans keeps
// them, hashes again what it keeps, and fetches only the rest (a partial blob from its offset). A blob
// that fails its digest is cut back out of its slot. A different plan or volume size starts over.
type TarTarget struct {
	// Layout is the staging layout: index.json entries and the files written after Copy.
	Layout *archive.Layout
	// Sums makes Finish write each volume's sha256 into the volume list (save --volume-sums).
	Sums bool
	out  string
	dir  string
	w    *archive.TarWriter
}

var (
	_ Target     = (*TarTarget)(nil)
	_ BlobPusher = (*tarStore)(nil)
	_ Indexer    = (*tarStore)(nil)
)

// NewTarTarget opens the tar of out (NAME.tar) in volumes of volumeSize bytes (0: one file), with a
// slot for each of content, reusing what an earlier run of the same content left.
func NewTarTarget(out string, volumeSize int64, content []ocispec.Descriptor) (*TarTarget, error) {
	dir := out + ".staging"
	layout, err := archive.CreateLayout(dir)
	if err != nil {
		return nil, err
	}
	w, err := archive.OpenTarWriter(out, volumeSize, dir, content)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", out, err)
	}
	return &TarTarget{Layout: layout, out: out, dir: dir, w: w}, nil
}

// Store returns the one store of the tar, whatever the plan.
func (t *TarTarget) Store(context.Context, *plan.ImagePlan) (Store, error) { return &tarStore{t}, nil }

// Finish appends the staging layout's files and index.json into the volumes, then writes the volume
// list, and removes the staging layout. Call it after Layout.Commit.
func (t *TarTarget) Finish(ctx context.Context) ([]archive.Volume, error) {
	w := t.w
	t.w = nil
	w.Sums = t.Sums
	vols, err := w.Finish(ctx, t.dir)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("write %s: %w", t.out, err)
	}
	t.Layout.Discard()
	if err := os.RemoveAll(t.dir); err != nil {
		return nil, err
	}
	return vols, nil
}

// Abort stops writing and keeps the partial volumes and the staging layout for the next run. It does
// nothing after Finish.
func (t *TarTarget) Abort() {
	if t.w != nil {
		t.w.Close()
		t.w = nil
	}
}

// tarStore puts planned content into the volumes and anything else into the staging layout.
type tarStore struct{ t *TarTarget }

func (s *tarStore) Name() string { return s.t.out }

func (s *tarStore) Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	if s.t.w.Planned(desc) {
		return s.t.w.Exists(ctx, desc)
	}
	return s.t.Layout.Exists(ctx, desc)
}

func (s *tarStore) Push(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	if s.t.w.Planned(desc) {
		return s.t.w.Push(ctx, desc, r)
	}
	return s.t.Layout.Push(ctx, desc, r)
}

// ChecksOnPush is false: the tar's exists-check is local.
func (s *tarStore) ChecksOnPush(ocispec.Descriptor) bool { return false }

// PushBlob writes a planned blob into its slot, anything else into the staging layout, asking open
// only for what an earlier run did not write.
func (s *tarStore) PushBlob(ctx context.Context, desc ocispec.Descriptor, open func(int64) (io.ReadCloser, error), _ bool) (bool, error) {
	var err error
	if s.t.w.Planned(desc) {
		_, err = s.t.w.PushResumable(ctx, desc, open)
	} else {
		_, err = s.t.Layout.PushResumable(ctx, desc, open)
	}
	return false, err
}

// Index lists the image under its source reference, and each referrer, in index.json.
func (s *tarStore) Index(_ context.Context, p *plan.ImagePlan) error {
	indexPlan(s.t.Layout, p)
	return nil
}

// TarContent lists what a tar save of plans writes into slots: every manifest and blob not in the
// base, in the order the copy writes them (blobs as copyBlobs lists them, then the manifests, each
// image's children first), so that the tar's slots fill front to back (archive.TarWriter).
func TarContent(plans []*plan.ImagePlan, inBase func(ocispec.Descriptor) bool) []ocispec.Descriptor {
	var blobs, manifests []ocispec.Descriptor
	for _, p := range plans {
		for _, n := range p.Nodes() {
			if !inBase(n.Desc) {
				manifests = append(manifests, n.Desc)
			}
			for _, d := range n.Blobs {
				if !inBase(d) {
					blobs = append(blobs, d)
				}
			}
		}
	}
	return append(blobs, manifests...)
}
