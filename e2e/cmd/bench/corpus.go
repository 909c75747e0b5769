package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
)

// Shape of the corpus at -scale 1: repos x tagsPerRepo two-platform indexes; every
// platform manifest has the baseLayers shared base layers (the same blobs in every
// repository) and one layer of its own, sized so that the unique bytes total fullBytes.
const (
	repos       = 10
	tagsPerRepo = 2
	baseLayers  = 3
	baseSize    = 40 << 20
	fullBytes   = 1 << 30
	newBytes    = 50 << 20 // what the image pushed before the second re-save adds
	sigType     = "application/vnd.dev.sigstore.bundle.v0.3+json"
	sbomType    = "application/spdx+json"
	layerType   = ocispec.MediaTypeImageLayerGzip
)

var platforms = []ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}

// image is one tagged index of the corpus.
type image struct {
	Repo, Tag string
	Index     digest.Digest
}

// Ref returns host/repo:tag.
func (im image) Ref(host string) string { return host + "/" + im.Repo + ":" + im.Tag }

// blob is one blob of the corpus and a repository that holds it.
type blob struct {
	Repo string
	Desc ocispec.Descriptor
}

// corpus is what was pushed to the source registry.
type corpus struct {
	Host   string
	Images []image
	// Manifests holds every manifest digest: indexes, platform manifests, referrers
	// (not the tag-schema indexes, which are discovery aids).
	Manifests map[digest.Digest]bool
	// ByRepo lists the manifests of each repository.
	ByRepo map[string][]digest.Digest
	// Blobs are the unique blobs (layers, configs, referrer payloads), each once.
	Blobs []blob
	// Bytes is the sum of the unique blobs' sizes.
	Bytes int64

	mu   sync.Mutex
	base []ocispec.Descriptor
	// baseData are the shared base layers, kept to mount them in every repository.
	baseData [][]byte
	rng      *rand.ChaCha8
	seeded   map[string]bool // repositories that have the base layers
	// sign, when set, signs a manifest (host/repo@digest) for real: `cosign sign --key`,
	// which pushes a cosign v3 Sigstore bundle as a referrer. Without it the signature
	// referrers are look-alikes that no verifier accepts.
	sign func(ctx context.Context, ref string) error
}

// newCorpus returns an empty corpus on host, with its base layers generated.
func newCorpus(host string, scale float64) *corpus {
	c := &corpus{Host: host, Manifests: map[digest.Digest]bool{}, ByRepo: map[string][]digest.Digest{}, seeded: map[string]bool{},
		rng: rand.NewChaCha8([32]byte{'a', 'i', 'r', 'l', 'o', 'c', 'k'})}
	for range baseLayers {
		b := c.layer(int(baseSize * scale))
		c.baseData = append(c.baseData, b)
		c.base = append(c.base, content.NewDescriptorFromBytes(layerType, b))
	}
	return c
}

// random returns n random (incompressible) bytes.
func (c *corpus) random(n int) []byte {
	b := make([]byte, n)
	c.mu.Lock()
	_, _ = c.rng.Read(b)
	c.mu.Unlock()
	return b
}

// layer returns a gzip stream (stored, not compressed) of n random bytes: a real gzip
// layer, so that no tool recompresses it, that is as incompressible as real layers are.
func (c *corpus) layer(n int) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	_, _ = zw.Write(c.random(n))
	_ = zw.Close()
	return buf.Bytes()
}

// uniqueLayerSize is the size of each platform manifest's own layer at scale.
func uniqueLayerSize(scale float64) int {
	total := float64(fullBytes)*scale - float64(baseLayers*baseSize)*scale
	return int(total / float64(repos*tagsPerRepo*len(platforms)))
}

