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
	"strconv"
	"strings"
	"syscall"

	"airlock.dev/airlock/internal/atomicfile"
	"golang.org/x/sync/errgroup"
)

// ChecksumSuffix is appended to the archive name to form its volume list, NAME.tar.sha256: each
// volume's name, in order, with its size ("<bytes>  <name>", the default) or, written by save
// --volume-sums, its sha256 in sha256sum(1) format, so that `sha256sum -c NAME.tar.sha256` checks a copy.
const ChecksumSuffix = ".sha256"

// listHeader starts a volume list without sums: a comment for whoever reads it, skipped by readers.
const listHeader = "# airlock volume list: bytes and name of each volume, in order. No sums: airlock save --volume-sums writes this file in sha256sum -c format.\n"

var volumeSuffix = regexp.MustCompile(`\.tar\.[0-9]{3}$`)

// Volume is one file of a tar archive: its name, its size and, when the list carries sums, its sha256.
type Volume struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
}

// hasSums reports whether the volume list vols carries sums (it carries sums for all or for none).
func hasSums(vols []Volume) bool { return len(vols) > 0 && vols[0].SHA256 != "" }

// volumeName is the name of volume i of base in a list of n: NAME.tar alone, or NAME.tar.NNN.
func volumeName(base string, i, n int) string {
	if n == 1 && i == 0 {
		return filepath.Base(base)
	}
	return fmt.Sprintf("%s.%03d", filepath.Base(base), i)
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

// readVolumeList reads NAME.tar.sha256: lines "<bytes>  <volume>" (save's default) or "<sha256>
// <volume>" (save --volume-sums, and every list older airlock wrote), one kind in a list, the volumes in
// stream order (NAME.tar.000, .001, ...; or NAME.tar or NAME.tar.000 alone); lines starting with # are
// comments.
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
	var lines []int
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		v, err := parseVolumeLine(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", listPath, line, err)
		}
		if len(vols) > 0 && hasSums(vols) != (v.SHA256 != "") {
			return nil, fmt.Errorf("%s:%d: sizes and sums mixed in one list: the list is damaged or was altered; copy it again from the connected side", listPath, line)
		}
		vols, lines = append(vols, v), append(lines, line)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(vols) == 0 {
		return nil, fmt.Errorf("%s lists no volumes", listPath)
	}
	listed := map[string]bool{}
	for i, v := range vols {
		want := volumeName(base, i, len(vols))
		switch {
		case v.Name == want || len(vols) == 1 && v.Name == want+".000":
		case !strings.HasPrefix(v.Name, filepath.Base(base)):
			return nil, fmt.Errorf("%s:%d: volume %q does not belong to %s", listPath, lines[i], v.Name, filepath.Base(base))
		case listed[v.Name]:
			return nil, fmt.Errorf("%s:%d: volume %q is listed twice: the list is damaged or was altered; copy it again from the connected side", listPath, lines[i], v.Name)
		default:
			return nil, fmt.Errorf("%s:%d: volume %q where the list must name %s (volume %d of %d): the list is out of order or was altered; copy it again from the connected side", listPath, lines[i], v.Name, want, i+1, len(vols))
		}
		listed[v.Name] = true
	}
	return vols, nil
}

