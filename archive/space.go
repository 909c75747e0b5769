package archive

import (
	"errors"
	"fmt"
	"io"
	"syscall"
)

// LocalWriteError is a failure to write to the local disk (the archive or its staging). It is not a
// network error: it is not retried, and it names the path and, when the disk is full, the space still
// needed.
type LocalWriteError struct {
	Path string
	Err  error
	// Need is how many more bytes the write needed when the disk was full; 0 if unknown.
	Need int64
}

func (e *LocalWriteError) Error() string {
	if errors.Is(e.Err, syscall.ENOSPC) {
		msg := fmt.Sprintf("write %s: the disk is full", e.Path)
		if e.Need > 0 {
			msg += fmt.Sprintf(": %s more needed for this blob alone", HumanBytes(e.Need))
		}
		if free, err := FreeSpace(e.Path); err == nil {
			msg += fmt.Sprintf(" (%s free)", HumanBytes(free))
		}
		return msg + "; free space there or write the archive elsewhere, then run again (what was written is kept and resumed)"
	}
	return fmt.Sprintf("write %s: %v", e.Path, e.Err)
}

func (e *LocalWriteError) Unwrap() error { return e.Err }

// localWriter marks every write error of w as a *LocalWriteError for path; left is how many bytes the
// whole write still has to go, for the message of a full disk.
type localWriter struct {
	w    io.Writer
	path string
	left int64
}

func (l *localWriter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	l.left -= int64(n)
	if err != nil {
		return n, &LocalWriteError{Path: l.path, Err: err, Need: max(l.left, 0)}
	}
	return n, nil
}

// SpaceError reports, before anything is written, that a disk lacks the space a run needs.
type SpaceError struct {
	Dir        string
	Need, Free int64
}

func (e *SpaceError) Error() string {
	return fmt.Sprintf("%s has %s free, and this run needs %s more: nothing written; free space there or write the archive elsewhere", e.Dir, HumanBytes(e.Free), HumanBytes(e.Need))
}

// CheckSpace refuses, with both numbers, a run that needs more than the free space of the file system
// holding dir (or its nearest existing parent). Where the free space cannot be read, it does not refuse.
func CheckSpace(dir string, need int64) error {
	free, err := FreeSpace(dir)
	if err != nil || need <= free {
		return nil
	}
	return &SpaceError{Dir: dir, Need: need, Free: free}
}

// HumanBytes formats n in binary units: 512 B, 1.5 KiB, 3.0 GiB.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Permanent tells a retry loop not to try again: a local disk error does not go away by waiting.
func (e *LocalWriteError) Permanent() bool { return true }
