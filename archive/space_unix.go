//go:build linux || darwin || freebsd || netbsd || openbsd

package archive

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// FreeSpace returns the bytes available to this user on the file system holding path, or on that of
// its nearest existing parent.
func FreeSpace(path string) (int64, error) {
	for {
		var st unix.Statfs_t
		err := unix.Statfs(path, &st)
		if err == nil {
			return int64(st.Bavail) * int64(st.Bsize), nil
		}
		parent := filepath.Dir(path)
		if !os.IsNotExist(err) || parent == path {
			return 0, err
		}
		path = parent
	}
}
