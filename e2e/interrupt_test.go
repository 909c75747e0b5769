package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/e2e/internal/proxy"
	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
)

// TestLoadKilledPartWayResumes kills a load with SIGKILL part-way (the target is reached through a
// slow proxy), runs it again, and checks the result while a poller watches the target the whole time:
// no tag may ever point at content that is not all there.
func TestLoadKilledPartWayResumes(t *testing.T) {
	ctx := t.Context()
	src := registries.StartGGCR(t)
	dst := registries.StartDistribution(ctx, t)
	work := t.TempDir()
	f := seed.Sample(ctx, t, src, "team/app", filepath.Join(work, "keys"))
	refs := fmt.Sprintf("images:\n  - ref: %s\n", f.Ref())
	for i := range 3 {
		pushRandomImage(ctx, t, src, fmt.Sprintf("team/svc%d", i), "v1", 256<<10)
		refs += fmt.Sprintf("  - ref: %s/team/svc%d:v1\n", src, i)
	}
	set := writeImageSet(t, work, refs)
	arch := filepath.Join(work, "archive")
	mustRun(ctx, t, "save", "-c", set, "-o", arch)

	repos := []string{"mirror/team/app", "mirror/team/svc0", "mirror/team/svc1", "mirror/team/svc2"}
	pollCtx, stopPoll := context.WithCancel(ctx)
	var violations []string
	var polls int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for pollCtx.Err() == nil {
			for _, r := range repos {
				violations = append(violations, checkTagsComplete(pollCtx, dst, r)...)
			}
			polls++
			time.Sleep(20 * time.Millisecond)
		}
	}()

	slow := proxy.Start(t, dst, 60*time.Millisecond)
	cmd := exec.CommandContext(ctx, airlock(t), "load", arch, "--to", slow.Host+"/mirror", "--concurrency", "2")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for slow.Writes() < 8 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Kill()
	err := cmd.Wait()
	if err == nil {
		t.Fatalf("the load finished before it could be killed (%d writes); slow the proxy down", slow.Writes())
	}
	t.Logf("killed after %d writes through the proxy: %v", slow.Writes(), err)

	rep := loadJSON(ctx, t, "load", arch, "--to", dst+"/mirror")
	stopPoll()
	wg.Wait()
	for _, img := range rep.Images {
		if img.Status == "failed" {
			t.Errorf("%s: failed on the second run", img.Source)
		}
	}
	if rep.Blobs.Skipped == 0 {
		t.Errorf("the second run skipped no blobs: the first run pushed nothing before it was killed?")
	}
	if got := manifest(ctx, t, dst, "mirror/team/app", "v1", &ocispec.Index{}); got != f.IndexDigest {
		t.Errorf("tag v1 is %s, want %s", got, f.IndexDigest)
	}
	tf := *f
	tf.Host, tf.Repo = dst, "mirror/team/app"
	checkCosignVerifies(ctx, t, &tf)
	if polls < 3 {
		t.Errorf("the poller ran only %d times", polls)
	}
	for _, v := range violations {
		t.Error(v)
	}
}

// checkTagsComplete lists repo's tags on host and reports every tag that reaches a manifest or blob
// that is not there.
func checkTagsComplete(ctx context.Context, host, repo string) []string {
	var tags struct{ Tags []string }
	if status, _, body := rawGet(ctx, http.MethodGet, host, "/v2/"+repo+"/tags/list"); status != http.StatusOK || json.Unmarshal(body, &tags) != nil {
		return nil // repository not there yet
	}
	var bad []string
	for _, tag := range tags.Tags {
		if missing := missingUnder(ctx, host, repo, tag, 0); missing != "" {
			bad = append(bad, fmt.Sprintf("tag %s:%s points at incomplete content: %s", repo, tag, missing))
		}
	}
	return bad
}

// missingUnder returns what ref reaches that is missing, or "".
func missingUnder(ctx context.Context, host, repo, ref string, depth int) string {
	status, _, body := rawGet(ctx, http.MethodGet, host, "/v2/"+repo+"/manifests/"+ref)
	if status != http.StatusOK {
		if ctx.Err() != nil || depth == 0 {
			// The tag itself does not resolve (yet): distribution lists a tag a moment before its
			// link is written. Only what a resolving tag reaches must be complete.
			return ""
		}
		return fmt.Sprintf("manifest %s (status %d)", ref, status)
	}
	var m struct {
		Manifests []ocispec.Descriptor
		Config    *ocispec.Descriptor
		Layers    []ocispec.Descriptor
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return "unreadable manifest " + ref
	}
	for _, c := range m.Manifests {
		if s := missingUnder(ctx, host, repo, c.Digest.String(), depth+1); s != "" {
			return s
		}
	}
	blobs := m.Layers
	if m.Config != nil {
		blobs = append(blobs, *m.Config)
	}
	for _, b := range blobs {
		if status, _, _ := rawGet(ctx, http.MethodHead, host, "/v2/"+repo+"/blobs/"+b.Digest.String()); status != http.StatusOK && ctx.Err() == nil {
			return fmt.Sprintf("blob %s of %s (status %d)", b.Digest, ref, status)
		}
	}
	return ""
}

// rawGet is get without a testing.T, for use from a goroutine.
func rawGet(ctx context.Context, method, host, path string) (int, http.Header, []byte) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+host+path, nil)
	if err != nil {
		return 0, nil, nil
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil
	}
	defer resp.Body.Close()
	var buf [1 << 16]byte
	n, _ := readFull(resp.Body, buf[:])
	return resp.StatusCode, resp.Header, buf[:n]
}
