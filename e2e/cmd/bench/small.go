package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"

	"airlock.dev/airlock/e2e/internal/registries"
)

// The small-image corpus (issue 10): -small single-platform images spread over smallRepos
// repositories, each a manifest, a config and one layer of smallLayer random bytes, no referrers.
// What it measures is the cost per image (requests, round trips, per-image work), not bytes.
const (
	smallRepos = 10
	smallLayer = 4 << 10
)

// smallName is the name of a small-image row: "500 small images: WHAT".
func smallName(n int, what string) string { return fmt.Sprintf("%d small images: %s", n, what) }

// buildSmall pushes n small images to host (repositories small/repo0..9, tags v0, v1, ...), 8 at
// a time, and returns them as a corpus.
func buildSmall(ctx context.Context, host string, n int) (*corpus, error) {
	c := newCorpus(host, 0)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range n {
		g.Go(func() error {
			return c.pushSmall(ctx, image{Repo: fmt.Sprintf("small/repo%d", i%smallRepos), Tag: "v" + strconv.Itoa(i/smallRepos)})
		})
	}
	return c, g.Wait()
}

// pushSmall pushes one small image: a layer of its own, a config naming it, the manifest by tag.
func (c *corpus) pushSmall(ctx context.Context, im image) error {
	repo, err := remote.NewRepository(c.Host + "/" + im.Repo)
	if err != nil {
		return err
	}
	repo.PlainHTTP = true
	layer, err := c.pushBlob(ctx, repo, im.Repo, layerType, c.layer(smallLayer))
	if err != nil {
		return err
	}
	cfg, _ := json.Marshal(ocispec.Image{Platform: platforms[0],
		Config: ocispec.ImageConfig{Cmd: []string{"/" + im.Repo + ":" + im.Tag}},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}}})
	cfgDesc, err := c.pushBlob(ctx, repo, im.Repo, ocispec.MediaTypeImageConfig, cfg)
	if err != nil {
		return err
	}
	m, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest, Config: cfgDesc, Layers: []ocispec.Descriptor{layer}})
	desc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, m)
	if err := repo.PushReference(ctx, desc, bytes.NewReader(m), im.Tag); err != nil {
		return fmt.Errorf("push %s: %w", im.Ref(c.Host), err)
	}
	im.Index = desc.Digest
	c.addManifest(im.Repo, desc.Digest)
	c.mu.Lock()
	c.Images = append(c.Images, im)
	c.mu.Unlock()
	return nil
}

