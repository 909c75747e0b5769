package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TarWriter writes an archive straight into tar volumes (NAME.tar, or NAME.tar.000, .001, ... of a
// volume size), with no layout directory in between. Every blob it is told about up front (the
// content of a save's plans: manifests and blobs) gets a slot at a fixed offset of the tar stream
// (oci-layout first, then the blobs in the order given: the order the copy fetches them, so the
// volumes fill roughly front to back), so blobs arriving together are written at once, each straight
// into its slot as it streams in and is hashed against its digest. What comes after the copy (trust
// files, catalog, its signature) is appended after the slots by Finish, then index.json, last, and
// the volume list last of all (with Sums, each volume's sha256, in one read of the volumes after they
// are written). Until then the volumes are NAME.tar.NNN.partial.
//
// Resume: a journal beside the volumes (in dir) records the layout of the slots, each blob complete
// and how far each partly written one got. A run that finds a journal for the same slots and volume
// size keeps the volumes: a complete blob is hashed again from the volume before it is trusted (Exists),
// a partial one is hashed as far as it got and continued from there (PushResumable asks its source for
// the rest only), and a blob that fails its digest is cut back out (its slot is empty again). Other
// slots, or another volume size, start over.
type TarWriter struct {
	vf      *volumeFiles
	slots   []slot
	byName  map[digest.Digest]int
	end     int64 // end of the slots; Finish appends after it
	journal *os.File
	// Sums makes Finish write each volume's sha256 into the volume list (sha256sum -c format), read
	// back from the volumes once they are written; without it the list holds their sizes.
	Sums bool

	// state[i] is slot i's, read and written only under locks[i] (or before the writer is shared).
	state []slotState
	locks []sync.Mutex
}

type slot struct {
	desc            ocispec.Descriptor
	hdr             []byte
	off, data, next int64
}

type slotState struct {
	have     int64 // bytes of a partly written blob kept (journaled)
	done     bool  // complete
	verified bool  // complete and hashed by this run
}

const journalName = "tar-journal"

// journalEvery is how many bytes of a blob are written between two progress records.
const journalEvery = 8 << 20

// OpenTarWriter plans the tar of base in volumes of volumeSize bytes (0: one file) with a slot for
// each of content (duplicates and invalid digests left out), keeping the journal in dir. It reuses what
// an earlier run of the same plan wrote.
func OpenTarWriter(base string, volumeSize int64, dir string, content []ocispec.Descriptor) (*TarWriter, error) {
	w := &TarWriter{vf: &volumeFiles{base: base, size: volumeSize}, byName: map[digest.Digest]int{}}
	layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err := w.plan(layout, content); err != nil {
		return nil, err
	}
	w.state, w.locks = make([]slotState, len(w.slots)), make([]sync.Mutex, len(w.slots))
	if err := w.openJournal(filepath.Join(dir, journalName), volumeSize); err != nil {
		return nil, err
	}
	if err := w.vf.truncate(w.end); err != nil {
		w.Close()
		return nil, err
	}
	// oci-layout is written again on every run, not trusted from the journal: no check reads it back.
	if err := w.fill(0, layout); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// plan lays out the slots: oci-layout, then every blob in the order of content (the caller's: the
// order the copy fetches them, so the volumes are written roughly front to back).
func (w *TarWriter) plan(layout []byte, content []ocispec.Descriptor) error {
	descs := []ocispec.Descriptor{{Digest: digest.FromBytes(layout), Size: int64(len(layout))}}
	seen := map[digest.Digest]bool{}
	var blobs []ocispec.Descriptor
	for _, d := range content {
		if seen[d.Digest] || d.Digest.Validate() != nil || d.Size < 0 {
			continue
		}
		seen[d.Digest] = true
		blobs = append(blobs, ocispec.Descriptor{Digest: d.Digest, Size: d.Size})
	}
	var off int64
	for i, d := range append(descs, blobs...) {
		name := ocispec.ImageLayoutFile
		if i > 0 {
			name = blobName(d.Digest)
			w.byName[d.Digest] = i
		}
		hdr, err := tarHeader(name, d.Size)
		if err != nil {
			return err
		}
		s := slot{desc: d, hdr: hdr, off: off, data: off + int64(len(hdr))}
		s.next = s.data + d.Size + pad(d.Size)
		w.slots = append(w.slots, s)
		off = s.next
	}
	w.end = off
	return nil
}

func pad(n int64) int64 { return (512 - n%512) % 512 }

// tarHeader encodes the header of a regular file entry, as archive/tar writes it.
func tarHeader(name string, size int64) ([]byte, error) {
	var b bytes.Buffer
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: time.Unix(0, 0).UTC()}
	if err := tar.NewWriter(&b).WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("tar %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// layoutKey names the slot layout and volume size, for the journal's first line.
func (w *TarWriter) layoutKey(volumeSize int64) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\n", volumeSize)
	for _, s := range w.slots {
		fmt.Fprintf(h, "%s %d\n", s.desc.Digest, s.desc.Size)
	}
	return "airlock-tar-journal 1 " + hex.EncodeToString(h.Sum(nil))
}

// openJournal replays the journal at p when it is of this layout; otherwise it starts a new one and
// removes the volumes of the other.
func (w *TarWriter) openJournal(p string, volumeSize int64) error {
	key := w.layoutKey(volumeSize)
	if f, err := os.Open(p); err == nil {
		sc := bufio.NewScanner(f)
		same := sc.Scan() && sc.Text() == key
		for same && sc.Scan() {
			w.replay(sc.Text())
		}
		f.Close()
		if same {
			j, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return &LocalWriteError{Path: p, Err: err}
			}
			w.journal = j
			return nil
		}
	}
	w.vf.remove()
	for i := range w.state {
		w.state[i] = slotState{}
	}
	j, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return &LocalWriteError{Path: p, Err: err}
	}
	w.journal = j
	return w.record(key)
}

