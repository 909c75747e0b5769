package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"airlock.dev/airlock/e2e/internal/registries"
)

// bench holds what every scenario needs.
type bench struct {
	o              options
	r              *runner
	c              *corpus
	src, out       string
	regctl, skopeo string
	keys           *keyPair // nil without cosign: nothing signed, no verify rows
	srcLog         *registries.AccessLog
}

// row is one scenario: its rounds, or why it did not run.
type row struct {
	Name    string
	Results []result
	Err     error
	Skipped string
	// Unselected: left out by -only; not run and not printed.
	Unselected bool
}

// errSkip marks a scenario that cannot run (a missing tool, or what it reads failed).
var errSkip = errors.New("skipped")

// rounds runs f o.rounds times and collects the results; it stops at the first error.
// A scenario that -only leaves out is not run.
func (b *bench) rounds(ctx context.Context, name string, f func(i int) (result, error)) *row {
	if b.o.only != nil && !b.o.only.MatchString(name) {
		return &row{Name: name, Unselected: true}
	}
	fmt.Printf("%-44s", name)
	rw := &row{Name: name}
	for i := range b.o.rounds {
		// Start each round with no dirty pages of the one before being written back.
		syscall.Sync()
		res, err := f(i)
		if errors.Is(err, errSkip) {
			rw.Skipped = strings.TrimSuffix(err.Error(), ": "+errSkip.Error())
			fmt.Printf(" skipped: %s\n", rw.Skipped)
			return rw
		}
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		if err != nil {
			rw.Err = err
			fmt.Printf(" FAILED: %v\n", err)
			return rw
		}
		rw.Results = append(rw.Results, res)
		fmt.Printf(" %7.2fs", res.Wall.Seconds())
	}
	fmt.Println()
	return rw
}

// target runs f against a fresh distribution registry, so that no tool finds blobs of an
// earlier round (skopeo's blob-info cache would mount them), and removes it afterwards.
func (b *bench) target(ctx context.Context, name string, f func(host string) (result, error)) (result, error) {
	return b.targetWithLog(ctx, name, func(host string, _ *registries.AccessLog) (result, error) { return f(host) })
}

// targetWithLog is target with the registry's access log, to count requests.
func (b *bench) targetWithLog(ctx context.Context, name string, f func(host string, log *registries.AccessLog) (result, error)) (result, error) {
	dir := filepath.Join(b.o.work, "target-"+name)
	_ = os.RemoveAll(dir)
	host, log, stop, err := registries.StartDistributionProcessWithAccessLog(ctx, dir)
	if err != nil {
		return result{}, fmt.Errorf("start target registry: %w", err)
	}
	defer func() { stop(); _ = os.RemoveAll(dir) }()
	if b.regctl != "" {
		if _, _, err := b.r.run(ctx, b.regctl, "registry", "set", "--tls", "disabled", host); err != nil {
			return result{}, err
		}
	}
	return f(host, log)
}

func skip(why string) error { return fmt.Errorf("%s: %w", why, errSkip) }

// tagName is the tag an image gets in regctl's and skopeo's single OCI layout.
func tagName(im image) string {
	return strings.ReplaceAll(im.Repo, "/", "-") + "-" + im.Tag
}

