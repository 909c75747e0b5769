package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/vocab"
)

// catalogOwner names the catalog, its trust files and its signatures as the owner of a blob.
const catalogOwner = "the catalog"

// VerifyContents hashes every manifest and blob the archive holds against its digest, and checks
// that index.json, the manifests and the catalog agree. It is what `verify ARCHIVE` runs.
//
// It first runs Check (index.json against the catalog). It then walks every manifest from every
// index.json entry, every image, platform and referrer the catalog lists, the catalog artifact (its
// trust files, and anything whose subject it is) and every digest of the catalog's Contents: index
// to platform manifests, manifest to config and layers, subject to referrers. Each manifest is read
// once, bounded and hashed as it is read; every other blob is then hashed once, streaming, a few at
// a time, largest first, from a directory or in place from tar volumes.
//
// What must be there: for a full archive, everything the catalog lists (Contents included), every
// blob of every manifest it holds and every platform manifest of a non-sparse index; for a delta
// (cat.Base set), only the catalog and its trust files, since whatever else it lacks its base holds
// (what a delta does hold is hashed all the same). A digest the manifests reach that the catalog's
// Contents does not list is refused.
//
// Failures are *CheckError values naming the digest and the source references of the images it
// belongs to. Blobs found right are remembered, so a later Fetch of them checks only their size.
func VerifyContents(ctx context.Context, r *Reader, cat *Catalog) error {
	if err := Check(r, cat); err != nil {
		return err
	}
	g := &contentGraph{r: r, cat: cat, nodes: map[digest.Digest]*contentNode{}, full: cat.Base == "", contents: make(map[digest.Digest]bool, len(cat.Contents))}
	for _, d := range cat.Contents {
		g.contents[d] = true
	}
	if err := g.walk(ctx); err != nil {
		return err
	}
	if err := g.agree(); err != nil {
		return err
	}
	if err := hashInParallel(ctx, r, g.blobs(), func(d digest.Digest) []string { return g.owners(d) }); err != nil {
		return err
	}
	done := make([]digest.Digest, 0, len(g.nodes))
	for d, n := range g.nodes {
		if n.present {
			done = append(done, d)
		}
	}
	r.markChecked(done)
	return nil
}

// contentNode is one digest of the archive's graph.
type contentNode struct {
	desc     ocispec.Descriptor // Size -1: not known from any descriptor (listed only in Contents)
	manifest bool
	// required: the archive must hold it; what: what it is, for messages.
	required bool
	what     string
	present  bool
	read     bool // a manifest read (and hashed) by walk
	// bad, when set, says why the manifest read by walk is wrong (reported by agree, with owners).
	bad      string
	children []digest.Digest
	// referrers are the manifests whose subject this is.
	referrers []digest.Digest
	labels    map[string]bool
}

type contentGraph struct {
	r     *Reader
	cat   *Catalog
	full  bool
	nodes map[digest.Digest]*contentNode
	queue []digest.Digest
	// contents is the catalog's Contents as a set.
	contents map[digest.Digest]bool
}

// add records desc, reached as what; a manifest is queued to be read.
func (g *contentGraph) add(desc ocispec.Descriptor, manifest, required bool, what string) (*contentNode, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, checkErr("%s: %s names an invalid digest %q: %s", g.r.Path, what, desc.Digest, damaged)
	}
	n, ok := g.nodes[desc.Digest]
	if !ok {
		n = &contentNode{desc: ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}, what: what}
		g.nodes[desc.Digest] = n
	}
	switch {
	case n.desc.Size < 0 && desc.Size >= 0:
		n.desc.Size = desc.Size
		n.what = what
	case desc.Size >= 0 && n.desc.Size != desc.Size:
		return nil, &CheckError{Msg: fmt.Sprintf("%s: %s gives %s a size of %d bytes, another descriptor says %d: %s", g.r.Path, what, desc.Digest, desc.Size, n.desc.Size, damaged), Digest: desc.Digest}
	}
	if n.desc.MediaType == "" {
		n.desc.MediaType = desc.MediaType
	}
	n.required = n.required || required
	if manifest && !n.manifest {
		n.manifest = true
		g.queue = append(g.queue, desc.Digest)
	}
	return n, nil
}

