package archive

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"

	"airlock.dev/airlock/internal/atomicfile"
)

// ChecksumSuffix is appended to the archive name to form its volume list, in sha256sum(1) format, so
// `sha256sum -c NAME.tar.sha256` also checks a copy.
const ChecksumSuffix = ".sha256"

var volumeSuffix = regexp.MustCompile(`\.tar\.[0-9]{3}$`)

// Volume is one file of a tar archive, with its sha256.
type Volume struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// BaseName returns NAME.tar for NAME.tar, NAME.tar.000 or NAME.tar.sha256.
func BaseName(path string) string {
	switch {
	case volumeSuffix.MatchString(path):
		return path[:len(path)-4]
	case strings.HasSuffix(path, ".tar"+ChecksumSuffix):
		return strings.TrimSuffix(path, ChecksumSuffix)
	}
	return path
}

// readVolumeList reads NAME.tar.sha256.
func readVolumeList(base string) ([]Volume, error) {
	listPath := base + ChecksumSuffix
	f, err := openRegular(listPath, "volume list "+listPath, listFix)
	if err != nil {
		var ce *CheckError
		if errors.As(err, &ce) {
			return nil, err
		}
		return nil, fmt.Errorf("volume list %s: %w; it is written with the archive and must travel with it", listPath, err)
	}
	defer f.Close()
	var vols []Volume
	listed := map[string]bool{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		sum, name, ok := strings.Cut(text, "  ")
		if !ok || len(sum) != 64 || strings.ContainsAny(name, `/\`) || name == ".." {
			return nil, fmt.Errorf("%s:%d: want \"<sha256>  <volume name>\"", listPath, line)
		}
		if _, err := hex.DecodeString(sum); err != nil {
			return nil, fmt.Errorf("%s:%d: bad sha256 %q", listPath, line, sum)
		}
		if !strings.HasPrefix(name, filepath.Base(base)) {
			return nil, fmt.Errorf("%s:%d: volume %q does not belong to %s", listPath, line, name, filepath.Base(base))
		}
		if listed[name] {
			return nil, fmt.Errorf("%s:%d: volume %q is listed twice: the list is damaged or was altered; copy it again from the connected side", listPath, line, name)
		}
		listed[name] = true
		vols = append(vols, Volume{Name: name, SHA256: sum})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(vols) == 0 {
		return nil, fmt.Errorf("%s lists no volumes", listPath)
	}
	return vols, nil
}

// openVolumeFiles opens the volumes listed for base, in order, for reading in place.
func openVolumeFiles(base string, vols []Volume) ([]*os.File, error) {
	dir := filepath.Dir(base)
	files := make([]*os.File, 0, len(vols))
	for i, v := range vols {
		f, err := openRegular(filepath.Join(dir, v.Name), "volume "+v.Name, volumeFix)
		if err != nil {
			var ce *CheckError
			for _, f := range files {
				f.Close()
			}
			if errors.As(err, &ce) {
				return nil, err
			}
			return nil, fmt.Errorf("volume %d of %d (%s): %w; copy every volume listed in %s", i+1, len(vols), v.Name, err, base+ChecksumSuffix)
		}
		files = append(files, f)
	}
	return files, nil
}

// volumeFix and listFix say what to do about a volume, or a volume list, that is not a regular file.
const (
	volumeFix = "copy the volume itself (not a link to it) from the connected side in its place"
	listFix   = "copy the list itself, as save wrote it, beside the volumes"
)

// refuseIrregularVolumes refuses, before anything else looks at them, volumes of base that are not
// regular files: a symbolic link (which could point at any file of this host), a FIFO, a device, a
// socket or a directory. Lstat, so that nothing is followed; a missing volume is left to
// checkVolumeFiles, which names it as missing.
func refuseIrregularVolumes(base string, vols []Volume) error {
	dir := filepath.Dir(base)
	for _, v := range vols {
		fi, err := os.Lstat(filepath.Join(dir, v.Name))
		if err != nil {
			continue
		}
		if !fi.Mode().IsRegular() {
			return refuseIrregular("volume "+v.Name, fi.Mode(), volumeFix)
		}
	}
	return nil
}

// irregularKind names what a file that is not a regular file is.
func irregularKind(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeSymlink != 0:
		return "a symbolic link"
	case mode&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case mode&fs.ModeDevice != 0:
		return "a device"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode.IsDir():
		return "a directory"
	}
	return "not a regular file"
}

// refuseIrregular refuses what (a volume, the volume list) for being something other than a regular file.
func refuseIrregular(what string, mode fs.FileMode, fix string) error {
	return checkErr("%s is %s: refused, tar volumes and their list are read only as regular files, and nothing is followed; %s", what, irregularKind(mode), fix)
}

// openRegular opens the regular file p for reading and refuses anything else with a *CheckError that
// names it as what: a symbolic link is not followed (O_NOFOLLOW where there is one), a FIFO is
// opened without blocking and refused, and a file swapped in between the Lstat and the open is
// refused too.
func openRegular(p, what, fix string) (*os.File, error) {
	lfi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !lfi.Mode().IsRegular() {
		return nil, refuseIrregular(what, lfi.Mode(), fix)
	}
	f, err := os.OpenFile(p, os.O_RDONLY|noFollow, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, refuseIrregular(what, fs.ModeSymlink, fix)
	}
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
		return nil, refuseIrregular(what, st.Mode(), fix)
	}
	if !os.SameFile(lfi, st) {
		f.Close()
		return nil, checkErr("%s was replaced while it was opened: refused; %s", what, fix)
	}
	return f, nil
}

// checkVolumes hashes each volume, a few at a time, and compares it with the list; it returns the
// first damaged one, in order. The list only finds accidental damage (a bad or incomplete copy) early:
// it travels with the volumes and proves nothing against whoever rewrote them, so blobs are hashed
// against their own digests all the same.
func checkVolumes(files []*os.File, vols []Volume) error {
	errs := make([]error, len(vols))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(hashWorkers(), len(vols)) {
		wg.Go(func() {
			buf := make([]byte, hashBufferSize)
			for i := range next {
				h := sha256.New()
				// io.NewSectionReader: hides os.File's WriterTo, which would copy through a small buffer.
				if _, err := io.CopyBuffer(h, io.NewSectionReader(files[i], 0, 1<<62), buf); err != nil {
					errs[i] = fmt.Errorf("volume %s: %w", vols[i].Name, err)
					continue
				}
				if got := hex.EncodeToString(h.Sum(nil)); got != vols[i].SHA256 {
					errs[i] = checkErr("volume %s: sha256 %s, the volume list says %s: the copy is damaged or from another archive; copy it again", vols[i].Name, got, vols[i].SHA256)
				}
			}
		})
	}
	for i := range vols {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err // the first damaged volume, in order
		}
	}
	return nil
}

// volumeWriter splits a stream into volumes of at most size bytes (0: one file), hashing each.
type volumeWriter struct {
	base    string
	size    int64 // 0 = unlimited, one file named base
	cur     *os.File
	curN    int64
	hash    hashWriter
	vols    []Volume
	partial []string
}

type hashWriter interface {
	io.Writer
	Sum([]byte) []byte
}

func (w *volumeWriter) name(i int) string {
	if w.size <= 0 {
		return w.base
	}
	return fmt.Sprintf("%s.%03d", w.base, i)
}

func (w *volumeWriter) open() error {
	p := w.name(len(w.vols)) + ".partial"
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	w.partial = append(w.partial, p)
	w.cur, w.curN, w.hash = f, 0, sha256.New()
	return nil
}

func (w *volumeWriter) closeCur() error {
	if w.cur == nil {
		return nil
	}
	err := w.cur.Close()
	w.vols = append(w.vols, Volume{Name: filepath.Base(w.name(len(w.vols))), Size: w.curN, SHA256: hex.EncodeToString(w.hash.Sum(nil))})
	w.cur = nil
	return err
}

func (w *volumeWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if w.cur == nil {
			if err := w.open(); err != nil {
				return written, err
			}
		}
		chunk := p
		if w.size > 0 && w.curN+int64(len(chunk)) > w.size {
			chunk = chunk[:w.size-w.curN]
		}
		n, err := w.cur.Write(chunk)
		w.hash.Write(chunk[:n])
		w.curN += int64(n)
		written += n
		if err != nil {
			return written, err
		}
		p = p[n:]
		if w.size > 0 && w.curN == w.size {
			if err := w.closeCur(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// finish closes the last volume, renames every volume into place and writes the volume list last.
func (w *volumeWriter) finish() ([]Volume, error) {
	if w.cur == nil && len(w.vols) == 0 {
		if err := w.open(); err != nil {
			return nil, err
		}
	}
	if err := w.closeCur(); err != nil {
		return nil, err
	}
	for i, v := range w.vols {
		if err := os.Rename(w.partial[i], filepath.Join(filepath.Dir(w.base), v.Name)); err != nil {
			return nil, err
		}
	}
	if err := writeVolumeList(w.base, w.vols); err != nil {
		return nil, err
	}
	return w.vols, nil
}

// abort removes partial volumes.
func (w *volumeWriter) abort() {
	if w.cur != nil {
		w.cur.Close()
	}
	for _, p := range w.partial {
		os.Remove(p)
	}
}

// writeVolumeList writes the volume list of base (NAME.tar.sha256, in sha256sum(1) format): last, once
// every volume is under its final name.
func writeVolumeList(base string, vols []Volume) error {
	var list strings.Builder
	for _, v := range vols {
		fmt.Fprintf(&list, "%s  %s\n", v.SHA256, v.Name)
	}
	return atomicfile.WriteFile(base+ChecksumSuffix, []byte(list.String()), 0o644)
}
