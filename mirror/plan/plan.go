package plan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/referrers"
	"airlock.dev/airlock/registry"
	"airlock.dev/airlock/vocab"
)

// maxDepth bounds how deeply indexes and referrers may nest.
const maxDepth = 16

// ErrCheckFailed marks a failed check (a moved tag, a digest mismatch), as opposed to a usage or I/O
// error.
var ErrCheckFailed = errors.New("check failed")

// CheckFailed marks err as a failed check (it matches ErrCheckFailed; exit status 1), keeping its
// message.
func CheckFailed(err error) error { return &checkFailed{err} }

type checkFailed struct{ err error }

func (e *checkFailed) Error() string        { return e.err.Error() }
func (e *checkFailed) Unwrap() error        { return e.err }
func (e *checkFailed) Is(target error) bool { return target == ErrCheckFailed }

// Source reads one repository.
type Source interface {
	Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error)
	Resolve(ctx context.Context, reference string) (ocispec.Descriptor, error)
}

// Node is one manifest of the plan with what it needs.
type Node struct {
	// Desc names the manifest: media type, digest, size (and artifactType for referrers).
	Desc ocispec.Descriptor
	// Manifest holds its bytes, exactly as the source served them.
	Manifest []byte
	// Repository is the source repository ("host/path").
	Repository string
	// Blobs are the config and layers of an image manifest.
	Blobs []ocispec.Descriptor
	// Children are the manifests of an index that are moved (all, or the platforms chosen).
	Children []*Node
	// Platform is set on the platform manifests of an index ("linux/amd64").
	Platform string
	// Referrer is set when the node was found as a referrer.
	Referrer *referrers.Found
	// ArtifactType and Kind, for referrers: read from the manifest itself.
	ArtifactType string
	Kind         string
}

// IsIndex reports whether the node is an index (OCI image index or Docker manifest list).
func (n *Node) IsIndex() bool { return vocab.IsIndex(n.Desc.MediaType) }

// ImagePlan is what moving one image involves.
type ImagePlan struct {
	Image config.Image
	// Source is the reference as resolved, e.g. registry.example.com/team/app:1.4.2.
	Source string
	Root   *Node
	// Referrers lists every referrer found, recursively, in discovery order.
	Referrers []*Node
	// Sparse is true when a platform filter left manifests of the index out.
	Sparse bool

	// Content is where the plan's blobs are read from: the source registry or the archive.
	Content Source
	// UnsignedName: the image's name comes from a catalog no pinned key signed and its source host is
	// not kept on the target; its policy rule is chosen under any host (verify.Image.AnyHost).
	UnsignedName bool
	// Made: airlock made the root manifest (the OCI artifact of a chart from an HTTP chart
	// repository); no registry serves it, so it is never pinned as an image of the image set.
	Made bool
}

// Nodes returns every manifest of the plan, each once, children before the manifests that reference
// them, and referrers after their subjects.
func (p *ImagePlan) Nodes() []*Node {
	var out []*Node
	seen := map[digest.Digest]bool{}
	var visit func(n *Node)
	visit = func(n *Node) {
		if seen[n.Desc.Digest] {
			return
		}
		seen[n.Desc.Digest] = true
		for _, c := range n.Children {
			visit(c)
		}
		out = append(out, n)
	}
	visit(p.Root)
	for _, r := range p.Referrers {
		visit(r)
	}
	return out
}

// registrySource is a source registry repository as a plan's content: a resumed blob is read from
// its offset with one Range request (RangeFetcher, registry.FetchFrom).
type registrySource struct{ *remote.Repository }

func (s registrySource) FetchFrom(ctx context.Context, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	return registry.FetchFrom(ctx, s.Repository, desc, offset)
}

