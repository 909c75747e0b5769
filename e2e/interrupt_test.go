package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/e2e/internal/proxy"
	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
)

// TestLoadKilledPartWayResumes kills a load with SIGKILL part-way, once in each phase (uploading
// blobs, pushing manifests, writing tags; the manifest and tag points drawn from a fixed seed), runs
// it again, and checks the result while a poller watches the target the whole time: no tag may ever
// point at content that is not all there. The re-run goes through a counting proxy: it must upload no
// blob the killed run landed, and no more bytes than a full load less what landed.
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

	// A full load, counted, for the points to kill at and the bytes a load uploads.
	full := proxy.Start(t, dst, 0)
	mustRun(ctx, t, "load", arch, "--to", full.Host+"/full", "--concurrency", "2")
	digestPuts := full.Count(func(r proxy.Request) bool { return isManifestPut(r) && isDigestRef(r.Path) })
	tagPuts := full.Count(func(r proxy.Request) bool { return isManifestPut(r) && !isDigestRef(r.Path) })
	fullWrites := full.Count(proxy.Request.Write)
	t.Logf("a full load: %d writes, %d bytes uploaded, %d manifest PUTs by digest, %d by tag", fullWrites, full.Uploaded(), digestPuts, tagPuts)
	if digestPuts < 2 || tagPuts < 2 {
		t.Fatalf("a full load made %d manifest PUTs by digest and %d by tag; want several of each", digestPuts, tagPuts)
	}
	rng := rand.New(rand.NewPCG(13, 13))
	nDigest := 1 + rng.IntN(digestPuts-1)
	nTag := 1 + rng.IntN(tagPuts-1)
	blobPuts := 0
	points := []struct {
		phase string
		// kill tells, for each request (with the manifest PUTs by digest and by tag counted so far,
		// it included), whether to kill the load now.
		kill func(r proxy.Request, byDigest, byTag int) bool
	}{
		{"blobs (at blob upload 4)", func(r proxy.Request, _, _ int) bool {
			if uploadDigest(r) != "" {
				blobPuts++
			}
			return blobPuts == 4
		}},
		{fmt.Sprintf("manifests (at manifest PUT %d of %d)", nDigest, digestPuts), func(r proxy.Request, d, _ int) bool {
			return isManifestPut(r) && isDigestRef(r.Path) && d == nDigest
		}},
		{fmt.Sprintf("tags (at tag PUT %d of %d)", nTag, tagPuts), func(r proxy.Request, _, tg int) bool {
			return isManifestPut(r) && !isDigestRef(r.Path) && tg == nTag
		}},
	}

	for i, pt := range points {
		t.Run(pt.phase, func(t *testing.T) {
			prefix := fmt.Sprintf("mirror%d", i)
			repos := []string{prefix + "/team/app", prefix + "/team/svc0", prefix + "/team/svc1", prefix + "/team/svc2"}
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

			var killed atomic.Bool
			var cmd *exec.Cmd
			var mu sync.Mutex
			byDigest, byTag := 0, 0
			slow := proxy.StartWith(t, dst, proxy.Options{Delay: 20 * time.Millisecond, OnRequest: func(r *http.Request, _ int) {
				mu.Lock()
				defer mu.Unlock()
				req := proxy.Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery}
				if isManifestPut(req) {
					if isDigestRef(req.Path) {
						byDigest++
					} else {
						byTag++
					}
				}
				if !killed.Load() && pt.kill(req, byDigest, byTag) {
					killed.Store(true)
					cmd.Process.Kill()
				}
			}})
			cmd = exec.CommandContext(ctx, airlock(t), "load", arch, "--to", slow.Host+"/"+prefix, "--concurrency", "2")
			mu.Lock()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			mu.Unlock()
			err := cmd.Wait()
			if !killed.Load() || err == nil {
				t.Fatalf("the load was not killed in the %s phase (%v): %d manifest PUTs by digest, %d by tag", pt.phase, err, byDigest, byTag)
			}
			time.Sleep(100 * time.Millisecond) // let the proxy finish what it was forwarding
			t.Logf("killed at %d writes, %d manifest PUTs by digest, %d by tag: %v", slow.Count(proxy.Request.Write), byDigest, byTag, err)

			// What the killed run landed: each blob it uploaded that the target now holds.
			landed := map[string]int64{} // repo@digest -> size
			var landedBytes int64
			for _, r := range slow.Requests() {
				d := uploadDigest(r)
				if d == "" {
					continue
				}
				repo := uploadRepo(r.Path)
				if status, h, _ := rawGet(ctx, http.MethodHead, dst, "/v2/"+repo+"/blobs/"+d); status == http.StatusOK {
					size, _ := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
					if _, ok := landed[repo+"@"+d]; !ok {
						landed[repo+"@"+d] = size
						landedBytes += size
					}
				}
			}
			if len(landed) == 0 {
				t.Fatalf("the killed run landed no blob; nothing to resume")
			}
			// The tag phase leaves tags for the poller to check; the blob phase none.
			tags := 0
			for _, r := range repos {
				var tl struct{ Tags []string }
				if status, _, body := rawGet(ctx, http.MethodGet, dst, "/v2/"+r+"/tags/list"); status == http.StatusOK && json.Unmarshal(body, &tl) == nil {
					tags += len(tl.Tags)
				}
			}
			switch {
			case i == 0 && tags != 0:
				t.Errorf("killed in the blob phase, yet %d tags are on the target", tags)
			case i == 2 && tags == 0:
				t.Errorf("killed in the tag phase, yet no tag is on the target")
			}

			again := proxy.Start(t, dst, 0)
			rep := loadJSON(ctx, t, "load", arch, "--to", again.Host+"/"+prefix)
			stopPoll()
			wg.Wait()
			for _, img := range rep.Images {
				if img.Status == "failed" {
					t.Errorf("%s: failed on the second run", img.Source)
				}
			}
			for _, r := range again.Requests() {
				if d := uploadDigest(r); d != "" {
					if _, ok := landed[strings.Replace(uploadRepo(r.Path), again.Host+"/", "", 1)+"@"+d]; ok {
						t.Errorf("the re-run uploaded %s into %s again, which the killed run had landed", d, uploadRepo(r.Path))
					}
				}
			}
			writes := again.Count(proxy.Request.Write)
			t.Logf("re-run: %d writes, %d bytes uploaded; the killed run landed %d blobs, %d bytes", writes, again.Uploaded(), len(landed), landedBytes)
			// slack: the discovery indexes airlock writes itself may differ by a few bytes from run to run
			const slack = 1 << 10
			if max := full.Uploaded() - landedBytes + slack; again.Uploaded() > max {
				t.Errorf("the re-run uploaded %d bytes, more than a full load (%d) less what had landed (%d)", again.Uploaded(), full.Uploaded(), landedBytes)
			}
			if writes >= fullWrites {
				t.Errorf("the re-run made %d writes, as many as a full load (%d)", writes, fullWrites)
			}
			if got := manifest(ctx, t, dst, prefix+"/team/app", "v1", &ocispec.Index{}); got != f.IndexDigest {
				t.Errorf("tag v1 is %s, want %s", got, f.IndexDigest)
			}
			tf := *f
			tf.Host, tf.Repo = dst, prefix+"/team/app"
			checkCosignVerifies(ctx, t, &tf)
			if polls < 3 {
				t.Errorf("the poller ran only %d times", polls)
			}
			for _, v := range violations {
				t.Error(v)
			}
		})
	}
}

func isManifestPut(r proxy.Request) bool {
	return r.Method == http.MethodPut && strings.Contains(r.Path, "/manifests/")
}

// isDigestRef tells whether a /manifests/ path ends in a digest rather than a tag.
func isDigestRef(p string) bool {
	return strings.Contains(p[strings.LastIndex(p, "/")+1:], ":")
}

// uploadDigest returns the digest a blob upload completes (PUT .../blobs/uploads/...?digest=), or "".
func uploadDigest(r proxy.Request) string {
	if !strings.Contains(r.Path, "/blobs/uploads/") || (r.Method != http.MethodPut && r.Method != http.MethodPost) {
		return ""
	}
	q, _ := url.ParseQuery(r.Query)
	return q.Get("digest")
}

// uploadRepo returns the repository of a /v2/REPO/blobs/uploads/... path.
func uploadRepo(p string) string {
	p = strings.TrimPrefix(p, "/v2/")
	if i := strings.Index(p, "/blobs/"); i >= 0 {
		return p[:i]
	}
	return p
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