// replay applies one journal line: "done <digest>" or "have <digest> <bytes>".
func (w *TarWriter) replay(line string) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return
	}
	i, ok := w.byName[digest.Digest(f[1])]
	if f[1] == ocispec.ImageLayoutFile {
		i, ok = 0, true
	}
	if !ok {
		return
	}
	switch {
	case f[0] == "done":
		w.state[i] = slotState{done: true}
	case f[0] == "have" && len(f) == 3:
		n, err := strconv.ParseInt(f[2], 10, 64)
		if err == nil && n >= 0 && n <= w.slots[i].desc.Size {
			w.state[i] = slotState{have: n}
		}
	}
}

func (w *TarWriter) record(line string) error {
	if _, err := w.journal.WriteString(line + "\n"); err != nil {
		return &LocalWriteError{Path: w.journal.Name(), Err: err}
	}
	return nil
}

func (w *TarWriter) slotName(i int) string {
	if i == 0 {
		return ocispec.ImageLayoutFile
	}
	return w.slots[i].desc.Digest.String()
}

// fill writes b, whole, into slot i, with its header and padding, and records it complete.
func (w *TarWriter) fill(i int, b []byte) error {
	s := w.slots[i]
	if err := w.vf.WriteAt(b, s.data); err != nil {
		return err
	}
	return w.complete(i)
}

// complete writes slot i's header and padding around its data and records it complete and hashed.
func (w *TarWriter) complete(i int) error {
	s := w.slots[i]
	err := w.vf.WriteAt(s.hdr, s.off)
	if p := pad(s.desc.Size); p > 0 && err == nil {
		err = w.vf.WriteAt(make([]byte, p), s.data+s.desc.Size)
	}
	if err == nil {
		err = w.record("done " + w.slotName(i))
	}
	if err != nil {
		return err
	}
	w.state[i] = slotState{done: true, verified: true}
	return nil
}

// Planned reports whether desc has a slot.
func (w *TarWriter) Planned(desc ocispec.Descriptor) bool {
	i, ok := w.byName[desc.Digest]
	return ok && w.slots[i].desc.Size == desc.Size
}

// Close keeps what the writer wrote (the partial volumes and the journal) for the next run.
func (w *TarWriter) Close() {
	w.vf.closeAll()
	if w.journal != nil {
		w.journal.Close()
	}
}

// Finish appends the blobs of the layout directory dir that have no slot, in digest order, and its
// index.json, last; it ends the tar stream, renames the volumes into place and writes the volume list
// last of all (with Sums, after one read of the volumes to hash them). Every slot must be complete.
func (w *TarWriter) Finish(ctx context.Context, dir string) ([]Volume, error) {
	// Every blob slot complete and right (hashed again when an earlier run wrote it); oci-layout is
	// written by OpenTarWriter.
	for _, s := range w.slots[1:] {
		ok, err := w.Exists(ctx, s.desc)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("tar %s: blob %s was never written", w.vf.base, s.desc.Digest)
		}
	}
	names, err := w.tail(dir)
	if err != nil {
		return nil, err
	}
	pos := w.end
	for _, name := range append(names, ocispec.ImageIndexFile) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name))) // trust files, the catalog, its signature, index.json: small
		if err != nil {
			return nil, err
		}
		if pos, err = w.vf.appendEntry(pos, name, b); err != nil {
			return nil, err
		}
	}
	if err := w.vf.WriteAt(make([]byte, 1024), pos); err != nil { // the end-of-archive marker
		return nil, err
	}
	pos += 1024
	vols, err := w.vf.finish(pos, w.Sums, nil)
	if err != nil {
		return nil, err
	}
	w.journal.Close()
	os.Remove(w.journal.Name())
	return vols, nil
}

// tail lists the blobs of the layout dir that have no slot, in name order.
func (w *TarWriter) tail(dir string) ([]string, error) {
	var names []string
	root := filepath.Join(dir, ocispec.ImageBlobsDir)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		bd, ok := blobDigest(name)
		if _, planned := w.byName[bd]; !ok || !planned {
			names = append(names, name)
		}
		return nil
	})
	sort.Strings(names)
	return names, err
}
