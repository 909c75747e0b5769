// Package atomicfile writes a file so that a reader, or a run after a crash, finds either the old
// content or the new, never a part of it.
package atomicfile

import (
	"os"
	"path/filepath"
	"runtime"
)

// WriteFile writes data to name: into a temporary file in the same directory, synced to disk, renamed
// over name, and the directory synced so that the rename itself survives a crash. The new file gets
// mode perm. On failure the temporary file is removed and name is left as it was.
func WriteFile(name string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable. Windows cannot sync a directory; its renames are journaled.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
