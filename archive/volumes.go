package archive

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

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
	f, err := os.Open(listPath)
	if err != nil {
		return nil, fmt.Errorf("volume list %s: %w; it is written with the archive and must travel with it", listPath, err)
	}
	defer f.Close()
	var vols []Volume
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
		f, err := os.Open(filepath.Join(dir, v.Name))
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, fmt.Errorf("volume %d of %d (%s): %w; copy every volume listed in %s", i+1, len(vols), v.Name, err, base+ChecksumSuffix)
		}
		files = append(files, f)
	}
	return files, nil
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