// walk reads every manifest reachable from the catalog and index.json.
func (g *contentGraph) walk(ctx context.Context) error {
	full, cat := g.full, g.cat
	var catalog ocispec.Descriptor
	for _, d := range g.r.Index.Manifests {
		name := d.Annotations[ocispec.AnnotationRefName]
		if name == CatalogRefName {
			catalog = d
			if _, err := g.add(d, true, true, "catalog manifest"); err != nil {
				return err
			}
			continue
		}
		what := "index.json entry " + d.Digest.String()
		if name != "" {
			what = "index.json entry " + name
		}
		n, err := g.add(d, true, full, what)
		if err != nil {
			return err
		}
		if s := d.Annotations[AnnotationSubject]; s != "" {
			if sd := digest.Digest(s); sd.Validate() == nil {
				g.referrer(sd, n.desc.Digest)
			}
		}
	}
	if catalog.Digest == "" {
		return fmt.Errorf("%s: %w", g.r.Path, ErrNoCatalog)
	}
	for _, l := range cat.listed() {
		n, err := g.add(l.desc, l.manifest, full || !l.manifest, l.what)
		if err != nil {
			return err
		}
		if l.subject.Validate() == nil {
			g.referrer(l.subject, n.desc.Digest)
		}
	}
	for len(g.queue) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := g.queue[0]
		g.queue = g.queue[1:]
		if err := g.readManifest(d, d == catalog.Digest); err != nil {
			return err
		}
	}
	// Contents last, so that what the manifests say about each digest (its size, what it is) wins.
	for _, d := range cat.Contents {
		if n, ok := g.nodes[d]; ok {
			n.required = n.required || full
			if n.what == "subject" {
				n.what = "blob listed in the catalog's contents"
			}
			continue
		}
		if _, err := g.add(ocispec.Descriptor{Digest: d, Size: -1}, false, full, "blob listed in the catalog's contents"); err != nil {
			return err
		}
	}
	return nil
}

// referrer records that the manifest ref refers to subject.
func (g *contentGraph) referrer(subject, ref digest.Digest) {
	s, ok := g.nodes[subject]
	if !ok {
		s = &contentNode{desc: ocispec.Descriptor{Digest: subject, Size: -1}, what: "subject"}
		g.nodes[subject] = s
	}
	if !slices.Contains(s.referrers, ref) {
		s.referrers = append(s.referrers, ref)
	}
}

// readManifest reads the manifest d (hashing it as it is read) and adds what it names.
func (g *contentGraph) readManifest(d digest.Digest, isCatalog bool) error {
	n := g.nodes[d]
	limit := int64(MaxManifestSize)
	if isCatalog {
		limit = maxCatalogSize
	}
	if n.desc.Size < 0 || n.desc.Size > limit {
		return &CheckError{Msg: fmt.Sprintf("%s: %s (%s) is %d bytes, over the %d-byte limit for a manifest: %s", g.r.Path, n.what, d, n.desc.Size, limit, damaged), Digest: d}
	}
	f, err := g.r.fsys.Open(blobName(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // absent: agree decides whether it had to be there
	}
	if err != nil {
		return fileErr(g.r, d, n.what, nil, err)
	}
	b, err := io.ReadAll(io.LimitReader(f, n.desc.Size+1))
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %s (%s): %w", g.r.Path, n.what, d, err)
	}
	n.present, n.read = true, true
	if int64(len(b)) != n.desc.Size {
		n.bad = fmt.Sprintf("is %d bytes or more in the archive, its descriptor says %d", len(b), n.desc.Size)
		return nil
	}
	if got := d.Algorithm().FromBytes(b); got != d {
		n.bad = fmt.Sprintf("does not hash to its name (its bytes hash to %s)", got)
		return nil
	}
	m, err := vocab.ParseSuccessors(n.desc.MediaType, b)
	if err != nil {
		return &CheckError{Msg: fmt.Sprintf("%s: %s %s is not a manifest: %v: %s", g.r.Path, n.what, d, err, damaged), Digest: d}
	}
	if m.Index {
		for _, c := range m.Manifests {
			// A platform filter leaves platform manifests out (a sparse index): those the catalog's
			// Contents lists must be there, the others may be missing.
			required := g.full && (len(g.contents) == 0 || g.contents[c.Digest])
			cn, err := g.add(c, true, required, "platform manifest of index "+d.String())
			if err != nil {
				return err
			}
			n.children = append(n.children, cn.desc.Digest)
		}
	} else {
		for i, b := range m.Blobs() {
			what := "layer of manifest " + d.String()
			if i == 0 && m.Config != nil {
				what = "config of manifest " + d.String()
			}
			// Blobs of a manifest the archive holds are in it, unless it is a delta.
			cn, err := g.add(b, false, g.full || isCatalog, what)
			if err != nil {
				return err
			}
			n.children = append(n.children, cn.desc.Digest)
		}
	}
	if m.Subject != nil && m.Subject.Digest.Validate() == nil {
		g.referrer(m.Subject.Digest, d)
	}
	return nil
}

