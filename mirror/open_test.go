package mirror

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeMinimalArchive writes the smallest archive archive.Open accepts, as a directory dir/layout and as
// one tar volume dir/a.tar.000 with its list dir/a.tar.sha256.
func writeMinimalArchive(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"oci-layout": `{"imageLayoutVersion":"1.0.0"}`,
		"index.json": `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`,
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	os.MkdirAll(filepath.Join(dir, "layout"), 0o755)
	for _, name := range []string{"oci-layout", "index.json"} {
		if err := os.WriteFile(filepath.Join(dir, "layout", name), []byte(files[name]), 0o644); err != nil {
			t.Fatal(err)
		}
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[name]))
	}
	tw.Close()
	sum := sha256.Sum256(buf.Bytes())
	os.WriteFile(filepath.Join(dir, "a.tar.000"), buf.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "a.tar.sha256"), []byte(hex.EncodeToString(sum[:])+"  a.tar.000\n"), 0o644)
}

func TestOpenByForm(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeMinimalArchive(t, dir)
	os.WriteFile(filepath.Join(dir, "imageset.yaml"), []byte("kind: ImageSet\n"), 0o644)
	t.Chdir(dir)
	cases := []struct {
		location string
		form     Form
		err      string // a part of the error, when one is wanted
	}{
		{location: filepath.Join(dir, "layout"), form: FormDirectory},
		{location: "layout", form: FormDirectory}, // relative, existing
		{location: filepath.Join(dir, "a.tar"), form: FormTar},
		{location: filepath.Join(dir, "a.tar.000"), form: FormTar},
		{location: "a.tar.sha256", form: FormTar},
		{location: "registry.site:5000/mirror", form: FormRegistry},
		{location: "registry.example.com/team/app", form: FormRegistry},
		{location: "localhost:5000", form: FormRegistry},
		{location: "127.0.0.1:5000/mirror/", form: FormRegistry},
		{location: "", err: "no location given"},
		{location: "mirror", err: "mirror: no such file or directory, and not a registry reference"},
		{location: "Registry.Example.com/Team", err: "not a registry reference"},
		{location: "imageset.yaml", err: "imageset.yaml is a file but not an archive"},
		{location: filepath.Join(dir, "nothing"), err: "open archive: stat " + filepath.Join(dir, "nothing") + ": no such file or directory"},
		{location: "./nothing", err: "no such file or directory"},
		{location: filepath.Join(dir, "b.tar"), err: "open archive: lstat " + filepath.Join(dir, "b.tar")},
	}
	for _, c := range cases {
		l, err := Open(ctx, c.location)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Open(%q): %v, want an error with %q", c.location, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Open(%q): %v", c.location, err)
			continue
		}
		if l.Form != c.form || (l.Archive != nil) != (c.form != FormRegistry) || (c.form == FormRegistry && l.Registry != c.location) {
			t.Errorf("Open(%q) = %+v, want form %s", c.location, l, c.form)
		}
		if l.Archive != nil && len(l.Archive.Index.Manifests) != 0 {
			t.Errorf("Open(%q): index %+v, not the archive written", c.location, l.Archive.Index)
		}
		l.Close()
	}
	for location, want := range map[string]string{
		"registry.site:5000/mirror": "registry.site:5000/mirror: no such file or directory (it reads as a registry reference): want an archive (",
		"mirror":                    "mirror: no such file or directory, and not a registry reference: want an archive (a directory, NAME.tar, NAME.tar.000 or NAME.tar.sha256)",
		"imageset.yaml":             "imageset.yaml is a file but not an archive: want an archive (a directory, NAME.tar, NAME.tar.000 or NAME.tar.sha256)",
	} {
		if _, err := OpenArchive(ctx, location); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "or a registry") {
			t.Errorf("OpenArchive(%q): %v, want %q and no registry offered", location, err, want)
		}
	}
	r, err := OpenArchive(ctx, "a.tar.000")
	if err != nil {
		t.Fatalf("OpenArchive of a tar volume: %v", err)
	}
	r.Close()
}
