package archive

import (
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
)

// dirFS serves a layout directory through an os.Root, so nothing outside the directory is reached,
// and serves regular files and directories only: a symbolic link, FIFO, socket or device in place
// of index.json, a blob or a directory of blobs is refused by name before it is opened (a link to
// /dev/zero would never end, a FIFO would block the open). Each component of a path is checked with
// Lstat; the file is then opened without blocking and checked again once open, so a file swapped in
// between the two is refused too.
type dirFS struct {
	root *os.Root
	name string // the directory as the user named it, for messages
}

func openDirFS(p string) (*dirFS, error) {
	root, err := os.OpenRoot(p)
	if err != nil {
		return nil, err
	}
	return &dirFS{root: root, name: p}, nil
}

func (d *dirFS) Close() error { return d.root.Close() }

// refuse reports name as something other than a regular file or directory.
func (d *dirFS) refuse(name string, mode fs.FileMode) error {
	return checkErr("%s: %s is %s: refused, an archive holds only regular files; %s", d.name, name, irregularKind(mode), damaged)
}

// lstat checks every component of name and returns the last one's Lstat.
func (d *dirFS) lstat(op, name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return d.root.Lstat(".")
	}
	parts := strings.Split(name, "/")
	for i := range parts {
		p := path.Join(parts[:i+1]...)
		fi, err := d.root.Lstat(p)
		if err != nil {
			return nil, err
		}
		last := i == len(parts)-1
		if (!last && !fi.IsDir()) || (last && !fi.IsDir() && !fi.Mode().IsRegular()) {
			if !last && fi.Mode().IsRegular() {
				return nil, &fs.PathError{Op: op, Path: name, Err: syscall.ENOTDIR}
			}
			return nil, d.refuse(p, fi.Mode())
		}
		if last {
			return fi, nil
		}
	}
	panic("unreachable")
}

// Stat returns the Lstat of name: a regular file or a directory, anything else is refused.
func (d *dirFS) Stat(name string) (fs.FileInfo, error) { return d.lstat("stat", name) }

// Open opens a regular file or a directory.
func (d *dirFS) Open(name string) (fs.File, error) {
	fi, err := d.lstat("open", name)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return d.root.Open(name)
	}
	// O_NONBLOCK: a FIFO swapped in after the Lstat must not block the open.
	f, err := d.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, d.refuse(name, st.Mode())
	}
	if !os.SameFile(fi, st) {
		f.Close()
		return nil, checkErr("%s: %s was replaced while it was opened: refused; %s", d.name, name, damaged)
	}
	return f, nil
}

// readLimited reads the regular file name whole, refusing more than max bytes.
func readLimited(fsys fs.FS, name string, max int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, checkErr("%s is more than %d bytes, over the limit: refused; %s", name, max, damaged)
	}
	return b, nil
}