// build pushes the whole corpus with a few repositories at once.
func (c *corpus) build(ctx context.Context, scale float64) error {
	layer := uniqueLayerSize(scale)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for r := range repos {
		g.Go(func() error {
			for t := range tagsPerRepo {
				im := image{Repo: fmt.Sprintf("bench/repo%d", r), Tag: fmt.Sprintf("v%d", t)}
				if _, err := c.push(ctx, im, layer); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// push pushes one two-platform index tagged im.Tag whose platform manifests each have
// the base layers and a layer of layerSize random bytes, and on the index and on each
// platform manifest a signature-like and an SBOM referrer. It records everything in c
// and returns the image and the new bytes it added.
func (c *corpus) push(ctx context.Context, im image, layerSize int) (image, error) {
	repo, err := remote.NewRepository(c.Host + "/" + im.Repo)
	if err != nil {
		return im, err
	}
	repo.PlainHTTP = true
	repo.SkipReferrersGC = true // distribution: delete disabled, no referrers API
	if err := repo.SetReferrersCapability(false); err != nil {
		return im, err
	}
	if err := c.seedBase(ctx, repo, im.Repo); err != nil {
		return im, err
	}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for _, p := range platforms {
		data := c.layer(layerSize)
		own, err := c.pushBlob(ctx, repo, im.Repo, layerType, data)
		if err != nil {
			return im, err
		}
		diffIDs := []digest.Digest{}
		for _, l := range append(append([]ocispec.Descriptor{}, c.base...), own) {
			diffIDs = append(diffIDs, l.Digest)
		}
		cfg, _ := json.Marshal(ocispec.Image{Platform: p, Created: nil,
			Config: ocispec.ImageConfig{Cmd: []string{"/" + im.Repo + ":" + im.Tag}},
			RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}})
		cfgDesc, err := c.pushBlob(ctx, repo, im.Repo, ocispec.MediaTypeImageConfig, cfg)
		if err != nil {
			return im, err
		}
		m, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest, Config: cfgDesc,
			Layers: append(append([]ocispec.Descriptor{}, c.base...), own)})
		desc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, m)
		if err := repo.Push(ctx, desc, bytes.NewReader(m)); err != nil {
			return im, fmt.Errorf("push manifest to %s: %w", im.Repo, err)
		}
		desc.Platform = &p
		c.addManifest(im.Repo, desc.Digest)
		idx.Manifests = append(idx.Manifests, desc)
	}
	b, _ := json.Marshal(idx)
	desc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageIndex, b)
	if err := repo.PushReference(ctx, desc, bytes.NewReader(b), im.Tag); err != nil {
		return im, fmt.Errorf("push %s: %w", im.Ref(c.Host), err)
	}
	im.Index = desc.Digest
	c.addManifest(im.Repo, desc.Digest)
	for _, subject := range append([]ocispec.Descriptor{desc}, idx.Manifests...) {
		subject.Platform = nil
		if err := c.pushReferrers(ctx, repo, im.Repo, subject); err != nil {
			return im, err
		}
	}
	c.mu.Lock()
	c.Images = append(c.Images, im)
	c.mu.Unlock()
	return im, nil
}

// seedBase puts the shared base layers into repo: pushed to the first repository,
// mounted from it into the others.
func (c *corpus) seedBase(ctx context.Context, repo *remote.Repository, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seeded[name] {
		return nil
	}
	var from string
	for r := range c.seeded {
		from = r
		break
	}
	for i, d := range c.base {
		var err error
		if from == "" {
			err = repo.Push(ctx, d, bytes.NewReader(c.baseData[i]))
			c.Blobs = append(c.Blobs, blob{name, d})
			c.Bytes += d.Size
		} else {
			err = repo.Mount(ctx, d, from, nil)
		}
		if err != nil {
			return fmt.Errorf("base layer into %s: %w", name, err)
		}
	}
	c.seeded[name] = true
	return nil
}

