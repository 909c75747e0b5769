package plan

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/memory"

	"airlock.dev/airlock/config"
	"airlock.dev/airlock/registry"
	"airlock.dev/airlock/vocab"
)

// bySource serves manifests by digest alone (whatever size the descriptor says) and counts what it
// is asked for.
type bySource struct {
	mu    sync.Mutex
	b     map[digest.Digest][]byte
	asked map[digest.Digest]int
}

func newBySource() *bySource {
	return &bySource{b: map[digest.Digest][]byte{}, asked: map[digest.Digest]int{}}
}

func (s *bySource) add(b []byte) ocispec.Descriptor {
	d := digest.FromBytes(b)
	s.b[d] = b
	succ, _ := vocab.ParseSuccessors("", b)
	return ocispec.Descriptor{MediaType: succ.MediaType, Digest: d, Size: int64(len(b))}
}

func (s *bySource) Fetch(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked[desc.Digest]++
	b, ok := s.b[desc.Digest]
	if !ok {
		return nil, fmt.Errorf("%s: not found", desc.Digest)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (s *bySource) Resolve(context.Context, string) (ocispec.Descriptor, error) {
	return ocispec.Descriptor{}, fmt.Errorf("no tags")
}

// walkOne walks desc with the platforms given, from repo, and returns the node and whether the plan
// is sparse.
func walkOne(t *testing.T, p *Planner, repo Source, desc ocispec.Descriptor, platforms []config.Platform) (*Node, bool, error) {
	t.Helper()
	w := &walker{planner: p, repo: repo, repoName: "test/image", seen: map[digest.Digest]*Node{}}
	var sparse bool
	n, err := w.manifest(context.Background(), desc, platforms, 0, &sparse)
	return n, sparse, err
}

// Indexes nested exactly maxDepth deep are walked to the bottom; one level more is refused, naming
// the bound.
func TestWalkerIndexDepthBound(t *testing.T) {
	for _, depth := range []int{maxDepth, maxDepth + 1} {
		g := newWalkGraph(t)
		g.Add("leaf")
		prev := "leaf"
		for i := 1; i <= depth; i++ { // the leaf ends up depth levels under the root
			name := fmt.Sprintf("index%d", i)
			g.addIndex(name, prev)
			prev = name
		}
		n, _, err := walkOne(t, nil, g.store, g.desc[prev], nil)
		if depth > maxDepth {
			want := fmt.Sprintf("manifest %s: indexes nest more than 16 deep; refusing a cyclic or hostile graph", g.desc["leaf"].Digest)
			if err == nil || err.Error() != want {
				t.Errorf("indexes %d deep: error %v, want %q", depth, err, want)
			}
			continue
		}
		if err != nil {
			t.Fatalf("indexes %d deep: %v", depth, err)
		}
		levels := 0
		for ; len(n.Children) == 1; n = n.Children[0] {
			levels++
		}
		if levels != depth || n.Desc.Digest != g.desc["leaf"].Digest {
			t.Errorf("indexes %d deep: walked %d levels down to %s, want %d down to the leaf", depth, levels, g.name[n.Desc.Digest], depth)
		}
	}
}

// With no platforms asked for, every manifest of an index is walked and the plan is whole; with
// some, only theirs, and the plan is sparse.
func TestWalkerPlatformFilter(t *testing.T) {
	g := newWalkGraph(t)
	amd := g.Add("amd64")
	arm := g.Add("arm64")
	amd.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm.Platform = &ocispec.Platform{OS: "linux", Architecture: "arm64"}
	g.desc["amd64"], g.desc["arm64"] = amd, arm
	idx := g.addIndex("index", "amd64", "arm64")
	for _, tc := range []struct {
		platforms  []config.Platform
		want       []string
		wantSparse bool
	}{
		{nil, []string{"linux/amd64", "linux/arm64"}, false},
		{[]config.Platform{}, []string{"linux/amd64", "linux/arm64"}, false},
		{[]config.Platform{{OS: "linux", Architecture: "arm64"}}, []string{"linux/arm64"}, true},
	} {
		n, sparse, err := walkOne(t, nil, g.store, idx, tc.platforms)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range n.Children {
			got = append(got, c.Platform)
		}
		if !slices.Equal(got, tc.want) || sparse != tc.wantSparse {
			t.Errorf("platforms %v: children %v, sparse %v; want %v, sparse %v", tc.platforms, got, sparse, tc.want, tc.wantSparse)
		}
	}
}

// A descriptor without a media type takes the one its manifest names: an index so named is walked
// as an index.
func TestWalkerMediaTypeFromTheManifest(t *testing.T) {
	g := newWalkGraph(t)
	g.Add("image")
	idx := g.addIndex("index", "image")
	src := newBySource() // by digest alone: the memory store keys on the media type too
	b, err := FetchManifest(context.Background(), g.store, idx)
	if err != nil {
		t.Fatal(err)
	}
	src.add(b)
	ib, err := FetchManifest(context.Background(), g.store, g.desc["image"])
	if err != nil {
		t.Fatal(err)
	}
	src.add(ib)
	bare := idx
	bare.MediaType = ""
	n, _, err := walkOne(t, nil, src, bare, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.Desc.MediaType != ocispec.MediaTypeImageIndex || len(n.Children) != 1 || n.Children[0].Desc.Digest != g.desc["image"].Digest {
		t.Errorf("media type %q, %d children; want %s with the image under it", n.Desc.MediaType, len(n.Children), ocispec.MediaTypeImageIndex)
	}
}

// A manifest the local copy holds is read from it, not from the registry; only a descriptor with a
// size is looked up locally (size 0, unknown, always asks the registry).
func TestWalkerReadsLocalFirst(t *testing.T) {
	g := newWalkGraph(t)
	d := g.Add("image")
	b, err := FetchManifest(context.Background(), g.store, d)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{d.Size, 1, 0} {
		local, remote := newBySource(), newBySource()
		local.add(b)
		remote.add(b)
		desc := d
		desc.Size = size
		n, _, err := walkOne(t, &Planner{Local: local, Retry: registry.Retry{Attempts: 1}}, remote, desc, nil)
		wantLocal, wantRemote := 1, 0
		switch size {
		case 1: // asked locally, which fails the size check; so does the registry's, checked the same way
			if err == nil || !strings.Contains(err.Error(), "the descriptor says 1") {
				t.Errorf("size 1: %v; want a size mismatch", err)
			}
			wantRemote = 1
		case 0:
			wantLocal, wantRemote = 0, 1
			fallthrough
		default:
			if err != nil || !bytes.Equal(n.Manifest, b) {
				t.Fatalf("size %d: %v", size, err)
			}
		}
		if local.asked[d.Digest] != wantLocal || remote.asked[d.Digest] != wantRemote {
			t.Errorf("size %d: asked locally %d times, of the registry %d; want %d and %d", size, local.asked[d.Digest], remote.asked[d.Digest], wantLocal, wantRemote)
		}
	}
}

// fetched serves the root it holds from memory, and everything else, or a root it holds no bytes
// of, from its source.
func TestFetchedServesTheRootFromMemory(t *testing.T) {
	src := newBySource()
	root := src.add([]byte(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","n":"root"}`))
	child := src.add([]byte(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","n":"child"}`))
	held := []byte("the root as read by resolve")
	read := func(f fetched, d ocispec.Descriptor) string {
		rc, err := f.Fetch(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	f := fetched{Source: src, desc: root, b: held}
	if got := read(f, root); got != string(held) || src.asked[root.Digest] != 0 {
		t.Errorf("the root: %q, the source asked %d times; want the bytes held, the source not asked", got, src.asked[root.Digest])
	}
	if got := read(f, child); got != string(src.b[child.Digest]) || src.asked[child.Digest] != 1 {
		t.Errorf("another manifest: %q, the source asked %d times; want the source's bytes", got, src.asked[child.Digest])
	}
	if got := read(fetched{Source: src, desc: root}, root); got != string(src.b[root.Digest]) || src.asked[root.Digest] != 1 {
		t.Errorf("a root held without bytes: %q, the source asked %d times; want the source's bytes", got, src.asked[root.Digest])
	}
}

// A tag or digest not found names the ImageSet line when there is one (1 and up), and no line when
// the image has none (0).
func TestResolveNotFoundNamesTheLine(t *testing.T) {
	repo := memory.New()
	for _, tc := range []struct {
		img  config.Image
		want string
	}{
		{config.Image{Registry: "r.example", Repository: "team/app", Tag: "gone", Line: 1},
			`r.example/team/app:gone: tag "gone" not found in r.example/team/app (ImageSet line 1); check the name and tag`},
		{config.Image{Registry: "r.example", Repository: "team/app", Tag: "gone"},
			`r.example/team/app:gone: tag "gone" not found in r.example/team/app; check the name and tag`},
		{config.Image{Registry: "r.example", Repository: "team/app", Digest: digest.FromString("x"), Line: 7},
			"r.example/team/app@" + digest.FromString("x").String() + ": digest " + digest.FromString("x").String() + " does not exist in r.example/team/app (ImageSet line 7); check the digest and the repository"},
	} {
		_, _, err := (&Planner{}).resolve(context.Background(), repo, tc.img)
		if err == nil || err.Error() != tc.want {
			t.Errorf("line %d: %v\nwant %s", tc.img.Line, err, tc.want)
		}
	}
}

// Docker v2 manifests and manifest lists are walked as OCI ones are; any other media type is
// refused, naming it.
func TestWalkerMediaTypes(t *testing.T) {
	src := newBySource()
	cfg := ocispec.Descriptor{MediaType: "application/vnd.docker.container.image.v1+json", Digest: digest.FromString("config"), Size: 6}
	layer := ocispec.Descriptor{MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", Digest: digest.FromString("layer"), Size: 5}
	m := src.add([]byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":6},"layers":[{"mediaType":%q,"digest":%q,"size":5}]}`,
		vocab.DockerManifest, cfg.MediaType, cfg.Digest, layer.MediaType, layer.Digest)))
	list := src.add([]byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":%d,"platform":{"os":"linux","architecture":"amd64"}}]}`,
		vocab.DockerManifestList, vocab.DockerManifest, m.Digest, m.Size)))
	n, _, err := walkOne(t, nil, src, list, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !n.IsIndex() || len(n.Children) != 1 {
		t.Fatalf("a Docker manifest list: index %v, %d children; want an index over one manifest", n.IsIndex(), len(n.Children))
	}
	c := n.Children[0]
	if c.IsIndex() || c.Desc.MediaType != vocab.DockerManifest || c.Platform != "linux/amd64" || len(c.Blobs) != 2 || c.Blobs[0].Digest != cfg.Digest || c.Blobs[1].Digest != layer.Digest {
		t.Errorf("a Docker manifest: %s, platform %q, blobs %v; want its config and layer", c.Desc.MediaType, c.Platform, c.Blobs)
	}
	odd := src.add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.example.other+json"}`))
	_, _, err = walkOne(t, nil, src, odd, nil)
	want := fmt.Sprintf(`manifest %s: media type "application/vnd.example.other+json" is not supported (OCI and Docker v2 manifests and indexes are)`, odd.Digest)
	if err == nil || err.Error() != want {
		t.Errorf("another media type: %v, want %q", err, want)
	}
}
