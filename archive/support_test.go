package archive

import (
	"io/fs"
	"os"
)

// Test support: what only the tests use, moved out of the product code.

// Abandon removes the partial volumes and the journal: nothing of this run is kept.
func (w *TarWriter) Abandon() {
	w.Close()
	w.vf.remove()
	if w.journal != nil {
		os.Remove(w.journal.Name())
	}
}

// FS returns the archive as a file system in OCI layout form.
func (r *Reader) FS() fs.FS { return r.fsys }

// checkVolumeFiles runs openVolumeFiles's checks of the volumes listed for base and closes them.
func checkVolumeFiles(base string, vols []Volume) error {
	files, err := openVolumeFiles(base, vols)
	for _, f := range files {
		f.Close()
	}
	return err
}
