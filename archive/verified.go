package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"airlock.dev/airlock/internal/atomicfile"
	"github.com/opencontainers/go-digest"
)

// verifiedState records the blobs of one layout directory that this host hashed and found right,
// each with what its file looked like then (size, modification and change times, device, inode). A
// blob whose file still looks the same is trusted without hashing it again; any other is hashed
// before it is trusted, so a re-save never trusts a blob it did not verify, and an unchanged re-save
// costs a stat per blob.
//
// The record is kept in the user's cache directory (os.UserCacheDir()/airlock/verified), keyed by
// the layout's absolute path, never in the layout itself: an archive never vouches for itself, and a
// medium that travelled carries nothing a re-save would trust. Anything that rewrites a blob changes
// its change time, which no one can set back; where no record is found (another host or user, a
// moved directory, a lost cache), every blob is hashed once before it is trusted.
type verifiedState struct {
	file string // where the record is kept; "" when there is no cache directory

	mu    sync.Mutex
	blobs map[digest.Digest]fileStamp
	dirty bool
}

// fileStamp is what a blob's file looked like when it was hashed.
type fileStamp struct {
	Size  int64  `json:"size"`
	MTime int64  `json:"mtime"`
	CTime int64  `json:"ctime,omitempty"`
	Dev   uint64 `json:"dev,omitempty"`
	Ino   uint64 `json:"ino,omitempty"`
}

type verifiedFile struct {
	Version int                         `json:"version"`
	Dir     string                      `json:"dir"`
	Blobs   map[digest.Digest]fileStamp `json:"blobs"`
}

const verifiedVersion = 1

// verifiedStateFile returns where the record for the layout dir is kept, and dir's absolute path.
func verifiedStateFile(dir string) (string, string) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", ""
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	cache, err := os.UserCacheDir()
	if err != nil || cache == "" {
		return "", abs
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(cache, "airlock", "verified", hex.EncodeToString(sum[:16])+".json"), abs
}

// loadVerified reads the record for the layout dir; a missing or unreadable one is empty.
func loadVerified(dir string) *verifiedState {
	file, abs := verifiedStateFile(dir)
	s := &verifiedState{file: file, blobs: map[digest.Digest]fileStamp{}}
	if file == "" {
		return s
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return s
	}
	var vf verifiedFile
	if json.Unmarshal(b, &vf) != nil || vf.Version != verifiedVersion || vf.Dir != abs {
		return s
	}
	for d, st := range vf.Blobs {
		if d.Validate() == nil {
			s.blobs[d] = st
		}
	}
	return s
}

// trusted reports whether d was hashed on this host and its file fi has not changed since.
func (s *verifiedState) trusted(d digest.Digest, fi fs.FileInfo) bool {
	st, ok := stampOf(fi)
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	got, found := s.blobs[d]
	return found && got == st
}

// record notes that d was hashed and found right with its file as fi describes it.
func (s *verifiedState) record(d digest.Digest, fi fs.FileInfo) {
	st, ok := stampOf(fi)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		delete(s.blobs, d)
	} else {
		s.blobs[d] = st
	}
	s.dirty = true
}

// forget drops d from the record.
func (s *verifiedState) forget(d digest.Digest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.blobs[d]; ok {
		delete(s.blobs, d)
		s.dirty = true
	}
}

// save writes the record, if it changed. Failing to write it costs only time: the next re-save
// hashes again what it cannot find recorded.
func (s *verifiedState) save(dir string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == "" || !s.dirty {
		return
	}
	_, abs := verifiedStateFile(dir)
	b, err := json.Marshal(verifiedFile{Version: verifiedVersion, Dir: abs, Blobs: s.blobs})
	if err != nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(s.file), 0o700); err != nil {
		return
	}
	if atomicfile.WriteFile(s.file, b, 0o644) == nil {
		s.dirty = false
	}
}

// remove deletes the record (the layout directory is going away).
func (s *verifiedState) remove() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file != "" {
		os.Remove(s.file)
	}
	s.blobs = map[digest.Digest]fileStamp{}
	s.dirty = false
}