// Planner resolves images and discovers what is attached to them.
type Planner struct {
	Registries *registry.Registries
	Referrers  config.Referrers
	Log        *slog.Logger
	// Retry bounds retries of failed requests; zero means registry.DefaultRetry.
	Retry registry.Retry
	// Local, if set, is tried first for manifests by digest (the output of an earlier save): content
	// addressing makes a stored manifest as good as a fetched one. Tags and referrers are always
	// asked of the registry.
	Local Source

	mu    sync.Mutex
	discs map[string]*discovery
	// roots holds the roots already resolved, by image reference (an OCI chart's, read to render
	// it): Plan saves the root that was rendered, with no second request. Written before Plan runs.
	roots map[string]resolved
}

// resolved is a root as resolve found it.
type resolved struct {
	desc ocispec.Descriptor
	b    []byte
}

func (p *Planner) retry() registry.Retry {
	if p == nil {
		return registry.DefaultRetry
	}
	return p.Retry.OrDefault()
}

// Retried is r.Do for an operation with a result: what fn returned on its last attempt, and r.Do's
// error.
func Retried[T any](ctx context.Context, r registry.Retry, what string, fn func(context.Context) (T, error)) (T, error) {
	var v T
	err := r.Do(ctx, what, func(ctx context.Context) error {
		var err error
		v, err = fn(ctx)
		return err
	})
	return v, err
}

// Plan resolves img in its source registry and walks its graph.
func (p *Planner) Plan(ctx context.Context, img config.Image) (*ImagePlan, error) {
	repoName := img.RepositoryRef()
	repo, err := p.Registries.Repository(repoName)
	if err != nil {
		return nil, err
	}
	root, rootBytes, err := p.rootOf(ctx, repo, img)
	if err != nil {
		return nil, err
	}
	ip := &ImagePlan{Image: img, Source: img.String(), Content: registrySource{repo}}
	w := &walker{planner: p, repo: fetched{Source: repo, desc: root, b: rootBytes}, repoName: repoName, seen: map[digest.Digest]*Node{}}
	ip.Root, err = w.manifest(ctx, root, img.Platforms, 0, &ip.Sparse)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", img, err)
	}
	if p.Referrers.Enabled {
		src, err := p.referrerSource(ctx, repoName)
		if err != nil {
			return nil, err
		}
		ip.Referrers, err = w.referrers(ctx, src, ip.Nodes())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", img, err)
		}
	}
	return ip, nil
}

// rootOf is the root resolve found for img before (p.roots), or resolves it now.
func (p *Planner) rootOf(ctx context.Context, repo Source, img config.Image) (ocispec.Descriptor, []byte, error) {
	if r, ok := p.roots[img.String()]; ok {
		return r.desc, r.b, nil
	}
	return p.resolve(ctx, repo, img)
}

// resolve finds the root descriptor of img: by tag, by digest, or by tag checked against the digest.
// Where the source fetches by reference (a registry) it is one GET, whose bytes are checked against
// the digest the registry names and returned, so that the walker does not fetch the root again.
func (p *Planner) resolve(ctx context.Context, repo Source, img config.Image) (ocispec.Descriptor, []byte, error) {
	where := ""
	if img.Line > 0 {
		where = fmt.Sprintf(" (ImageSet line %d)", img.Line)
	}
	ref := img.Tag
	if ref == "" {
		ref = img.Digest.String()
	}
	d, b, err := p.fetchReference(ctx, repo, ref)
	switch {
	case errors.Is(err, errdef.ErrNotFound) && img.Tag != "":
		return d, nil, fmt.Errorf("%s: tag %q not found in %s%s; check the name and tag", img, img.Tag, img.RepositoryRef(), where)
	case errors.Is(err, errdef.ErrNotFound):
		return d, nil, fmt.Errorf("%s: digest %s does not exist in %s%s; check the digest and the repository", img, img.Digest, img.RepositoryRef(), where)
	case err != nil:
		return d, nil, fmt.Errorf("resolve %s: %w", img, err)
	case img.Tag != "" && img.Digest != "" && d.Digest != img.Digest:
		return d, nil, fmt.Errorf("%s: tag %q now points to %s, but %s was pinned%s: the tag moved; update the pinned digest, or drop the tag to use the pinned image: %w", img, img.Tag, d.Digest, img.Digest, where, ErrCheckFailed)
	case img.Tag == "" && d.Digest != img.Digest:
		return d, nil, fmt.Errorf("%s: the registry serves %s for digest %s%s: %w", img, d.Digest, img.Digest, where, ErrCheckFailed)
	}
	return d, b, nil
}

