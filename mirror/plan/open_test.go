package plan_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
)

// TestOpenByForm: FormOf tells each location by its form, and what is an archive opens
// (OpenArchive); a registry reference is left as it is.
func TestOpenByForm(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	mirrortest.WriteMinimalArchive(t, dir)
	os.WriteFile(filepath.Join(dir, "imageset.yaml"), []byte("kind: ImageSet\n"), 0o644)
	t.Chdir(dir)
	cases := []struct {
		location string
		form     plan.Form
		err      string // a part of the error, when one is wanted
	}{
		{location: filepath.Join(dir, "layout"), form: plan.FormDirectory},
		{location: "layout", form: plan.FormDirectory}, // relative, existing
		{location: filepath.Join(dir, "a.tar"), form: plan.FormTar},
		{location: filepath.Join(dir, "a.tar.000"), form: plan.FormTar},
		{location: "a.tar.sha256", form: plan.FormTar},
		{location: "registry.site:5000/mirror", form: plan.FormRegistry},
		{location: "registry.example.com/team/app", form: plan.FormRegistry},
		{location: "localhost:5000", form: plan.FormRegistry},
		{location: "127.0.0.1:5000/mirror/", form: plan.FormRegistry},
		{location: "", err: "no location given"},
		{location: "mirror", err: "mirror: no such file or directory, and not a registry reference"},
		{location: "Registry.Example.com/Team", err: "not a registry reference"},
		{location: "imageset.yaml", err: "imageset.yaml is a file but not an archive"},
		{location: filepath.Join(dir, "nothing"), err: "open archive: stat " + filepath.Join(dir, "nothing") + ": no such file or directory"},
		{location: "./nothing", err: "no such file or directory"},
		{location: filepath.Join(dir, "b.tar"), err: "open archive: lstat " + filepath.Join(dir, "b.tar")},
	}
	for _, c := range cases {
		form, err := plan.FormOf(c.location)
		var r *archive.Reader
		if err == nil && form != plan.FormRegistry {
			r, err = plan.OpenArchive(ctx, c.location)
		}
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("open %q: %v, want an error with %q", c.location, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("open %q: %v", c.location, err)
			continue
		}
		if form != c.form || (r != nil) != (c.form != plan.FormRegistry) {
			t.Errorf("open %q: form %s, archive %v; want form %s", c.location, form, r != nil, c.form)
		}
		if r != nil && len(r.Index.Manifests) != 0 {
			t.Errorf("open %q: index %+v, not the archive written", c.location, r.Index)
		}
		if r != nil {
			r.Close()
		}
	}
	for location, want := range map[string]string{
		"registry.site:5000/mirror": "registry.site:5000/mirror: no such file or directory (it reads as a registry reference): want an archive (",
		"mirror":                    "mirror: no such file or directory, and not a registry reference: want an archive (a directory, NAME.tar, NAME.tar.000 or NAME.tar.sha256)",
		"imageset.yaml":             "imageset.yaml is a file but not an archive: want an archive (a directory, NAME.tar, NAME.tar.000 or NAME.tar.sha256)",
	} {
		if _, err := plan.OpenArchive(ctx, location); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "or a registry") {
			t.Errorf("OpenArchive(%q): %v, want %q and no registry offered", location, err, want)
		}
	}
	r, err := plan.OpenArchive(ctx, "a.tar.000")
	if err != nil {
		t.Fatalf("OpenArchive of a tar volume: %v", err)
	}
	r.Close()
}
