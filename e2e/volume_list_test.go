package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
	"airlock.dev/airlock/e2e/internal/tools"
)

// TestTarVolumeList: a default save writes a volume list of sizes and names, in order, and no sums;
// verify finds a missing, truncated or misordered volume with it, naming the volume, exit 1. save
// --volume-sums writes a list that the real sha256sum -c passes, run in the volumes' directory, and
// the archive verifies and loads as before.
func TestTarVolumeList(t *testing.T) {
	ctx := t.Context()
	src := registries.StartDistribution(ctx, t)
	dst := registries.StartDistribution(ctx, t)
	work := t.TempDir()
	f := seed.Sample(ctx, t, src, "team/app", filepath.Join(work, "keys"))
	big := pushRandomImage(ctx, t, src, "team/big", "v1", 3<<20)
	c := &seed.Cosign{Path: tools.Path(t, "cosign"), Home: t.TempDir()}
	if err := c.Sign(ctx, f.PrivateKeyPath, fmt.Sprintf("%s/team/big@%s", src, big)); err != nil {
		t.Fatal(err)
	}
	set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\n  - ref: %s/team/big:v1\ntrust:\n  keys: [keys/%s]\n", f.Ref(), src, filepath.Base(f.PublicKeyPath)))
	sha256sum, err := exec.LookPath("sha256sum")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sha256sum not found")
		}
		t.Skip("sha256sum not found")
	}
	checkSums := func(dir string) (string, error) {
		cmd := exec.CommandContext(ctx, sha256sum, "-c", "airlock.tar"+archive.ChecksumSuffix)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	plain := filepath.Join(work, "plain", "airlock.tar")
	mkdir(t, filepath.Dir(plain))
	mustRun(ctx, t, "save", "-c", set, "-o", plain, "--volume-size", "1MiB")
	vols, _ := filepath.Glob(plain + ".0*")
	if len(vols) < 4 {
		t.Fatalf("want at least 4 volumes of 1 MiB, got %v", vols)
	}
	list, err := os.ReadFile(plain + archive.ChecksumSuffix)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(list)), "\n")
	if len(lines) != len(vols)+1 || !strings.HasPrefix(lines[0], "# ") || regexp.MustCompile(`[0-9a-f]{64}`).Match(list) {
		t.Fatalf("default volume list: want a comment, then a line per volume, no sum:\n%s", list)
	}
	for i, line := range lines[1:] {
		fi, err := os.Stat(vols[i])
		if want := fmt.Sprintf("%d  %s", fi.Size(), filepath.Base(vols[i])); err != nil || line != want {
			t.Errorf("volume list line %d: %q, want %q (%v)", i+2, line, want, err)
		}
	}
	if out, err := checkSums(filepath.Dir(plain)); err == nil {
		t.Errorf("sha256sum -c passed a list without sums:\n%s", out)
	}
	if res := run(ctx, t, "verify", plain+".000", "--insecure-archive-trust"); res.code != 0 {
		t.Fatalf("verify of the honest archive: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}

	for _, d := range []struct {
		name   string
		damage func(t *testing.T, base string)
		want   string
	}{
		{"missing", func(t *testing.T, base string) { os.Remove(base + ".002") }, "volume 3 of "},
		{"truncated", func(t *testing.T, base string) { os.Truncate(base+".001", 1000) }, "volume airlock.tar.001 is 1000 bytes, the other volumes 1048576: it is truncated"},
		{"misordered", func(t *testing.T, base string) {
			os.Rename(base+".001", base+".x")
			os.Rename(base+".002", base+".001")
			os.Rename(base+".x", base+".002")
		}, "does not hash to its name (1 such blob(s)); it is in volumes airlock.tar.000, airlock.tar.001, airlock.tar.002 and airlock.tar.003; a volume is damaged, out of order"},
	} {
		t.Run(d.name, func(t *testing.T) {
			dir := t.TempDir()
			base := copyVolumes(t, plain, dir)
			d.damage(t, base)
			res := run(ctx, t, "verify", base+".000", "--insecure-archive-trust")
			if res.code != 1 || !strings.Contains(res.stderr, d.want) {
				t.Fatalf("verify of a %s volume: exit %d, want 1 and %q:\n%s", d.name, res.code, d.want, res.stderr)
			}
		})
	}

	summed := filepath.Join(work, "summed", "airlock.tar")
	mkdir(t, filepath.Dir(summed))
	mustRun(ctx, t, "save", "-c", set, "-o", summed, "--volume-size", "1MiB", "--volume-sums")
	out, err := checkSums(filepath.Dir(summed))
	if err != nil || strings.Count(out, ": OK\n") != len(vols) {
		t.Fatalf("sha256sum -c of save --volume-sums: %v, want %d volumes OK:\n%s", err, len(vols), out)
	}
	if res := run(ctx, t, "verify", summed+".000", "--insecure-archive-trust"); res.code != 0 {
		t.Fatalf("verify of the archive with sums: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	mustRun(ctx, t, "load", summed+".000", "--to", dst+"/mirror")
	flipByte(t, summed+".001", 1000)
	if out, err := checkSums(filepath.Dir(summed)); err == nil || !strings.Contains(out, "airlock.tar.001: FAILED") {
		t.Errorf("sha256sum -c passed a damaged volume: %v\n%s", err, out)
	}
	if res := run(ctx, t, "verify", summed+".000", "--insecure-archive-trust"); res.code != 1 || !strings.Contains(res.stderr, "volume airlock.tar.001: sha256 ") {
		t.Errorf("verify of a damaged volume with sums: exit %d, want 1 naming its sum:\n%s", res.code, res.stderr)
	}
	if res := run(ctx, t, "save", "-c", set, "-o", filepath.Join(work, "dir"), "--volume-sums"); res.code != 2 || !strings.Contains(res.stderr, "--volume-sums needs a tar output") {
		t.Errorf("save --volume-sums into a directory: exit %d, want 2:\n%s", res.code, res.stderr)
	}
}
