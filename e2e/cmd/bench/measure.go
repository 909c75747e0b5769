package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
)

// result is one round of one scenario.
type result struct {
	Wall    time.Duration
	RSSKiB  int64 // peak RSS of the child processes (the largest one)
	Bytes   int64 // bytes the round had to move, for MB/s
	Found   int   // corpus manifests present in the output
	Corpus  int   // corpus manifests it should hold
	Skipped string
	// RequestsPerImage is what the registry's access log shows the command sent, per image (the
	// small-image rows only; 0 elsewhere).
	RequestsPerImage float64
}

// runner runs child processes, adding up wall time and keeping the peak RSS.
type runner struct {
	env     []string
	verbose bool
	logDir  string
}

// run runs name args, returns its wall time and peak RSS (KiB), and on failure the
// tail of its output.
func (r *runner) run(ctx context.Context, name string, args ...string) (time.Duration, int64, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = r.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	floor := vmHWM("self")
	start := time.Now()
	err := cmd.Start()
	var polled int64
	if err == nil {
		done, peak := make(chan struct{}), make(chan int64)
		go func() { peak <- pollHWM(cmd.Process.Pid, done) }()
		err = cmd.Wait()
		close(done)
		polled = <-peak
	}
	wall := time.Since(start)
	var rss int64
	var cpu time.Duration // user + system, for -v: where a slower run spends its time
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = ru.Maxrss
		}
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	// Linux carries the parent's high-water RSS into the child's ru_maxrss at exec, so a
	// figure not above this process's own is the parent's: use the polled VmHWM then.
	if rss <= floor {
		rss = polled
	}
	if r.verbose {
		fmt.Fprintf(os.Stderr, "  %s %s: %s (cpu %s), %d MiB\n", filepath.Base(name), strings.Join(args, " "), wall.Round(time.Millisecond), cpu.Round(time.Millisecond), rss>>10)
	}
	if r.logDir != "" {
		_ = os.WriteFile(filepath.Join(r.logDir, fmt.Sprintf("%s-%d.log", filepath.Base(name), time.Now().UnixNano())),
			append([]byte(strings.Join(append([]string{name}, args...), " ")+"\n"), out.Bytes()...), 0o644)
	}
	if err != nil {
		b := out.Bytes()
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		return wall, rss, fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, b)
	}
	return wall, rss, nil
}

// runEach runs one command per image, sequentially, adding up the wall time.
func (r *runner) runEach(ctx context.Context, imgs []image, cmd func(image) (string, []string)) (result, error) {
	var res result
	for _, im := range imgs {
		name, args := cmd(im)
		w, rss, err := r.run(ctx, name, args...)
		res.Wall += w
		res.RSSKiB = max(res.RSSKiB, rss)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// layoutManifests counts how many of want are stored as blobs under dir (any
// blobs/sha256 directory below it).
func layoutManifests(dir string, want map[digest.Digest]bool) int {
	n := 0
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Base(filepath.Dir(p)) != "sha256" {
			return nil
		}
		if want[digest.NewDigestFromEncoded(digest.SHA256, d.Name())] {
			n++
		}
		return nil
	})
	return n
}

// tarManifests counts how many of want are stored as blobs in the tar volumes
// base.000, base.001, ... (or base itself when it is not split), read as one stream.
func tarManifests(base string, want map[digest.Digest]bool) (int, error) {
	vols, _ := filepath.Glob(base + ".[0-9][0-9][0-9]")
	sort.Strings(vols)
	if len(vols) == 0 {
		vols = []string{base}
	}
	var readers []io.Reader
	for _, v := range vols {
		f, err := os.Open(v)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		readers = append(readers, f)
	}
	tr := tar.NewReader(io.MultiReader(readers...))
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("read %s: %w", base, err)
		}
		if dir, hex := filepath.Split(h.Name); strings.HasSuffix(dir, "sha256/") &&
			want[digest.NewDigestFromEncoded(digest.SHA256, hex)] {
			n++
		}
	}
}

// registryManifests counts how many of want exist in host under prefix/<repo> for the
// repositories of imgs (HEAD of each manifest in its image's repository).
func registryManifests(ctx context.Context, host, prefix string, imgs []image, byRepo map[string][]digest.Digest) int {
	n := 0
	seen := map[string]bool{}
	for _, im := range imgs {
		if seen[im.Repo] {
			continue
		}
		seen[im.Repo] = true
		for _, d := range byRepo[im.Repo] {
			req, _ := http.NewRequestWithContext(ctx, http.MethodHead,
				"http://"+host+"/v2/"+prefix+"/"+im.Repo+"/manifests/"+d.String(), nil)
			req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					n++
				}
			}
		}
	}
	return n
}

// vmHWM returns the VmHWM (peak RSS, KiB) of /proc/PID/status, 0 when unreadable.
func vmHWM(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// pollHWM reads the VmHWM of pid every 10 ms until done is closed and returns the
// largest value seen (it can miss only a rise in the last 10 ms of the process).
func pollHWM(pid int, done <-chan struct{}) int64 {
	var peak int64
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		peak = max(peak, vmHWM(strconv.Itoa(pid)))
		select {
		case <-done:
			return peak
		case <-tick.C:
		}
	}
}
