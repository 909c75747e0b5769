//go:build !linux

package archive

import "io/fs"

// stampOf describes a regular file as it is now. Off Linux only its size and modification time are
// used, which whoever rewrites the file can set back: the record is then a weaker shortcut.
func stampOf(fi fs.FileInfo) (fileStamp, bool) {
	if !fi.Mode().IsRegular() {
		return fileStamp{}, false
	}
	return fileStamp{Size: fi.Size(), MTime: fi.ModTime().UnixNano()}, true
}
