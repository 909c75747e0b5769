package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// WriteTar writes the layout directory dir as one tar stream to base (NAME.tar), split into volumes
// NAME.tar.000, .001, ... of volumeSize bytes when volumeSize > 0, and writes the volume list
// NAME.tar.sha256 last. index.json is the last tar entry, so a reader that finds it has the whole
// layout. Nothing is left under the final names when it fails.
func WriteTar(ctx context.Context, dir, base string, volumeSize int64) ([]Volume, error) {
	s, err := StartTar(dir, base, volumeSize)
	if err != nil {
		return nil, err
	}
	return s.Finish(ctx)
}

// TarStream writes a layout directory into tar volumes while the layout is still being filled: blobs
// are appended as Add reports them complete, so writing the tar overlaps fetching, and Finish appends
// whatever was not reported (blobs an earlier run stored) and index.json, last.
type TarStream struct {
	dir string
	vw  *volumeWriter
	tw  *tar.Writer
	buf []byte

	ch      chan string
	done    chan struct{}
	err     error // set by the writer goroutine; read after done
	written map[string]bool
}

// StartTar begins the tar of layout dir, writing oci-layout first.
func StartTar(dir, base string, volumeSize int64) (*TarStream, error) {
	s := &TarStream{
		dir: dir, vw: &volumeWriter{base: base, size: volumeSize}, buf: make([]byte, copyBufferSize),
		ch: make(chan string, 1024), done: make(chan struct{}), written: map[string]bool{},
	}
	s.tw = tar.NewWriter(s.vw)
	if err := s.add(ocispec.ImageLayoutFile); err != nil {
		s.vw.abort()
		return nil, err
	}
	go func() {
		defer close(s.done)
		for name := range s.ch {
			if s.err == nil {
				s.err = s.add(name)
			}
		}
	}()
	return s, nil
}

// Add reports the blob d complete in the layout; it is appended to the tar in the background.
func (s *TarStream) Add(d digest.Digest) {
	s.ch <- path.Join(ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

func (s *TarStream) add(name string) error {
	if s.written[name] {
		return nil
	}
	s.written[name] = true
	return addTarFile(s.tw, filepath.Join(s.dir, filepath.FromSlash(name)), name, time.Unix(0, 0).UTC(), s.buf)
}

// Finish appends the blobs not yet written and index.json, and closes the volumes, writing the volume
// list last. On failure nothing is left under the final names.
func (s *TarStream) Finish(ctx context.Context) (vols []Volume, err error) {
	close(s.ch)
	<-s.done
	defer func() {
		if err != nil {
			s.vw.abort()
		}
	}()
	if s.err != nil {
		return nil, s.err
	}
	var blobs []string
	err = filepath.WalkDir(filepath.Join(s.dir, ocispec.ImageBlobsDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(s.dir, p)
			if err != nil {
				return err
			}
			blobs = append(blobs, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(blobs)
	for _, name := range append(blobs, ocispec.ImageIndexFile) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := s.add(name); err != nil {
			return nil, err
		}
	}
	if err := s.tw.Close(); err != nil {
		return nil, err
	}
	return s.vw.finish()
}

// Abort stops the stream and removes the partial volumes.
func (s *TarStream) Abort() {
	close(s.ch)
	<-s.done
	s.vw.abort()
}

func addTarFile(tw *tar.Writer, path, name string, mtime time.Time, buf []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: fi.Size(), Mode: 0o644, ModTime: mtime}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("tar %s: %w", name, err)
	}
	n, err := io.CopyBuffer(tw, f, buf)
	if err != nil {
		return fmt.Errorf("tar %s: %w", name, err)
	}
	if n != fi.Size() {
		return fmt.Errorf("tar %s: %s changed while it was written", name, path)
	}
	return nil
}
