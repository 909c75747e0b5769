package mirror

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/internal/mirrortest"
)

func pinnedSet(t *testing.T, dir string) *config.ImageSet {
	t.Helper()
	path := filepath.Join(dir, "imageset.yaml")
	data := "apiVersion: airlock.dev/v1alpha1\nkind: ImageSet\nimages:\n  - ref: registry.example.com/team/app:1.0\n  - ref: registry.example.com/team/api:2.0\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// TestWritePinned: the pinned set names every image by its tag and the digest it resolved to, is
// readable by others, and no temporary file is left beside it.
func TestWritePinned(t *testing.T) {
	dir := t.TempDir()
	set := pinnedSet(t, dir)
	_, plans := mirrortest.SamplePlans(t)
	out := filepath.Join(dir, "pinned.yaml")
	if err := os.WriteFile(out, []byte("old content"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writePinned(set, plans, out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range plans {
		if !strings.Contains(string(b), p.Root.Desc.Digest.String()) {
			t.Errorf("pinned set does not pin %s by %s:\n%s", p.Source, p.Root.Desc.Digest, b)
		}
	}
	if strings.Contains(string(b), "old content") {
		t.Errorf("old content kept:\n%s", b)
	}
	pinned, err := config.Load(out)
	if err != nil {
		t.Fatalf("pinned set does not load: %v\n%s", err, b)
	}
	if len(pinned.Images) != 2 || pinned.Images[0].Digest != plans[0].Root.Desc.Digest || pinned.Images[1].Digest != plans[1].Root.Desc.Digest ||
		pinned.Images[0].Tag != "1.0" || pinned.Images[1].Tag != "2.0" {
		t.Errorf("pinned images %+v, want both tagged and pinned", pinned.Images)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("pinned set mode %v, want 0644", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "imageset.yaml" && e.Name() != "pinned.yaml" {
			t.Errorf("left behind %s", e.Name())
		}
	}
}

func TestWritePinnedFailures(t *testing.T) {
	dir := t.TempDir()
	set := pinnedSet(t, dir)
	_, plans := mirrortest.SamplePlans(t)

	// No images: nothing to pin, and nothing written.
	out := filepath.Join(dir, "none.yaml")
	if err := writePinned(set, nil, out); err == nil || !strings.Contains(err.Error(), "nothing to pin") {
		t.Errorf("no plans: %v, want nothing to pin", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("no plans: %s written", out)
	}

	// A directory that does not exist: the error names the flag.
	if err := writePinned(set, plans, filepath.Join(dir, "no", "such", "pinned.yaml")); err == nil || !strings.HasPrefix(err.Error(), "--pin-out: ") {
		t.Errorf("missing directory: %v, want a --pin-out error", err)
	}

	// The path is a directory: the rename fails, and the temporary file is removed.
	target := filepath.Join(dir, "taken")
	if err := os.MkdirAll(filepath.Join(target, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writePinned(set, plans, target); err == nil || !strings.HasPrefix(err.Error(), "--pin-out: ") {
		t.Errorf("path is a directory: %v, want a --pin-out error", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// TestPinnedFile: the set stored in an archive is named imageset.pinned.yaml and pins each image; a
// set without a path is written as if it were imageset.yaml.
func TestPinnedFile(t *testing.T) {
	dir := t.TempDir()
	set := pinnedSet(t, dir)
	_, plans := mirrortest.SamplePlans(t)
	f, err := pinnedFile(set, plans)
	if err != nil {
		t.Fatal(err)
	}
	if f.name != PinnedName || !strings.Contains(string(f.data), plans[1].Root.Desc.Digest.String()) {
		t.Errorf("pinned file %q:\n%s", f.name, f.data)
	}
	set.Path = ""
	if _, err := pinnedFile(set, nil); err == nil || !strings.Contains(err.Error(), "imageset.yaml") {
		t.Errorf("pathless set with no images: %v, want the error to name imageset.yaml", err)
	}
}
