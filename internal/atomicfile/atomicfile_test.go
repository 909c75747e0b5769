package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteFileReplaces checks that the new content and mode replace the old, and that no temporary
// file is left behind.
func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "index.json")
	if err := os.WriteFile(name, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(name, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(name)
	if err != nil || string(b) != "new" {
		t.Fatalf("content = %q, %v; want new", b, err)
	}
	if fi, _ := os.Stat(name); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644", fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only index.json", len(entries))
	}
}

// TestWriteFileMissingDir checks that a failed write leaves nothing behind and reports the error.
func TestWriteFileMissingDir(t *testing.T) {
	if err := WriteFile(filepath.Join(t.TempDir(), "no", "such"), []byte("x"), 0o644); err == nil {
		t.Fatal("no error for a missing directory")
	}
}

// TestWriteFileRenameFails: when the rename fails (name is a directory that holds a file), WriteFile
// reports it, leaves the directory as it was and removes its temporary file.
func TestWriteFileRenameFails(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "index.json")
	if err := os.MkdirAll(filepath.Join(name, "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(name, []byte("new"), 0o644)
	if err == nil || !strings.Contains(err.Error(), "rename") {
		t.Fatalf("got %v, want the rename's failure", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "index.json" || !entries[0].IsDir() {
		t.Errorf("directory holds %v, want only the directory index.json (no temporary file)", entries)
	}
	if _, err := os.Stat(filepath.Join(name, "inside")); err != nil {
		t.Errorf("the directory named index.json changed: %v", err)
	}
}
