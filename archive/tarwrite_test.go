package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// WriteTar writes the layout directory dir as one tar stream to base (NAME.tar), split into volumes
// NAME.tar.000, .001, ... of volumeSize bytes when volumeSize > 0, and writes the volume list
// NAME.tar.sha256 last, with sums (as save --volume-sums writes it, and as every airlock before the
// sums became optional did): oci-layout first, the blobs in name order, index.json last. Nothing is
// left under the final names when it fails. A test helper: save streams into volumes with TarWriter.
func WriteTar(ctx context.Context, dir, base string, volumeSize int64) ([]Volume, error) {
	return writeTar(ctx, dir, base, volumeSize, true)
}

// writeTar is WriteTar, with a volume list of sums or (sums false, save's default) of sizes.
func writeTar(ctx context.Context, dir, base string, volumeSize int64, sums bool) (vols []Volume, err error) {
	vw := newStreamWriter(base, volumeSize)
	defer func() {
		if err != nil {
			vw.abort()
		}
	}()
	var blobs []string
	err = filepath.WalkDir(filepath.Join(dir, ocispec.ImageBlobsDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(dir, p)
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
	tw := tar.NewWriter(vw)
	buf := make([]byte, copyBufferSize)
	for _, name := range append(append([]string{ocispec.ImageLayoutFile}, blobs...), ocispec.ImageIndexFile) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := addTarFile(tw, filepath.Join(dir, filepath.FromSlash(name)), name, time.Unix(0, 0).UTC(), buf); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return vw.finish(sums)
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

// streamWriter writes a stream in order into volume files, through the splitter TarWriter's slots
// use. Partial volumes an earlier run left are removed first.
type streamWriter struct {
	v   *volumeFiles
	off int64
}

func newStreamWriter(base string, size int64) *streamWriter {
	w := &streamWriter{v: &volumeFiles{base: base, size: size}}
	w.v.remove()
	return w
}

func (w *streamWriter) Write(p []byte) (int, error) {
	if err := w.v.WriteAt(p, w.off); err != nil {
		return 0, err
	}
	w.off += int64(len(p))
	return len(p), nil
}

// finish renames the volumes into place and writes their list last (with sums, if asked).
func (w *streamWriter) finish(sums bool) ([]Volume, error) { return w.v.finish(w.off, sums, nil) }

// abort closes and removes the partial volumes.
func (w *streamWriter) abort() { w.v.remove() }

func writeTarEntry(tw *tar.Writer, name string, b []byte, mtime time.Time) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(b)), Mode: 0o644, ModTime: mtime}); err != nil {
		return err
	}
	_, err := tw.Write(b)
	return err
}
