package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestSignRewritesOnlyTheTail: signing tar volumes writes the stream again only from where index.json
// starts: the volumes before the one that holds that point are the same files, byte for byte and
// never replaced; the volume list keeps their sums and gives the rewritten volumes' right ones.
func TestSignRewritesOnlyTheTail(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	_, descs := writeSample(t, layout)
	base := filepath.Join(dir, "a.tar")
	before, err := WriteTar(ctx, layout, base, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) < 3 {
		t.Fatalf("want at least 3 volumes for this test, got %d", len(before))
	}
	type seen struct {
		fi os.FileInfo
		b  []byte
	}
	old := map[string]seen{}
	for _, v := range before {
		p := filepath.Join(dir, v.Name)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		old[v.Name] = seen{fi, b}
	}
	if _, err := Sign(ctx, base, func(ocispec.Descriptor) ([]byte, error) { return []byte(`{"bundle":1}`), nil }); err != nil {
		t.Fatal(err)
	}
	after, err := readVolumeList(base)
	if err != nil {
		t.Fatal(err)
	}
	untouched := 0
	for i, v := range after {
		p := filepath.Join(dir, v.Name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(b)); got != v.SHA256 {
			t.Errorf("%s: the list says sha256 %s, the file is %s", v.Name, v.SHA256, got)
		}
		fi, _ := os.Stat(p)
		if o, ok := old[v.Name]; ok && os.SameFile(o.fi, fi) {
			untouched++
			if !bytes.Equal(o.b, b) || i >= len(before) || v.Name != before[i].Name || v.SHA256 != before[i].SHA256 {
				t.Errorf("%s was written in place, or listed otherwise (%+v, was %+v)", v.Name, v, before[i])
			}
		}
	}
	if untouched != len(before)-1 && untouched != len(before)-2 {
		t.Errorf("%d of %d volumes left as they were; want all but the one or two that hold the tail", untouched, len(before))
	}
	r, err := Open(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cat, catDesc, err := r.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkIndex(r, cat); err != nil {
		t.Errorf("the signed archive: %v", err)
	}
	readBack(t, r, descs)
	if sigs, err := r.CatalogSignatures(ctx, catDesc.Digest); err != nil || len(sigs) != 1 {
		t.Errorf("signatures %d, %v; want the one", len(sigs), err)
	}
}

// TestSignRefusesAnIndexNotLast: a tar whose index.json is not the stream's last entry was not written
// by airlock; signing it would cut what follows. It is refused, and the volume is left as it was.
func TestSignRefusesAnIndexNotLast(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	writeSample(t, layout)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var names []string
	filepath.WalkDir(filepath.Join(layout, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(layout, p)
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	for _, name := range append([]string{ocispec.ImageLayoutFile, ocispec.ImageIndexFile}, names...) {
		b, err := os.ReadFile(filepath.Join(layout, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		if err := writeTarEntry(tw, name, b, time.Unix(0, 0)); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	p := filepath.Join(dir, "foreign.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeVolumeList(p, []Volume{{Name: "foreign.tar", Size: int64(buf.Len())}}); err != nil {
		t.Fatal(err)
	}
	if r, err := Open(ctx, p); err != nil {
		t.Fatalf("the foreign tar does not open: %v", err)
	} else {
		r.Close()
	}
	_, err := Sign(ctx, p, func(ocispec.Descriptor) ([]byte, error) { return []byte(`{}`), nil })
	if err == nil || !strings.Contains(err.Error(), "index.json is not the tar stream's last entry") {
		t.Errorf("sign: %v; want index.json not last refused", err)
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, buf.Bytes()) {
		t.Error("the refused volume was changed")
	}
	if m, _ := filepath.Glob(p + "*.partial"); len(m) != 0 {
		t.Errorf("partial files left: %v", m)
	}
}