// all runs every scenario in order and returns the rows in table order.
func (b *bench) all(ctx context.Context) ([]*row, error) {
	c, r, o := b.c, b.r, b.o
	conc := strconv.Itoa(o.concurrency)
	imgs := append([]image(nil), c.Images...)
	want := c.Manifests
	set := filepath.Join(o.work, "imageset.yaml")
	pub := ""
	if b.keys != nil {
		pub = b.keys.pub
	}
	if err := os.WriteFile(set, imageSet(b.src, imgs, pub), 0o644); err != nil {
		return nil, err
	}
	// signed adds --sign-key to a full save: the catalog is signed by the bench's key, so
	// that verify can pin it with --archive-key.
	signed := func(args ...string) []string {
		if b.keys != nil {
			args = append(args, "--sign-key", b.keys.priv)
		}
		return args
	}
	archive := filepath.Join(b.out, "airlock-dir")
	fresh := func(p string) string { _ = os.RemoveAll(p); return p }
	var rows []*row

	save := b.rounds(ctx, "airlock save -> directory", func(i int) (result, error) {
		w, rss, err := r.run(ctx, o.airlock, signed("save", "-q", "-c", set, "-o", fresh(archive), "--concurrency", conc)...)
		return result{Wall: w, RSSKiB: rss, Bytes: c.Bytes, Found: layoutManifests(archive, want), Corpus: len(want)}, err
	})
	rows = append(rows, save)
	saved := save.ok()

	tarDir := filepath.Join(b.out, "airlock-tar")
	tarBase := filepath.Join(tarDir, "airlock.tar")
	tarSave := b.rounds(ctx, "airlock save -> tar, --volume-size 1GiB", func(i int) (result, error) {
		if err := os.MkdirAll(fresh(tarDir), 0o755); err != nil {
			return result{}, err
		}
		w, rss, err := r.run(ctx, o.airlock, signed("save", "-q", "-c", set, "-o", tarBase, "--volume-size", "1GiB", "--concurrency", conc)...)
		res := result{Wall: w, RSSKiB: rss, Bytes: c.Bytes, Corpus: len(want)}
		if err == nil {
			res.Found, err = tarManifests(tarBase, want)
		}
		if err != nil || i < o.rounds-1 {
			_ = os.RemoveAll(tarDir) // the last round's volumes stay for the tar verify
		}
		return res, err
	})
	rows = append(rows, tarSave)

	// verify: the full-hash verify of the archives just saved, pinned to the bench's key,
	// against one goroutine hashing every file under blobs/sha256 of the directory archive.
	archiveBytes := c.Bytes // for MB/s: every file under blobs/sha256 when the directory is there
	if saved {
		archiveBytes = blobBytes(archive)
	}
	verifyRow := func(name, path string, have bool) *row {
		return b.rounds(ctx, name, func(i int) (result, error) {
			switch {
			case b.keys == nil:
				return result{}, skip("cosign not installed: nothing signed to pin (scripts/install-tools.sh cosign)")
			case !have:
				return result{}, skip("no archive: airlock save failed or did not run")
			}
			w, rss, err := r.run(ctx, o.airlock, "verify", "-q", path, "--archive-key", b.keys.pub, "--concurrency", conc)
			return result{Wall: w, RSSKiB: rss, Bytes: archiveBytes}, err
		})
	}
	rows = append(rows, verifyRow("airlock verify DIR --archive-key", archive, saved))
	rows = append(rows, verifyRow("airlock verify NAME.tar --archive-key", tarBase, tarSave.ok()))
	rows = append(rows, b.rounds(ctx, rowInspectTar, func(i int) (result, error) {
		if !tarSave.ok() {
			return result{}, skip("no tar archive: airlock save -> tar failed or did not run")
		}
		w, rss, err := r.run(ctx, o.airlock, "inspect", tarBase)
		return result{Wall: w, RSSKiB: rss}, err
	}))
	rows = append(rows, b.rounds(ctx, "baseline: sha256 of every blob, 1 goroutine", func(i int) (result, error) {
		if !saved {
			return result{}, skip("no archive: airlock save failed or did not run")
		}
		self, err := os.Executable()
		if err != nil {
			return result{}, err
		}
		w, rss, err := r.run(ctx, self, "-hashdir", archive)
		return result{Wall: w, RSSKiB: rss, Bytes: archiveBytes}, err
	}))
	// What --sign-key adds to each full save: decrypting the cosign key (scrypt) and
	// signing the catalog, alone. After the verify rows, as it adds a signature each round.
	rows = append(rows, b.rounds(ctx, "airlock sign DIR --key (signing alone)", func(i int) (result, error) {
		switch {
		case b.keys == nil:
			return result{}, skip("cosign not installed: no key (scripts/install-tools.sh cosign)")
		case !saved:
			return result{}, skip("no archive: airlock save failed or did not run")
		}
		// --content-only: this row measures signing after the content check, as before sign also
		// verified the images (the verify rows above measure that).
		w, rss, err := r.run(ctx, o.airlock, "sign", archive, "--key", b.keys.priv, "--content-only")
		return result{Wall: w, RSSKiB: rss}, err
	}))

	rows = append(rows, b.rounds(ctx, "airlock load (directory -> registry)", func(i int) (result, error) {
		if !saved {
			return result{}, skip("no archive: airlock save failed or did not run")
		}
		return b.target(ctx, "airlock", func(dst string) (result, error) {
			w, rss, err := r.run(ctx, o.airlock, "load", "-q", archive, "--to", dst+"/mirror", "--concurrency", conc)
			return result{Wall: w, RSSKiB: rss, Bytes: c.Bytes, Corpus: len(want),
				Found: registryManifests(ctx, dst, "mirror", imgs, c.ByRepo)}, err
		})
	}))

	rows = append(rows, b.rounds(ctx, rowTarLoad, func(i int) (result, error) {
		if !tarSave.ok() {
			return result{}, skip("no tar volumes: airlock save -> tar failed or did not run")
		}
		return b.target(ctx, "airlock-tar", func(dst string) (result, error) {
			w, rss, err := r.run(ctx, o.airlock, "load", "-q", tarBase, "--to", dst+"/mirror", "--concurrency", conc)
			return result{Wall: w, RSSKiB: rss, Bytes: c.Bytes, Corpus: len(want),
				Found: registryManifests(ctx, dst, "mirror", imgs, c.ByRepo)}, err
		})
	}))
	if !o.keep {
		_ = os.RemoveAll(tarDir) // kept until here for the tar verify and load rows
	}

	rows = append(rows, b.rounds(ctx, "airlock re-save, nothing changed", func(i int) (result, error) {
		if !saved {
			return result{}, skip("no archive: airlock save failed or did not run")
		}
		w, rss, err := r.run(ctx, o.airlock, "save", "-q", "-c", set, "-o", archive, "--concurrency", conc)
		return result{Wall: w, RSSKiB: rss, Found: layoutManifests(archive, want), Corpus: len(want)}, err
	}))

	regDir := filepath.Join(b.out, "regctl")
	rows = append(rows, b.rounds(ctx, "regctl image copy --referrers -> ocidir", func(i int) (result, error) {
		if b.regctl == "" {
			return result{}, skip("regctl not installed (scripts/install-tools.sh regctl)")
		}
		fresh(regDir)
		res, err := r.runEach(ctx, imgs, func(im image) (string, []string) {
			return b.regctl, []string{"image", "copy", "--referrers", "--digest-tags", im.Ref(b.src), "ocidir://" + regDir + ":" + tagName(im)}
		})
		res.Bytes, res.Found, res.Corpus = c.Bytes, layoutManifests(regDir, want), len(want)
		return res, err
	}))
	rows = append(rows, b.rounds(ctx, "regctl image copy --referrers ocidir -> reg", func(i int) (result, error) {
		if b.regctl == "" {
			return result{}, skip("regctl not installed (scripts/install-tools.sh regctl)")
		}
		return b.target(ctx, "regctl", func(dst string) (result, error) {
			res, err := r.runEach(ctx, imgs, func(im image) (string, []string) {
				return b.regctl, []string{"image", "copy", "--referrers", "--digest-tags", "ocidir://" + regDir + ":" + tagName(im), dst + "/mirror/" + im.Repo + ":" + im.Tag}
			})
			res.Bytes, res.Corpus = c.Bytes, len(want)
			res.Found = registryManifests(ctx, dst, "mirror", imgs, c.ByRepo)
			return res, err
		})
	}))

	skDir := filepath.Join(b.out, "skopeo")
	rows = append(rows, b.rounds(ctx, "skopeo copy --all -> oci layout", func(i int) (result, error) {
		if b.skopeo == "" {
			return result{}, skip("skopeo: not installed (scripts/install-bench-tools.sh)")
		}
		fresh(skDir)
		res, err := r.runEach(ctx, imgs, func(im image) (string, []string) {
			return b.skopeo, []string{"--insecure-policy", "copy", "--all", "--preserve-digests", "--src-tls-verify=false", "docker://" + im.Ref(b.src), "oci:" + skDir + ":" + tagName(im)}
		})
		res.Bytes, res.Found, res.Corpus = c.Bytes, layoutManifests(skDir, want), len(want)
		return res, err
	}))
	rows = append(rows, b.rounds(ctx, "skopeo copy --all oci layout -> registry", func(i int) (result, error) {
		if b.skopeo == "" {
			return result{}, skip("skopeo: not installed (scripts/install-bench-tools.sh)")
		}
		return b.target(ctx, "skopeo", func(dst string) (result, error) {
			res, err := r.runEach(ctx, imgs, func(im image) (string, []string) {
				return b.skopeo, []string{"--insecure-policy", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false", "oci:" + skDir + ":" + tagName(im), "docker://" + dst + "/mirror/" + im.Repo + ":" + im.Tag}
			})
			res.Bytes, res.Corpus = c.Bytes, len(want)
			res.Found = registryManifests(ctx, dst, "mirror", imgs, c.ByRepo)
			return res, err
		})
	}))

	rows = append(rows, b.rounds(ctx, "raw: Go HTTP GET of every blob -> files", func(i int) (result, error) {
		self, err := os.Executable()
		if err != nil {
			return result{}, err
		}
		list := filepath.Join(o.work, "blobs.txt")
		if err := writeBlobList(list, b.src, c.Blobs); err != nil {
			return result{}, err
		}
		dir := fresh(filepath.Join(b.out, "raw"))
		w, rss, err := r.run(ctx, self, "-rawcopy", list, "-rawdir", dir, "-concurrency", conc)
		_ = os.RemoveAll(dir)
		return result{Wall: w, RSSKiB: rss, Bytes: c.Bytes}, err
	}))

	rows = append(rows, b.rounds(ctx, "raw: Go HTTP PUT of every blob <- files", func(i int) (result, error) {
		if !saved {
			return result{}, skip("no archive to read blobs from: airlock save failed or did not run")
		}
		self, err := os.Executable()
		if err != nil {
			return result{}, err
		}
		list := filepath.Join(o.work, "blobs.txt")
		if err := writeBlobList(list, b.src, c.Blobs); err != nil { // also when -only left out the download
			return result{}, err
		}
		return b.target(ctx, "raw", func(dst string) (result, error) {
			w, rss, err := r.run(ctx, self, "-rawcopy", list, "-rawdir", archive, "-rawpush", dst, "-concurrency", conc)
			return result{Wall: w, RSSKiB: rss, Bytes: c.Bytes}, err
		})
	}))

	// Last: it adds images to the source registry and to the corpus.
	rows = append(rows, b.rounds(ctx, "airlock re-save after one new tag", func(i int) (result, error) {
		if !saved {
			return result{}, skip("no archive: airlock save failed or did not run")
		}
		before := c.Bytes
		layer := int(float64(newBytes) * o.scale / float64(len(platforms)))
		if _, err := c.push(ctx, image{Repo: "bench/repo0", Tag: fmt.Sprintf("new%d", i)}, layer); err != nil {
			return result{}, fmt.Errorf("push the new tag: %w", err)
		}
		if err := os.WriteFile(set, imageSet(b.src, c.Images, pub), 0o644); err != nil {
			return result{}, err
		}
		w, rss, err := r.run(ctx, o.airlock, "save", "-q", "-c", set, "-o", archive, "--concurrency", conc)
		return result{Wall: w, RSSKiB: rss, Bytes: c.Bytes - before, Found: layoutManifests(archive, c.Manifests), Corpus: len(c.Manifests)}, err
	}))
	return rows, nil
}