// agree labels each digest with the images it belongs to and checks that the archive holds what it
// must and that the catalog's Contents lists every digest of the images.
func (g *contentGraph) agree() error {
	label := func(start digest.Digest, name string) {
		stack := []digest.Digest{start}
		for len(stack) > 0 {
			d := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			n, ok := g.nodes[d]
			if !ok || n.labels[name] {
				continue
			}
			if n.labels == nil {
				n.labels = map[string]bool{}
			}
			n.labels[name] = true
			stack = append(stack, n.children...)
			stack = append(stack, n.referrers...)
		}
	}
	for _, img := range g.cat.Images {
		label(img.Digest, img.Source)
	}
	for _, d := range g.r.Index.Manifests {
		if d.Annotations[ocispec.AnnotationRefName] == CatalogRefName {
			label(d.Digest, catalogOwner)
		}
	}
	for _, f := range g.cat.Trust.files() {
		label(f.Digest, catalogOwner)
	}
	contents := g.contents
	ds := make([]digest.Digest, 0, len(g.nodes))
	for d := range g.nodes {
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	for _, d := range ds {
		n := g.nodes[d]
		if n.bad != "" {
			return &CheckError{Msg: fmt.Sprintf("%s: manifest %s %s; it is the %s%s: %s", g.r.Path, d, n.bad, n.what, ownedBy(g.owners(d)), damaged), Digest: d, Images: g.owners(d)}
		}
		if n.desc.Size < 0 && n.what == "subject" {
			continue // only ever named as a subject: not content of this archive
		}
		if !n.manifest && !n.present {
			fi, err := fs.Stat(g.r.fsys, blobName(d))
			switch {
			case errors.Is(err, fs.ErrNotExist):
			case err != nil:
				return fileErr(g.r, d, n.what, g.owners(d), err)
			default:
				n.present = true
				if n.desc.Size < 0 {
					n.desc.Size = fi.Size()
				}
				if fi.Size() != n.desc.Size {
					return &CheckError{Msg: fmt.Sprintf("%s: %s is %d bytes in the archive, its descriptor says %d: %s", g.r.Path, n.what, fi.Size(), n.desc.Size, damaged), Digest: d, Images: g.owners(d)}
				}
			}
		}
		if n.required && !n.present {
			return &CheckError{Msg: fmt.Sprintf("%s: the archive lacks %s (%s%s), which it must hold: the archive is incomplete, damaged or was altered; copy it again from the connected side", g.r.Path, n.what, d, ownedBy(g.owners(d))), Digest: d, Images: g.owners(d)}
		}
		// Every digest of an image the archive holds must be in the catalog's Contents (the catalog
		// and its own signatures are not: they cannot list themselves).
		if len(contents) > 0 && n.present && !contents[d] && !n.labels[catalogOwner] && len(n.labels) > 0 {
			return &CheckError{Msg: fmt.Sprintf("%s: the manifests and the catalog disagree: %s (%s%s) is not in the catalog's contents: %s", g.r.Path, n.what, d, ownedBy(g.owners(d)), damaged), Digest: d, Images: g.owners(d)}
		}
	}
	return nil
}

// fileErr reports a blob that could not be opened or read: a refused file (a *CheckError, which
// then names d and its images), or an I/O error.
func fileErr(r *Reader, d digest.Digest, what string, owners []string, err error) error {
	var ce *CheckError
	if errors.As(err, &ce) {
		return &CheckError{Msg: fmt.Sprintf("%s (%s %s%s)", ce.Msg, what, d, ownedBy(owners)), Digest: d, Images: owners}
	}
	return fmt.Errorf("%s: %s %s: %w", r.Path, what, d, err)
}

// owners lists the images d belongs to, sorted.
func (g *contentGraph) owners(d digest.Digest) []string {
	n, ok := g.nodes[d]
	if !ok {
		return nil
	}
	out := make([]string, 0, len(n.labels))
	for l := range n.labels {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

func ownedBy(owners []string) string {
	switch {
	case len(owners) == 0:
		return ", of no image the catalog lists"
	case len(owners) > 3:
		return fmt.Sprintf(", of %s and %d more", strings.Join(owners[:3], ", "), len(owners)-3)
	}
	return ", of " + strings.Join(owners, ", ")
}

// blobs lists what is left to hash: every present blob not read as a manifest, largest first.
func (g *contentGraph) blobs() []hashJob {
	var jobs []hashJob
	for d, n := range g.nodes {
		if !n.present || n.read {
			continue
		}
		// Hashed whole already and found right (tar volumes are hashed blob by blob as they are
		// opened): only its size against the descriptor is left to check, and a stat tells that.
		if g.r.isChecked(d) {
			if fi, err := fs.Stat(g.r.fsys, blobName(d)); err == nil && fi.Size() == n.desc.Size {
				continue
			}
		}
		jobs = append(jobs, hashJob{d: d, size: n.desc.Size, what: n.what})
	}
	sort.Slice(jobs, func(i, j int) bool {
		if jobs[i].size != jobs[j].size {
			return jobs[i].size > jobs[j].size
		}
		return jobs[i].d < jobs[j].d
	})
	return jobs
}