// walker walks the manifests of one image in one repository.
type walker struct {
	planner  *Planner
	repo     Source
	repoName string
	seen     map[digest.Digest]*Node
	// present, when set, says whether a manifest is available; index entries that are not are left
	// out and the plan marked sparse (an archive saved with a platform filter).
	present func(ocispec.Descriptor) bool
}

// manifest fetches desc and, for an index, the platform manifests chosen.
func (w *walker) manifest(ctx context.Context, desc ocispec.Descriptor, platforms []config.Platform, depth int, sparse *bool) (*Node, error) {
	if n, ok := w.seen[desc.Digest]; ok {
		return n, nil
	}
	if depth > maxDepth {
		return nil, fmt.Errorf("manifest %s: indexes nest more than %d deep; refusing a cyclic or hostile graph", desc.Digest, maxDepth)
	}
	var b []byte
	if w.planner != nil && w.planner.Local != nil && desc.Size > 0 {
		b, _ = FetchManifest(ctx, w.planner.Local, desc) // any failure: fetch it from the registry
	}
	if b == nil {
		var err error
		b, err = Retried(ctx, w.planner.retry(), "manifest "+desc.Digest.String()+" of "+w.repoName, func(ctx context.Context) ([]byte, error) {
			return FetchManifest(ctx, w.repo, desc)
		})
		if err != nil {
			return nil, err
		}
	}
	succ, err := vocab.ParseSuccessors(desc.MediaType, b)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	desc.MediaType = succ.MediaType
	n := &Node{Desc: ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}, Manifest: b, Repository: w.repoName}
	w.seen[desc.Digest] = n
	switch {
	case vocab.IsIndex(desc.MediaType):
		for _, m := range succ.Manifests {
			if (len(platforms) > 0 && !wanted(m.Platform, platforms)) || (w.present != nil && !w.present(m)) {
				*sparse = true
				continue
			}
			child, err := w.manifest(ctx, m, nil, depth+1, sparse)
			if err != nil {
				return nil, err
			}
			if m.Platform != nil && child.Platform == "" {
				child.Platform = config.Platform{OS: m.Platform.OS, Architecture: m.Platform.Architecture, Variant: m.Platform.Variant}.String()
			}
			n.Children = append(n.Children, child)
		}
	case vocab.IsManifest(desc.MediaType):
		n.Blobs = succ.Blobs()
		for _, bd := range n.Blobs {
			if err := bd.Digest.Validate(); err != nil {
				return nil, fmt.Errorf("manifest %s lists an invalid digest %q", desc.Digest, bd.Digest)
			}
		}
	default:
		return nil, fmt.Errorf("manifest %s: media type %q is not supported (OCI and Docker v2 manifests and indexes are)", desc.Digest, desc.MediaType)
	}
	return n, nil
}

// FetchManifest reads desc, bounded, and checks its size and digest.
func FetchManifest(ctx context.Context, src content.Fetcher, desc ocispec.Descriptor) ([]byte, error) {
	b, err := archive.ReadVerified(ctx, src, desc, archive.MaxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	return b, nil
}

func wanted(p *ocispec.Platform, want []config.Platform) bool {
	if p == nil {
		return false
	}
	for _, w := range want {
		if w.Matches(p.OS, p.Architecture, p.Variant) {
			return true
		}
	}
	return false
}

// Progress hears about bytes as they move. Implementations must be safe for concurrent use.
type Progress interface {
	// Start announces the total number of bytes to move.
	Start(total int64)
	// Add reports n more bytes moved.
	Add(n int64)
	// Finish ends the display.
	Finish()
}