// parseVolumeLine reads "<bytes>  <volume>" or "<sha256>  <volume>".
func parseVolumeLine(text string) (Volume, error) {
	field, name, ok := strings.Cut(text, "  ")
	if !ok || strings.ContainsAny(name, `/\`) || name == ".." {
		return Volume{}, errors.New(`want "<bytes>  <volume name>" or "<sha256>  <volume name>"`)
	}
	if len(field) == 64 {
		if _, err := hex.DecodeString(field); err != nil {
			return Volume{}, fmt.Errorf("bad sha256 %q", field)
		}
		return Volume{Name: name, SHA256: field}, nil
	}
	n, err := strconv.ParseInt(field, 10, 64)
	if err != nil || n < 0 || field != strconv.FormatInt(n, 10) {
		return Volume{}, fmt.Errorf("bad size %q: want a number of bytes, or a sha256", field)
	}
	return Volume{Name: name, Size: n}, nil
}

// openVolumeFiles opens the volumes listed for base, in order, for reading in place, and checks them
// before anything is hashed, so that a missing or truncated volume is told from a damaged one: each is
// a regular file (nothing is followed) and is there (a missing one is named with its place), every
// volume but the last is as large as the largest (the volume size), the last no larger, and the
// stream they form ends where a tar stream ends (its two zero blocks). A list without sums gives each
// volume's size: a volume of another size is refused (truncated, or from another archive). Each
// volume's Size is set to its file's.
func openVolumeFiles(base string, vols []Volume) (files []*os.File, err error) {
	dir, list := filepath.Dir(base), base+ChecksumSuffix
	defer func() {
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			files = nil
		}
	}()
	sizes := make([]int64, len(vols))
	var largest, total int64 // largest: of every volume but the last
	for i, v := range vols {
		f, err := openRegular(filepath.Join(dir, v.Name), "volume "+v.Name, volumeFix)
		var ce *CheckError
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return files, checkErr("volume %d of %d (%s) is missing: copy every volume listed in %s", i+1, len(vols), v.Name, list)
		case errors.As(err, &ce):
			return files, err
		case err != nil:
			return files, fmt.Errorf("volume %d of %d (%s): %w; copy every volume listed in %s", i+1, len(vols), v.Name, err, list)
		}
		files = append(files, f)
		st, err := f.Stat()
		if err != nil {
			return files, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		sizes[i] = st.Size()
		if i < len(vols)-1 {
			largest = max(largest, sizes[i])
		}
		total += sizes[i]
	}
	for i, v := range vols[:len(vols)-1] {
		if sizes[i] < largest {
			return files, checkErr("volume %s is %d bytes, the other volumes %d: it is truncated (an incomplete copy); copy it again", v.Name, sizes[i], largest)
		}
	}
	last, lastSize := vols[len(vols)-1], sizes[len(vols)-1]
	if len(vols) > 1 && lastSize > largest {
		return files, checkErr("volume %s is %d bytes, larger than the %d-byte volumes before it: it is from another archive; copy the volumes listed in %s again", last.Name, lastSize, largest, list)
	}
	if total%512 != 0 || total < 1024 {
		return files, checkErr("volume %s is %d bytes: the archive does not end where a tar stream ends, it is truncated (an incomplete copy); copy it again", last.Name, lastSize)
	}
	n := min(lastSize, 1024)
	tail := make([]byte, n)
	if _, err := files[len(vols)-1].ReadAt(tail, lastSize-n); err != nil {
		return files, fmt.Errorf("volume %s: %w", last.Name, err)
	}
	for _, c := range tail {
		if c != 0 {
			return files, checkErr("volume %s does not end with the end-of-archive marker of a tar stream: it is truncated (an incomplete copy); copy it again", last.Name)
		}
	}
	for i, v := range vols {
		if !hasSums(vols) && sizes[i] != v.Size {
			return files, checkErr("volume %s is %d bytes, the volume list says %d: it is truncated (an incomplete copy) or from another archive; copy it again", v.Name, sizes[i], v.Size)
		}
		vols[i].Size = sizes[i]
	}
	return files, nil
}

// volumeFix and listFix say what to do about a volume, or a volume list, that is not a regular file.
const (
	volumeFix = "copy the volume itself (not a link to it) from the connected side in its place"
	listFix   = "copy the list itself, as save wrote it, beside the volumes"
)

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

// checkVolumes hashes each volume, a few at a time, and compares it with the list's sums; it returns the
// first damaged one, in order, and nothing when the list has no sums. The sums only find accidental
// damage (a bad or incomplete copy) early: they travel with the volumes and prove nothing against
// whoever rewrote them, so blobs are hashed against their own digests all the same.
func checkVolumes(files []*os.File, vols []Volume) error {
	if !hasSums(vols) {
		return nil
	}
	sums, errs := sumFiles(files)
	for i, err := range errs {
		switch {
		case err != nil:
			return fmt.Errorf("volume %s: %w", vols[i].Name, err)
		case sums[i] != vols[i].SHA256:
			return checkErr("volume %s: sha256 %s, the volume list says %s: the copy is damaged or from another archive; copy it again", vols[i].Name, sums[i], vols[i].SHA256)
		}
	}
	return nil
}

// sumFiles hashes each file whole, a few at a time: sums[i] is files[i]'s sha256, or errs[i] why not.
func sumFiles(files []*os.File) (sums []string, errs []error) {
	sums, errs = make([]string, len(files)), make([]error, len(files))
	var g errgroup.Group
	g.SetLimit(hashWorkers())
	for i, f := range files {
		g.Go(func() error {
			h := sha256.New()
			// io.NewSectionReader: hides os.File's WriterTo, which would copy through a small buffer.
			if _, errs[i] = io.CopyBuffer(h, io.NewSectionReader(f, 0, 1<<62), make([]byte, hashBufferSize)); errs[i] == nil {
				sums[i] = hex.EncodeToString(h.Sum(nil))
			}
			return nil
		})
	}
	g.Wait()
	return sums, errs
}

// addSums sets each volume's sha256 from the file paths[i] holding it: one read of every volume, once
// they are all written (save --volume-sums).
func addSums(vols []Volume, paths []string) error {
	files := make([]*os.File, 0, len(paths))
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	sums, errs := sumFiles(files)
	for i := range vols {
		if errs[i] != nil {
			return fmt.Errorf("sha256 of %s: %w", paths[i], errs[i])
		}
		vols[i].SHA256 = sums[i]
	}
	return nil
}

// writeVolumeList writes the volume list of base, NAME.tar.sha256: last, once every volume is under
// its final name. Its lines are "<sha256>  <volume>" (sha256sum -c format) when vols carry sums, and
// otherwise "<bytes>  <volume>" after a comment saying so.
func writeVolumeList(base string, vols []Volume) error {
	var list strings.Builder
	if !hasSums(vols) {
		list.WriteString(listHeader)
	}
	for _, v := range vols {
		if hasSums(vols) {
			fmt.Fprintf(&list, "%s  %s\n", v.SHA256, v.Name)
		} else {
			fmt.Fprintf(&list, "%d  %s\n", v.Size, v.Name)
		}
	}
	return atomicfile.WriteFile(base+ChecksumSuffix, []byte(list.String()), 0o644)
}
