package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/e2e/internal/proxy"
	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
	"airlock.dev/airlock/e2e/internal/tools"
)

// TestSaveKilledResumesWithRange kills a save half-way through one large blob and checks that the
// re-run asks only for the rest of it (a Range request) and fetches much less than the blob's size.
func TestSaveKilledResumesWithRange(t *testing.T) {
	ctx := t.Context()
	src := registries.StartDistribution(ctx, t)
	const size = 8 << 20
	pushRandomImage(ctx, t, src, "team/big", "v1", size)
	work := t.TempDir()
	slow := proxy.StartWith(t, src, proxy.Options{BytesPerSecond: 4 << 20})
	set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s/team/big:v1\n", slow.Host))
	out := filepath.Join(work, "archive")

	cmd := exec.CommandContext(ctx, airlock(t), "save", "-c", set, "-o", out)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for slow.Served() < size/2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Kill()
	if err := cmd.Wait(); err == nil {
		t.Fatal("save finished before it was killed")
	}
	partials, _ := filepath.Glob(filepath.Join(out, ".airlock-ingest", "*.partial"))
	if len(partials) != 1 {
		t.Fatalf("want one partial blob after the kill, got %v", partials)
	}

	again := proxy.StartWith(t, src, proxy.Options{})
	set = writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s/team/big:v1\n", again.Host))
	res := mustRun(ctx, t, "save", "-c", set, "-o", out, "--format", "json")
	var sum struct {
		Copy struct {
			Resumed      int
			BytesFetched int64
		}
	}
	if err := json.Unmarshal([]byte(res.stdout), &sum); err != nil {
		t.Fatal(err)
	}
	t.Logf("first run served %d bytes before the kill; re-run: %d bytes through the proxy, %d fetched by airlock, %d range requests",
		slow.Served(), again.Served(), sum.Copy.BytesFetched, again.RangeRequests())
	if sum.Copy.Resumed != 1 || again.RangeRequests() == 0 {
		t.Errorf("resumed %d blobs with %d range requests; want the partial blob resumed with a Range request", sum.Copy.Resumed, again.RangeRequests())
	}
	if again.Served() > size*55/100 {
		t.Errorf("the re-run fetched %d bytes of the %d-byte blob; want under 55%%", again.Served(), size)
	}
	checkEveryBlobHashesToItsName(t, out)
}

// TestDeltaArchive saves a full archive, then a delta after one new tag, and loads both.
func TestDeltaArchive(t *testing.T) {
	ctx := t.Context()
	src := registries.StartDistribution(ctx, t)
	dst := registries.StartDistribution(ctx, t)
	work := t.TempDir()
	pushRandomImage(ctx, t, src, "team/app", "v1", 2<<20)
	full := filepath.Join(work, "full")
	set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s/team/app:v1\n", src))
	mustRun(ctx, t, "save", "-c", set, "-o", full)

	v2 := pushRandomImage(ctx, t, src, "team/app", "v2", 1<<20)
	set = writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s/team/app:v1\n  - ref: %s/team/app:v2\n", src, src))
	delta := filepath.Join(work, "delta")
	mustRun(ctx, t, "save", "-c", set, "-o", delta, "--since", full)
	if n := dirSize(t, delta); n > (1<<20)+(64<<10) {
		t.Errorf("the delta holds %d bytes; want about the 1 MiB of the new tag", n)
	}
	cat := readCatalog(ctx, t, delta)
	if cat.Base == "" || len(cat.Images) != 2 {
		t.Fatalf("delta catalog: base %q, %d images", cat.Base, len(cat.Images))
	}

	// The connected side may keep only the previous catalog (the archive went to the site).
	catJSON := filepath.Join(work, "full-catalog.json")
	if err := os.WriteFile(catJSON, []byte(mustRun(ctx, t, "inspect", full, "--format", "json").stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	fromCat := filepath.Join(work, "delta-from-catalog")
	mustRun(ctx, t, "save", "-c", set, "-o", fromCat, "--since", catJSON)
	if c2 := readCatalog(ctx, t, fromCat); c2.Base != cat.Base || dirSize(t, fromCat) > (1<<20)+(64<<10) {
		t.Errorf("delta from the catalog file: base %s (want %s), %d bytes", c2.Base, cat.Base, dirSize(t, fromCat))
	}

	// Into a registry without the base: refused, naming what is missing.
	res := run(ctx, t, "load", delta, "--to", dst+"/fresh")
	if res.code == 0 || !strings.Contains(res.stderr, "load the base archive first") {
		t.Errorf("delta into a target without its base: exit %d\n%s", res.code, res.stderr)
	}
	if status, _, _ := get(ctx, t, "HEAD", dst, "/v2/fresh/team/app/manifests/v2"); status != 404 {
		t.Errorf("the refused delta left tag v2 on the target")
	}

	// Base first, then the delta, which a signing station signs as it signs a full archive; the site
	// pins that key, and an unsigned delta is refused before anything of it is pushed.
	c := &seed.Cosign{Path: tools.Path(t, "cosign"), Home: t.TempDir()}
	key, pub, err := c.GenerateKeyPair(ctx, filepath.Join(work, "transfer"))
	if err != nil {
		t.Fatal(err)
	}
	mustRun(ctx, t, "load", full, "--to", dst+"/mirror")
	if res := run(ctx, t, "load", delta, "--to", dst+"/mirror", "--archive-key", pub); res.code != 1 || !strings.Contains(res.stderr, "is not signed") {
		t.Errorf("unsigned delta with the archive key pinned: exit %d\n%s", res.code, res.stderr)
	}
	if status, _, _ := get(ctx, t, "HEAD", dst, "/v2/mirror/team/app/manifests/v2"); status != 404 {
		t.Errorf("the refused delta left tag v2 on the target")
	}
	// The images here are unsigned (pushRandomImage): the station checks the content only, and says so.
	if res := runEnv(ctx, t, []string{"COSIGN_PASSWORD=" + seed.KeyPassword}, "sign", delta, "--key", key, "--content-only"); res.code != 0 || !strings.Contains(res.stdout, "signed "+delta) || !strings.Contains(res.stdout, "content only") {
		t.Fatalf("airlock sign the delta: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	mustRun(ctx, t, "load", delta, "--to", dst+"/mirror", "--archive-key", pub)
	if got := manifest(ctx, t, dst, "mirror/team/app", "v2", &ocispec.Manifest{}); got != v2 {
		t.Errorf("v2 on the target is %s, want %s", got, v2)
	}
}
