package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// hashBufSize is the read size of the sha256 baseline: large enough that the syscalls
// cost next to nothing beside the hash.
const hashBufSize = 1 << 20

// hashBlobs is the baseline of airlock verify, run as a child process so that its time
// and RSS are measured like airlock's: it reads every file under dir/blobs/sha256, in
// one goroutine, 1 MiB at a time, hashes it with crypto/sha256 and checks the sum
// against the file's name. Nothing else: no catalog, no manifests parsed, no signatures.
func hashBlobs(dir string) error {
	blobs := filepath.Join(dir, "blobs", "sha256")
	entries, err := os.ReadDir(blobs)
	if err != nil {
		return err
	}
	buf := make([]byte, hashBufSize)
	h := sha256.New()
	var files, bytes int64
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(blobs, e.Name()))
		if err != nil {
			return err
		}
		h.Reset()
		for {
			n, err := f.Read(buf)
			h.Write(buf[:n])
			bytes += int64(n)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				return err
			}
		}
		f.Close()
		if sum := hex.EncodeToString(h.Sum(nil)); sum != e.Name() {
			return fmt.Errorf("%s: sha256 is %s", filepath.Join(blobs, e.Name()), sum)
		}
		files++
	}
	fmt.Printf("%d files, %d bytes hashed\n", files, bytes)
	return nil
}

// blobBytes returns the total size of the files under dir/blobs/sha256.
func blobBytes(dir string) int64 {
	var n int64
	entries, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}