// pushReferrers attaches a signature and an SPDX SBOM to subject. The signature is a
// real cosign v3 bundle by the bench's key when c.sign is set, and otherwise a
// signature-like artifact of the same artifactType. On a registry without the referrers
// API oras-go and cosign keep the sha256-<hex> tag-schema index.
func (c *corpus) pushReferrers(ctx context.Context, repo *remote.Repository, name string, subject ocispec.Descriptor) error {
	for _, at := range []string{sigType, sbomType} {
		if at == sigType && c.sign != nil {
			if err := c.pushSignature(ctx, repo, name, subject); err != nil {
				return err
			}
			continue
		}
		payload := fmt.Appendf(nil, `{"subject":%q,"type":%q,"noise":"%x"}`, subject.Digest, at, c.random(16))
		if at == sbomType {
			payload = fmt.Appendf(nil, `{"spdxVersion":"SPDX-2.3","name":%q,"packages":[%s]}`,
				subject.Digest, strings.Repeat(`{"name":"pkg","versionInfo":"1.0"},`, 200)+`{}`)
		}
		layer, err := c.pushBlob(ctx, repo, name, at, payload)
		if err != nil {
			return err
		}
		desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, at, oras.PackManifestOptions{
			Subject: &subject, Layers: []ocispec.Descriptor{layer},
		})
		if err != nil {
			return fmt.Errorf("referrer %s on %s in %s: %w", at, subject.Digest, name, err)
		}
		c.addManifest(name, desc.Digest)
	}
	return nil
}

// pushSignature signs subject with c.sign (cosign sign --key) and records the
// signature referrer cosign pushed, and its bundle blob, as corpus content.
func (c *corpus) pushSignature(ctx context.Context, repo *remote.Repository, name string, subject ocispec.Descriptor) error {
	if err := c.sign(ctx, c.Host+"/"+name+"@"+subject.Digest.String()); err != nil {
		return err
	}
	var sigs []ocispec.Descriptor
	if err := repo.Referrers(ctx, subject, sigType, func(r []ocispec.Descriptor) error {
		sigs = append(sigs, r...)
		return nil
	}); err != nil {
		return fmt.Errorf("find the signature cosign pushed on %s in %s: %w", subject.Digest, name, err)
	}
	if len(sigs) != 1 {
		return fmt.Errorf("cosign sign %s/%s@%s: %d signature referrers found, want 1", c.Host, name, subject.Digest, len(sigs))
	}
	b, err := content.FetchAll(ctx, repo, sigs[0])
	if err != nil {
		return fmt.Errorf("fetch the signature on %s in %s: %w", subject.Digest, name, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("signature manifest %s: %w", sigs[0].Digest, err)
	}
	c.mu.Lock()
	for _, l := range m.Layers {
		c.Blobs = append(c.Blobs, blob{name, l})
		c.Bytes += l.Size
	}
	c.mu.Unlock()
	c.addManifest(name, sigs[0].Digest)
	return nil
}

// pushBlob pushes b as a blob and records it as unique content.
func (c *corpus) pushBlob(ctx context.Context, repo *remote.Repository, name, mediaType string, b []byte) (ocispec.Descriptor, error) {
	d := content.NewDescriptorFromBytes(mediaType, b)
	if err := repo.Push(ctx, d, bytes.NewReader(b)); err != nil {
		return d, fmt.Errorf("push blob to %s: %w", name, err)
	}
	c.mu.Lock()
	c.Blobs = append(c.Blobs, blob{name, d})
	c.Bytes += d.Size
	c.mu.Unlock()
	return d, nil
}

func (c *corpus) addManifest(repo string, d digest.Digest) {
	c.mu.Lock()
	c.Manifests[d] = true
	c.ByRepo[repo] = append(c.ByRepo[repo], d)
	c.mu.Unlock()
}

// imageSet returns the ImageSet file naming imgs, and with pubKey set a trust section
// naming that cosign public key (every image must then be signed by it).
func imageSet(host string, imgs []image, pubKey string) []byte {
	var b strings.Builder
	b.WriteString("apiVersion: airlock.dev/v1alpha1\nkind: ImageSet\nimages:\n")
	for _, im := range imgs {
		fmt.Fprintf(&b, "  - ref: %s\n", im.Ref(host))
	}
	if pubKey != "" {
		fmt.Fprintf(&b, "trust:\n  keys: [%q]\n", pubKey)
	}
	return []byte(b.String())
}
