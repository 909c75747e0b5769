package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
)

// TestSaveOnOneRegistry covers the platform filter, pinned digests, tar volumes and dry runs, on the
// distribution registry (no referrers API), seeded once.
func TestSaveOnOneRegistry(t *testing.T) {
	ctx := t.Context()
	host := registries.StartDistribution(ctx, t)
	keys := filepath.Join(t.TempDir(), "keys")
	f := seed.Sample(ctx, t, host, "team/app", keys)
	amd64, arm64 := f.Platforms["linux/amd64"].Digest, f.Platforms["linux/arm64"].Digest

	t.Run("platform filter keeps the index digest and leaves the other platform out", func(t *testing.T) {
		work := t.TempDir()
		set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s@%s\n    platforms: [linux/amd64]\n", f.Ref(), f.IndexDigest))
		out := filepath.Join(work, "archive")
		mustRun(ctx, t, "save", "-c", set, "-o", out)
		idx, err := os.ReadFile(archive.BlobPath(out, f.IndexDigest))
		if err != nil || digest.FromBytes(idx) != f.IndexDigest {
			t.Fatalf("the index is not stored byte for byte: %v", err)
		}
		if _, err := os.Stat(archive.BlobPath(out, amd64)); err != nil {
			t.Errorf("linux/amd64 manifest missing: %v", err)
		}
		if _, err := os.Stat(archive.BlobPath(out, arm64)); !os.IsNotExist(err) {
			t.Errorf("linux/arm64 manifest is in the archive (err %v); the filter asked for linux/amd64 only", err)
		}
		if _, err := os.Stat(archive.BlobPath(out, f.Referrers[seed.Amd64Signature].Manifest.Digest)); err != nil {
			t.Errorf("the signature on the amd64 manifest is missing: %v", err)
		}
		cat := readCatalog(ctx, t, out)
		img := cat.Images[0]
		if img.Digest != f.IndexDigest || !img.Sparse || len(img.Platforms) != 1 || img.Platforms[0].Digest != amd64 {
			t.Errorf("catalog image: %+v", img)
		}
	})

	t.Run("a moved tag fails naming both digests", func(t *testing.T) {
		work := t.TempDir()
		set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s@%s\n", f.Ref(), amd64))
		res := run(ctx, t, "save", "-c", set, "-o", filepath.Join(work, "archive"))
		if res.code != 1 {
			t.Fatalf("exit %d, want 1 (a check failed)\n%s", res.code, res.stderr)
		}
		for _, want := range []string{f.IndexDigest.String(), amd64.String(), "moved", "line 4"} {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("error lacks %q:\n%s", want, res.stderr)
			}
		}
		if _, err := os.Stat(filepath.Join(work, "archive")); !os.IsNotExist(err) {
			t.Errorf("a failed save left an archive behind")
		}
	})

	t.Run("a digest missing from the repository fails clearly", func(t *testing.T) {
		work := t.TempDir()
		missing := digest.FromString("not pushed anywhere")
		set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s/team/app@%s\n", host, missing))
		res := run(ctx, t, "save", "-c", set, "-o", filepath.Join(work, "archive"))
		if res.code != 2 {
			t.Fatalf("exit %d, want 2\n%s", res.code, res.stderr)
		}
		if !strings.Contains(res.stderr, missing.String()) || !strings.Contains(res.stderr, "does not exist in "+host+"/team/app") {
			t.Errorf("error does not name the digest and the repository:\n%s", res.stderr)
		}
	})

	t.Run("a bad ImageSet names file, line and field", func(t *testing.T) {
		work := t.TempDir()
		set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\n    platfroms: [linux/amd64]\n", f.Ref()))
		res := run(ctx, t, "save", "-c", set, "-o", filepath.Join(work, "archive"))
		if res.code != 2 || !strings.Contains(res.stderr, "imageset.yaml:5") || !strings.Contains(res.stderr, "platfroms") {
			t.Errorf("exit %d, stderr:\n%s", res.code, res.stderr)
		}
	})

	t.Run("tar volumes are written with their checksum list and read in place", func(t *testing.T) {
		work := t.TempDir()
		set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\n", f.Ref()))
		out := filepath.Join(work, "airlock.tar")
		mustRun(ctx, t, "save", "-c", set, "-o", out, "--volume-size", "1MiB")
		list, err := os.ReadFile(out + ".sha256")
		if err != nil || !strings.Contains(string(list), "airlock.tar.000") {
			t.Fatalf("volume list: %q, %v", list, err)
		}
		if _, err := os.Stat(out + ".staging"); !os.IsNotExist(err) {
			t.Errorf("staging directory left behind")
		}
		var cat archive.Catalog
		if err := json.Unmarshal([]byte(mustRun(ctx, t, "inspect", out+".000", "--format", "json").stdout), &cat); err != nil {
			t.Fatal(err)
		}
		if len(cat.Referrers) != len(seed.Kinds) || cat.Images[0].Digest != f.IndexDigest {
			t.Errorf("catalog read from the tar: %d referrers, image %s", len(cat.Referrers), cat.Images[0].Digest)
		}
	})

	t.Run("dry run resolves and writes nothing", func(t *testing.T) {
		work := t.TempDir()
		set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\n", f.Ref()))
		out := filepath.Join(work, "archive")
		res := mustRun(ctx, t, "save", "-c", set, "-o", out, "--dry-run")
		if !strings.Contains(res.stdout, f.IndexDigest.String()) || !strings.Contains(res.stdout, "referrers: 6") {
			t.Errorf("dry run plan:\n%s", res.stdout)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("dry run wrote %s", out)
		}
	})

	t.Run("load --dry-run maps and pushes nothing", func(t *testing.T) {
		work := t.TempDir()
		set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\n", f.Ref()))
		out := filepath.Join(work, "archive")
		mustRun(ctx, t, "save", "-c", set, "-o", out)
		res := mustRun(ctx, t, "load", out, "--to", host+"/dry", "--dry-run")
		if !strings.Contains(res.stdout, host+"/dry/team/app:v1") || !strings.Contains(res.stdout, "planned") {
			t.Errorf("dry-run plan:\n%s", res.stdout)
		}
		if status, _, _ := get(ctx, t, "GET", host, "/v2/dry/team/app/tags/list"); status == 200 {
			t.Errorf("load --dry-run pushed to the target")
		}
	})

	t.Run("diff against an archive: ok, then stale when the tag moves", func(t *testing.T) {
		work := t.TempDir()
		pushRandomImage(ctx, t, host, "team/moving", "v1", 2048)
		set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\n  - ref: %s/team/moving:v1\n", f.Ref(), host))
		out := filepath.Join(work, "archive")
		mustRun(ctx, t, "save", "-c", set, "-o", out)
		if res := run(ctx, t, "diff", "-c", set, "--against", out); res.code != 0 || strings.Count(res.stdout, "ok ") != 2 {
			t.Fatalf("diff right after save: exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}
		moved := pushRandomImage(ctx, t, host, "team/moving", "v1", 2048)
		res := run(ctx, t, "diff", "-c", set, "--against", out, "--format", "json")
		var entries []struct{ Source, Status string }
		json.Unmarshal([]byte(res.stdout), &entries)
		if res.code != 1 || len(entries) != 2 || entries[0].Status != "ok" || entries[1].Status != "stale" {
			t.Errorf("diff after the tag moved to %s: exit %d, %+v\n%s", moved, res.code, entries, res.stderr)
		}
	})

	t.Run("referrers disabled saves the image alone", func(t *testing.T) {
		work := t.TempDir()
		set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\nreferrers:\n  enabled: false\n", f.Ref()))
		out := filepath.Join(work, "archive")
		mustRun(ctx, t, "save", "-c", set, "-o", out)
		if cat := readCatalog(ctx, t, out); len(cat.Referrers) != 0 {
			t.Errorf("referrers saved with discovery off: %d", len(cat.Referrers))
		}
	})

	t.Run("artifactTypes keeps only the types asked for", func(t *testing.T) {
		work := t.TempDir()
		set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\nreferrers:\n  artifactTypes: [application/spdx+json]\n", f.Ref()))
		out := filepath.Join(work, "archive")
		mustRun(ctx, t, "save", "-c", set, "-o", out)
		cat := readCatalog(ctx, t, out)
		if len(cat.Referrers) != 1 || cat.Referrers[0].Digest != f.Referrers[seed.IndexSBOM].Manifest.Digest {
			t.Errorf("want only the SBOM, got %+v", cat.Referrers)
		}
	})
}
