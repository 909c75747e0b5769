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
