// Command bench measures airlock save, load and re-save against regctl, skopeo and a
// plain Go copy of the same bytes, on loopback distribution registries, and prints a
// table of medians next to the targets of issue 5.
//
//	bench -airlock bin/airlock [-scale 1.0] [-small 500] [-rounds 3] [-concurrency 8] [-only REGEXP] [-work DIR] [-v]
//
// `make bench` runs it. The corpus (20 two-platform indexes over 10 repositories, about
// 1 GiB of unique random bytes at -scale 1, with a cosign signature and an SBOM referrer
// on every index and platform manifest) is pushed once and reused for every round. A
// second corpus of -small single-platform images of a few KiB each (issue 10) measures
// the cost per image; it is pushed after the rows of the first have run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"syscall"
	"time"

	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
	"airlock.dev/airlock/e2e/internal/tools"
)

type options struct {
	airlock     string
	scale       float64
	rounds      int
	concurrency int
	work        string
	verbose     bool
	keep        bool
	only        *regexp.Regexp
	small       int
}

func main() {
	var o options
	flag.StringVar(&o.airlock, "airlock", "", "path of the airlock binary (required)")
	flag.Float64Var(&o.scale, "scale", 1.0, "corpus size: 1.0 is about 1 GiB of unique bytes; 0.1 for a quick run")
	flag.IntVar(&o.small, "small", 500, "images in the small-image rows (a few KiB each, 10 repositories); 0 leaves those rows out")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds per scenario; the table shows medians")
	flag.IntVar(&o.concurrency, "concurrency", 8, "airlock --concurrency, and the raw baseline's parallel downloads")
	flag.StringVar(&o.work, "work", "", "working directory for registries and outputs (default: a temp dir, removed at the end)")
	flag.BoolVar(&o.verbose, "v", false, "print every command with its time and RSS; keep each command's output under WORK/logs")
	flag.BoolVar(&o.keep, "keep", false, "keep the working directory")
	rawList := flag.String("rawcopy", "", "internal: copy the blobs listed in this file (the raw baseline's child process)")
	rawDir := flag.String("rawdir", "", "internal: where -rawcopy writes, or with -rawpush the OCI layout it reads")
	rawPush := flag.String("rawpush", "", "internal: upload the listed blobs to this registry instead")
	hashDir := flag.String("hashdir", "", "internal: sha256 every file under DIR/blobs/sha256 in one goroutine (the verify baseline's child process)")
	only := flag.String("only", "", "run only the scenarios whose name matches this regular expression (the others are left out of the table)")
	flag.Parse()
	if *hashDir != "" {
		if err := hashBlobs(*hashDir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fmt.Fprintf(os.Stderr, "-only: %v\n", err)
			os.Exit(2)
		}
		o.only = re
	}
	if *rawList != "" {
		if err := rawCopy(*rawList, *rawDir, *rawPush, o.concurrency); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if o.airlock == "" || flag.NArg() > 0 || o.rounds < 1 || o.scale <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "\nbench: FAILED: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) (err error) {
	if o.airlock, err = filepath.Abs(o.airlock); err != nil {
		return err
	}
	if _, err := os.Stat(o.airlock); err != nil {
		return fmt.Errorf("airlock binary: %w (build it with: make build)", err)
	}
	if o.work == "" {
		if o.work, err = os.MkdirTemp("", "airlock-bench-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(o.work)
		}
	} else if o.work, err = filepath.Abs(o.work); err != nil {
		return err
	}
	home := filepath.Join(o.work, "home")
	for _, d := range []string{home, filepath.Join(o.work, "out")} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	r := &runner{verbose: o.verbose, env: append(os.Environ(), "HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "DOCKER_CONFIG="+filepath.Join(home, ".docker"))}
	if o.verbose {
		r.logDir = filepath.Join(o.work, "logs")
		_ = os.MkdirAll(r.logDir, 0o755)
	}

	srcDir := filepath.Join(o.work, "registry-source")
	if err := os.RemoveAll(srcDir); err != nil {
		return err
	}
	src, srcLog, stop, err := registries.StartDistributionProcessWithAccessLog(ctx, srcDir)
	if err != nil {
		return fmt.Errorf("start source registry: %w", err)
	}
	defer stop()

	keys, err := setupKeys(ctx, o.work)
	if err != nil {
		return err
	}
	if keys != nil {
		r.env = append(r.env, "COSIGN_PASSWORD="+seed.KeyPassword)
	}
	b := &bench{o: o, r: r, src: src, srcLog: srcLog, out: filepath.Join(o.work, "out"), keys: keys}
	if err := b.setupTools(ctx); err != nil {
		return err
	}
	var rows []*row
	if o.only == nil || slices.ContainsFunc(bigRows, o.only.MatchString) {
		start := time.Now()
		c := newCorpus(src, o.scale)
		if keys != nil {
			c.sign = keys.sign
		}
		if err := c.build(ctx, o.scale); err != nil {
			return fmt.Errorf("build corpus: %w", err)
		}
		fmt.Printf("corpus on %s: %d images in %d repositories, %d manifests (incl. %d referrers), %d blobs, %.1f MiB unique, built in %s\n",
			src, len(c.Images), repos, len(c.Manifests), len(c.Manifests)-len(c.Images)*(1+len(platforms)),
			len(c.Blobs), float64(c.Bytes)/(1<<20), time.Since(start).Round(time.Second))
		fmt.Printf("each load round pushes into a fresh distribution registry; %d rounds per scenario, airlock --concurrency %d; %d CPUs\n\n",
			o.rounds, o.concurrency, numCPU())
		b.c = c
		if rows, err = b.all(ctx); err != nil {
			printTable(os.Stdout, rows, o.small)
			return err
		}
	}
	small, err := b.small(ctx)
	rows = append(rows, small...)
	printTable(os.Stdout, rows, o.small)
	return err
}

// setupTools finds regctl and skopeo and points regctl's config (in the temp HOME) at
// the plain-HTTP loopback registries.
func (b *bench) setupTools(ctx context.Context) error {
	var err error
	if b.regctl, err = tools.Find("regctl"); err != nil {
		fmt.Printf("regctl: not installed (scripts/install-tools.sh regctl)\n")
		b.regctl = ""
	} else {
		if _, _, err := b.r.run(ctx, b.regctl, "registry", "set", "--tls", "disabled", b.src); err != nil {
			return err
		}
	}
	if b.skopeo, err = tools.Find("skopeo"); err != nil {
		fmt.Printf("skopeo: not installed (scripts/install-bench-tools.sh)\n")
		b.skopeo = ""
	}
	return nil
}

// keyPair is the cosign key pair of a run: it signs every image of the corpus and the
// archives airlock saves, and its public half is the key verify pins.
type keyPair struct {
	priv, pub string
	cosign    *seed.Cosign
}

func (k *keyPair) sign(ctx context.Context, ref string) error { return k.cosign.Sign(ctx, k.priv, ref) }

// setupKeys generates a cosign key pair under work with the real cosign CLI (password
// seed.KeyPassword). Without cosign it returns nil: the corpus is then unsigned and the
// verify rows are skipped.
func setupKeys(ctx context.Context, work string) (*keyPair, error) {
	path, err := tools.Find("cosign")
	if err != nil {
		fmt.Printf("cosign: not installed (scripts/install-tools.sh cosign): images and archives unsigned, verify rows skipped\n")
		return nil, nil
	}
	c := &seed.Cosign{Path: path, Home: filepath.Join(work, "cosign-home")}
	if err := os.RemoveAll(c.Home); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.Home, 0o755); err != nil {
		return nil, err
	}
	dir := filepath.Join(work, "keys")
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	priv, pub, err := c.GenerateKeyPair(ctx, dir)
	if err != nil {
		return nil, err
	}
	return &keyPair{priv: priv, pub: pub, cosign: c}, nil
}
