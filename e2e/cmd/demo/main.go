// Command demo shows airlock end to end, fully offline on loopback: it starts
// go-containerregistry's registry (referrers API) in process and the distribution
// registry (no referrers API) as a process, seeds a cosign-signed, attested
// two-platform sample into each, writes an ImageSet naming both, runs `airlock save`
// into a directory and into 1 MiB tar volumes, and prints `airlock inspect`.
//
//	demo -airlock bin/airlock -work out/demo
//
// `make demo` runs it. Everything it writes goes under -work; running it again starts
// from fresh registries and overwrites the archives. The registries stop when it ends,
// also on Ctrl-C.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
	"airlock.dev/airlock/e2e/internal/tools"
)

// repo is the repository the sample is seeded into on both registries.
const repo = "demo/app"

// volumeSize is the --volume-size of the split tar archive. The sample is some 100 KiB
// as a tar, so it fits in one volume.
const volumeSize = "1MiB"

func main() {
	airlock := flag.String("airlock", "", "path of the airlock binary (required)")
	work := flag.String("work", "", "directory for keys, registry data, the ImageSet and the archives (required)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: demo -airlock PATH -work DIR\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *airlock == "" || *work == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *airlock, *work)
	interrupted := ctx.Err() != nil
	cancel()
	switch {
	case interrupted:
		fmt.Fprintln(os.Stderr, "\ndemo: interrupted; registries stopped")
		os.Exit(130)
	case err != nil:
		fmt.Fprintf(os.Stderr, "\ndemo: FAILED: %v\n", err)
		os.Exit(1)
	}
}

// stepError names the demo step that failed.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

func fail(step string, err error) error { return &stepError{step, err} }

func heading(n int, title string) { fmt.Printf("\n== %d. %s\n", n, title) }

// run runs the demo; every registry it starts is stopped before it returns.
func run(ctx context.Context, airlockArg, workArg string) error {
	airlock, err := filepath.Abs(airlockArg)
	if err != nil {
		return fail("airlock binary", err)
	}
	if fi, err := os.Stat(airlock); err != nil {
		return fail("airlock binary", fmt.Errorf("%w (build it with: make build)", err))
	} else if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fail("airlock binary", fmt.Errorf("%s is not an executable file", airlock))
	}
	work, err := filepath.Abs(workArg)
	if err != nil {
		return fail("work directory", err)
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return fail("work directory", err)
	}
	cosign, err := tools.Find("cosign")
	if err != nil {
		return fail("cosign", err)
	}

	heading(1, "starting loopback registries")
	ggcr, stopGGCR, err := registries.StartGGCRServer(ctx, "127.0.0.1:0")
	if err != nil {
		return fail("start go-containerregistry registry", err)
	}
	defer stopGGCR()
	fmt.Printf("go-containerregistry (referrers API)     http://%s\n", ggcr)
	// Fresh storage each run: a second seeding would otherwise add a second set of
	// signatures next to the first.
	distDir := filepath.Join(work, "distribution")
	if err := os.RemoveAll(distDir); err != nil {
		return fail("start distribution registry", err)
	}
	dist, stopDist, err := registries.StartDistributionProcess(ctx, distDir)
	if err != nil {
		return fail("start distribution registry", err)
	}
	defer stopDist()
	fmt.Printf("distribution (no API, tag-schema index)  http://%s  (data: %s)\n", dist, distDir)

	heading(2, "seeding a cosign-signed sample into each")
	keyDir := filepath.Join(work, "keys")
	if err := os.MkdirAll(keyDir, 0o755); err != nil {
		return fail("seed", err)
	}
	var refs []string
	var pubKey string
	for _, host := range []string{ggcr, dist} {
		start := time.Now()
		f, err := seed.Build(ctx, host, repo, keyDir, cosign)
		if err != nil {
			return fail("seed "+host+"/"+repo, err)
		}
		refs = append(refs, f.Ref())
		pubKey = f.PublicKeyPath
		fmt.Printf("%s  %s  %d platforms, %d referrers  (%.1fs)\n",
			f.Ref(), f.IndexDigest, len(f.Platforms), len(f.Referrers), time.Since(start).Seconds())
		for _, k := range seed.Kinds {
			r := f.Referrers[k]
			fmt.Printf("    %-26s %s  (found by %s)\n", k, short(r.Manifest.Digest.String()), r.Found)
		}
	}
	fmt.Printf("cosign key pair: %s (password %q)\n", filepath.Dir(pubKey), seed.KeyPassword)

	// The key that signs archives: made by the real cosign CLI, its public half pinned at the site.
	c := &seed.Cosign{Path: cosign, Home: filepath.Join(work, "cosign-home")}
	transferKey, transferPub, err := c.GenerateKeyPair(ctx, filepath.Join(work, "transfer"))
	if err != nil {
		return fail("cosign generate-key-pair (archive key)", err)
	}
	fmt.Printf("archive signing key pair (cosign generate-key-pair): %s, %s\n", transferKey, transferPub)
	os.Setenv("COSIGN_PASSWORD", seed.KeyPassword) // cosign's own way to give the key's password

	heading(3, "writing the ImageSet")
	imageset := filepath.Join(work, "imageset.yaml")
	keyRel, err := filepath.Rel(work, pubKey)
	if err != nil {
		return fail("write ImageSet", err)
	}
	body := imageSet(refs, filepath.ToSlash(keyRel))
	if err := os.WriteFile(imageset, []byte(body), 0o644); err != nil {
		return fail("write ImageSet", err)
	}
	fmt.Printf("%s:\n%s", imageset, indent(body, "    "))

	heading(4, "airlock save into a directory, the catalog signed with the archive key")
	dirArchive := filepath.Join(work, "archive")
	if err := os.RemoveAll(dirArchive); err != nil {
		return fail("airlock save", err)
	}
	if err := airlockRun(ctx, airlock, "save", "-c", imageset, "-o", dirArchive, "--sign-key", transferKey); err != nil {
		return fail("airlock save", err)
	}

	heading(5, "airlock inspect")
	if err := airlockRun(ctx, airlock, "inspect", dirArchive); err != nil {
		return fail("airlock inspect", err)
	}

	heading(6, "airlock save into "+volumeSize+" tar volumes, unsigned: a separate signing station signs them")
	tarArchive := filepath.Join(work, "archive.tar")
	if err := removeTarArchive(tarArchive); err != nil {
		return fail("airlock save (tar)", err)
	}
	if err := airlockRun(ctx, airlock, "save", "-c", imageset, "-o", tarArchive, "--volume-size", volumeSize); err != nil {
		return fail("airlock save (tar)", err)
	}
	volumes, err := tarVolumes(tarArchive)
	if err != nil {
		return fail("airlock save (tar)", err)
	}
	if len(volumes) == 0 {
		return fail("airlock save (tar)", fmt.Errorf("no volumes %s.000, .001, ... written", tarArchive))
	}
	fmt.Printf("%d volume(s) written: %s\n", len(volumes), strings.Join(baseNames(volumes), " "))
	first := volumes[0]
	out, err := airlockOutput(ctx, airlock, "inspect", first)
	if err != nil {
		return fail("airlock inspect (tar)", err)
	}
	fmt.Printf("$ airlock inspect %s | head -n 7\n%s", first, head(out, 7))

	heading(7, "at a separate signing station: airlock sign verifies the images against the release key given there, then signs")
	fmt.Println("with no image trust given at the station, sign refuses (exit 2): the archive's own keys are never used")
	if err := airlockRun(ctx, airlock, "sign", first, "--key", transferKey); err == nil || !strings.Contains(err.Error(), "status 2") {
		return fail("airlock sign (no image trust)", fmt.Errorf("sign with no image trust must refuse with exit 2, got %v", err))
	}
	fmt.Printf("(refused, as it must)\n\n")
	if err := airlockRun(ctx, airlock, "sign", first, "--key", transferKey, "--image-key", pubKey); err != nil {
		return fail("airlock sign", err)
	}
	if volumes, err = tarVolumes(tarArchive); err != nil { // written again, the signature added
		return fail("airlock sign", err)
	}

	heading(8, "at the site: airlock load the tar volumes into the distribution registry (no referrers API), the archive key pinned; --keep-host keeps the two sources apart; the site signs what it verified")
	siteKey, sitePub, err := c.GenerateKeyPair(ctx, filepath.Join(work, "site-key"))
	if err != nil {
		return fail("cosign generate-key-pair (site key)", err)
	}
	site := dist + "/site"
	if err := airlockRun(ctx, airlock, "load", first, "--to", site, "--keep-host", "--archive-key", transferPub, "--verify", "--sign-key", siteKey, "--site-files", filepath.Join(work, "site-files")); err != nil {
		return fail("airlock load", err)
	}

	heading(9, "before deploy: airlock verify, offline, against the pinned archive key: the archive, then the site registry")
	fmt.Println("with nothing pinned, verify refuses (exit 2): an archive never vouches for itself")
	if err := airlockRun(ctx, airlock, "verify", dirArchive); err == nil || !strings.Contains(err.Error(), "status 2") {
		return fail("airlock verify (no anchor)", fmt.Errorf("verify with nothing pinned must refuse with exit 2, got %v", err))
	}
	fmt.Printf("(refused, as it must)\n\n")
	if err := airlockRun(ctx, airlock, "verify", dirArchive, "--archive-key", transferPub); err != nil {
		return fail("airlock verify (archive)", err)
	}
	if err := airlockRun(ctx, airlock, "verify", site, "--archive", first, "--keep-host", "--archive-key", transferPub); err != nil {
		return fail("airlock verify (site registry)", err)
	}

	heading(10, "at the cluster: airlock admission writes containers/image's policy.json; a pull admits the site-signed image and refuses one the site did not sign")
	policyDir := filepath.Join(work, "policy")
	if err := airlockRun(ctx, airlock, "admission", "--engine", "containers-policy", "--to", site, "--site-key", sitePub, "-o", policyDir); err != nil {
		return fail("airlock admission", err)
	}
	imagepolicy, err := tools.Find("imagepolicy")
	if err != nil {
		return fail("imagepolicy", err)
	}
	pull := func(ref string) (string, error) {
		out, err := exec.CommandContext(ctx, imagepolicy, "--policy", filepath.Join(policyDir, "policy.json"), "--registries.d", filepath.Join(policyDir, "registries.d"), ref).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	host, rest, _ := strings.Cut(refs[1], "/")
	signed := site + "/" + strings.ReplaceAll(host, ":", "-") + "/" + rest
	out, err = pull(signed)
	fmt.Printf("$ imagepolicy (containers/image) %s\n%s\n", signed, out)
	if err != nil {
		return fail("pull of the site-signed image", err)
	}
	if err := airlockRun(ctx, airlock, "copy", "-c", imageset, "--to", site+"/unsigned", "--keep-host", "-q"); err != nil {
		return fail("airlock copy (unsigned by the site)", err)
	}
	unsigned := site + "/unsigned/" + strings.ReplaceAll(host, ":", "-") + "/" + rest
	out, err = pull(unsigned)
	fmt.Printf("$ imagepolicy (containers/image) %s\n%s\n", unsigned, out)
	if err == nil {
		return fail("pull of an image the site did not sign", fmt.Errorf("admitted; it must be refused"))
	}
	fmt.Printf("(refused, as it must)\n")

	fmt.Printf("\n== done\n")
	fmt.Printf("archive:  %s  (directory, OCI image layout; inspect with: %s inspect %s)\n", dirArchive, airlockArg, dirArchive)
	fmt.Printf("volumes:  %s  (%d tar volume(s) of at most %s, their list (names, sizes, order) in %s)\n",
		strings.Join(volumes, " "), len(volumes), volumeSize, filepath.Base(tarArchive)+".sha256")
	fmt.Printf("site:     %s (loaded, verified, signed by %s), site files in %s\n", site, sitePub, filepath.Join(work, "site-files"))
	fmt.Printf("policy:   %s (containers/image: policy.json, registries.d)\n", policyDir)
	return nil
}

// imageSet returns the ImageSet naming refs, trusting the key at keyPath (relative to
// the file).
func imageSet(refs []string, keyPath string) string {
	var b strings.Builder
	b.WriteString("apiVersion: airlock.dev/v1alpha1\nkind: ImageSet\nimages:\n")
	for _, r := range refs {
		fmt.Fprintf(&b, "  - ref: %s\n", r)
	}
	b.WriteString("referrers:\n  enabled: true\n  artifactTypes: [default]\n")
	fmt.Fprintf(&b, "trust:\n  keys: [%s]\n", keyPath)
	return b.String()
}

// airlockRun runs airlock with args, its output going straight to the terminal.
func airlockRun(ctx context.Context, airlock string, args ...string) error {
	fmt.Printf("$ airlock %s\n", strings.Join(args, " "))
	cmd := airlockCommand(ctx, airlock, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return exitError(cmd.Run())
}

// airlockOutput runs airlock with args and returns its stdout; stderr goes to the terminal.
func airlockOutput(ctx context.Context, airlock string, args ...string) (string, error) {
	cmd := airlockCommand(ctx, airlock, args...)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	err := cmd.Run()
	if err != nil {
		os.Stdout.Write(stdout.Bytes())
	}
	return stdout.String(), exitError(err)
}

func airlockCommand(ctx context.Context, airlock string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, airlock, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// exitError says which exit status airlock gave.
func exitError(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("airlock exited with status %d (its output is above)", ee.ExitCode())
	}
	return err
}

// volumeName matches NAME.tar.000, NAME.tar.001, ...
var volumeName = regexp.MustCompile(`\.tar\.[0-9]{3,}$`)

// tarVolumes lists the volumes of the tar archive base, in order.
func tarVolumes(base string) ([]string, error) {
	matches, err := filepath.Glob(base + ".*")
	if err != nil {
		return nil, err
	}
	var vols []string
	for _, m := range matches {
		if volumeName.MatchString(m) {
			vols = append(vols, m)
		}
	}
	return vols, nil
}

// removeTarArchive removes NAME.tar, its volumes and its checksum list from an earlier run.
func removeTarArchive(base string) error {
	matches, err := filepath.Glob(base + ".*")
	if err != nil {
		return err
	}
	for _, p := range append(matches, base) {
		if p != base && !volumeName.MatchString(p) && !strings.HasSuffix(p, ".sha256") {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}

func baseNames(paths []string) []string {
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = filepath.Base(p)
	}
	return names
}

// head returns the first n lines of s, and a line saying how many were left out.
func head(s string, n int) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	lines := 0
	for sc.Scan() {
		if lines < n {
			b.WriteString(sc.Text() + "\n")
		}
		lines++
	}
	if lines > n {
		fmt.Fprintf(&b, "... (%d more lines)\n", lines-n)
	}
	return b.String()
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}

// short abbreviates a digest for display.
func short(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
		return d[:i+13]
	}
	return d
}
