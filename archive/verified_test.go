package archive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestResaveNeverTrustsUnverifiedBlob reopens a layout as a re-save does: a blob stored and recorded
// is trusted while its file is unchanged; a flipped byte (even with the modification time put back)
// or a missing record makes it hashed again, and a wrong blob is removed, reported and stored anew.
func TestResaveNeverTrustsUnverifiedBlob(t *testing.T) {
	ctx := context.Background()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir := t.TempDir()
	l, err := CreateLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, d := blob(t, 300_000)
	if err := l.Push(ctx, d, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	p := BlobPath(dir, d.Digest)

	reopen := func() *Layout {
		t.Helper()
		l, err := CreateLayout(dir)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	// Unchanged: trusted from the record, without hashing.
	l = reopen()
	fi, _ := os.Lstat(p)
	if !l.verified.trusted(d.Digest, fi) {
		t.Fatal("a blob stored by this host and unchanged since is not recorded as verified")
	}
	if ok, err := l.Exists(ctx, d); !ok || err != nil {
		t.Fatalf("unchanged blob: Exists = %v, %v", ok, err)
	}

	for _, c := range []struct {
		name   string
		damage func()
	}{
		{"flipped byte", func() { flipAt(t, p, 150_000) }},
		{"flipped byte, modification time put back", func() {
			fi, _ := os.Stat(p)
			flipAt(t, p, 150_000)
			os.Chtimes(p, fi.ModTime(), fi.ModTime())
		}},
		{"flipped byte, no record on this host", func() {
			flipAt(t, p, 10)
			t.Setenv("XDG_CACHE_HOME", t.TempDir())
		}},
		{"a symbolic link to the right bytes elsewhere", func() {
			q := filepath.Join(t.TempDir(), "elsewhere")
			os.WriteFile(q, b, 0o644)
			os.Remove(p)
			os.Symlink(q, p)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.damage()
			l := reopen()
			ok, err := l.Exists(ctx, d)
			if err != nil || ok {
				t.Fatalf("damaged blob: Exists = %v, %v; want false (fetch it again)", ok, err)
			}
			if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
				t.Fatalf("the damaged blob is still in place")
			}
			if c.name != "a symbolic link to the right bytes elsewhere" && !slices.Contains(l.Repaired(), d.Digest) {
				t.Errorf("Repaired() = %v, want %s", l.Repaired(), d.Digest)
			}
			// The re-save fetches it again; then it is right and recorded.
			if err := l.Push(ctx, d, bytes.NewReader(b)); err != nil {
				t.Fatal(err)
			}
			if err := l.Commit(); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(p); !bytes.Equal(got, b) {
				t.Fatal("the blob was not stored again")
			}
			if ok, err := reopen().Exists(ctx, d); !ok || err != nil {
				t.Fatalf("repaired blob: Exists = %v, %v", ok, err)
			}
		})
	}
}

// TestResaveRecordOutsideLayout: the record of verified blobs is not in the layout directory.
func TestResaveRecordOutsideLayout(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir := t.TempDir()
	writeCheckSample(t, dir)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		switch e.Name() {
		case "oci-layout", "index.json", "blobs":
		default:
			t.Errorf("unexpected file in the layout: %s", e.Name())
		}
	}
	file, _ := verifiedStateFile(dir)
	if _, err := os.Stat(file); err != nil {
		t.Errorf("no record of verified blobs: %v", err)
	}
}

// TestMain keeps the record of verified blobs out of the user's cache directory.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "airlock-archive-cache")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