// small runs the small-image rows: airlock save and load against regctl's copy to an ocidir and
// back, each with the requests per image counted in the registry's access log. The corpus is built
// only when one of the rows is selected. regctl writes one OCI layout per repository
// (ocidir://DIR/small/repo0:v0): each `regctl image copy` into a layout costs time that grows with
// the tags already in it (about 0.5 s of CPU per copy into a layout of 356 tags, with or without
// --referrers), so one layout of 500 tags took 178 s, and would measure regctl's layout, not the
// copy.
func (b *bench) small(ctx context.Context) ([]*row, error) {
	n, o, r := b.o.small, b.o, b.r
	if n <= 0 {
		return nil, nil
	}
	saveName, loadName := smallName(n, "airlock save -> directory"), smallName(n, "airlock load (directory -> registry)")
	regSaveName, regLoadName := smallName(n, "regctl image copy -> ocidir"), smallName(n, "regctl image copy ocidir -> reg")
	if o.only != nil && !o.only.MatchString(saveName) && !o.only.MatchString(loadName) &&
		!o.only.MatchString(regSaveName) && !o.only.MatchString(regLoadName) {
		return nil, nil
	}
	c, err := buildSmall(ctx, b.src, n)
	if err != nil {
		return nil, fmt.Errorf("build the small-image corpus: %w", err)
	}
	fmt.Printf("\nsmall-image corpus on %s: %d single-platform images in %d repositories, no referrers, %d blobs, %.1f MiB; %d rounds per scenario, airlock --concurrency %d; %d CPUs\n",
		b.src, len(c.Images), smallRepos, len(c.Blobs), float64(c.Bytes)/(1<<20), o.rounds, o.concurrency, numCPU())
	imgs, want := c.Images, c.Manifests
	set := filepath.Join(o.work, "imageset-small.yaml")
	if err := os.WriteFile(set, imageSet(b.src, imgs, ""), 0o644); err != nil {
		return nil, err
	}
	conc := strconv.Itoa(o.concurrency)
	archive := filepath.Join(b.out, "airlock-small")
	fresh := func(p string) string { _ = os.RemoveAll(p); return p }
	var rows []*row

	save := b.rounds(ctx, saveName, func(i int) (result, error) {
		args := []string{"save", "-q", "-c", set, "-o", fresh(archive), "--concurrency", conc}
		if b.keys != nil {
			args = append(args, "--sign-key", b.keys.priv)
		}
		res, err := counted(ctx, b.srcLog, n, func() (result, error) {
			w, rss, err := r.run(ctx, o.airlock, args...)
			return result{Wall: w, RSSKiB: rss}, err
		})
		res.Found, res.Corpus = layoutManifests(archive, want), len(want)
		return res, err
	})
	rows = append(rows, save)
	rows = append(rows, b.rounds(ctx, loadName, func(i int) (result, error) {
		if !save.ok() {
			return result{}, skip("no archive: airlock save failed or did not run")
		}
		return b.targetWithLog(ctx, "airlock-small", func(dst string, log *registries.AccessLog) (result, error) {
			res, err := counted(ctx, log, n, func() (result, error) {
				w, rss, err := r.run(ctx, o.airlock, "load", "-q", archive, "--to", dst+"/mirror", "--concurrency", conc)
				return result{Wall: w, RSSKiB: rss}, err
			})
			res.Corpus, res.Found = len(want), registryManifests(ctx, dst, "mirror", imgs, c.ByRepo)
			return res, err
		})
	}))

	regDir := filepath.Join(b.out, "regctl-small")
	regSave := b.rounds(ctx, regSaveName, func(i int) (result, error) {
		if b.regctl == "" {
			return result{}, skip("regctl not installed (scripts/install-tools.sh regctl)")
		}
		fresh(regDir)
		res, err := counted(ctx, b.srcLog, n, func() (result, error) {
			return r.runEach(ctx, imgs, func(im image) (string, []string) {
				return b.regctl, []string{"image", "copy", "--referrers", "--digest-tags", im.Ref(b.src), "ocidir://" + filepath.Join(regDir, im.Repo) + ":" + im.Tag}
			})
		})
		res.Found, res.Corpus = layoutManifests(regDir, want), len(want)
		return res, err
	})
	rows = append(rows, regSave)
	rows = append(rows, b.rounds(ctx, regLoadName, func(i int) (result, error) {
		switch {
		case b.regctl == "":
			return result{}, skip("regctl not installed (scripts/install-tools.sh regctl)")
		case !regSave.ok():
			return result{}, skip("no ocidir: the regctl save failed or did not run")
		}
		return b.targetWithLog(ctx, "regctl-small", func(dst string, log *registries.AccessLog) (result, error) {
			res, err := counted(ctx, log, n, func() (result, error) {
				return r.runEach(ctx, imgs, func(im image) (string, []string) {
					return b.regctl, []string{"image", "copy", "--referrers", "--digest-tags", "ocidir://" + filepath.Join(regDir, im.Repo) + ":" + im.Tag, dst + "/mirror/" + im.Repo + ":" + im.Tag}
				})
			})
			res.Corpus, res.Found = len(want), registryManifests(ctx, dst, "mirror", imgs, c.ByRepo)
			return res, err
		})
	}))
	if !o.keep {
		_ = os.RemoveAll(archive)
		_ = os.RemoveAll(regDir)
	}
	return rows, nil
}

// counted runs f and sets the result's RequestsPerImage from the requests log shows were served
// meanwhile, divided by n (0 when log is nil or unreadable).
func counted(ctx context.Context, log *registries.AccessLog, n int, f func() (result, error)) (result, error) {
	count := func() int {
		if log == nil || log.Sync(ctx) != nil {
			return -1
		}
		reqs, err := log.Requests()
		if err != nil {
			return -1
		}
		return len(reqs)
	}
	before := count()
	res, err := f()
	if after := count(); before >= 0 && after >= 0 {
		res.RequestsPerImage = float64(after-before) / float64(n)
	}
	return res, err
}
