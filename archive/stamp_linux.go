package archive

import (
	"io/fs"
	"syscall"
)

// stampOf describes a regular file as it is now: size, modification and change times (nanoseconds),
// device and inode. The change time cannot be set back by whoever rewrites the file.
func stampOf(fi fs.FileInfo) (fileStamp, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() {
		return fileStamp{}, false
	}
	return fileStamp{Size: fi.Size(), MTime: fi.ModTime().UnixNano(), CTime: st.Ctim.Nano(), Dev: uint64(st.Dev), Ino: st.Ino}, true
}
