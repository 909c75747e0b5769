package archive

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func blob(t *testing.T, n int) ([]byte, ocispec.Descriptor) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b, ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(b), Size: int64(n)}
}

// writeSample writes a layout holding two blobs, one image entry and a catalog.
func writeSample(t *testing.T, dir string) (*Catalog, []ocispec.Descriptor) {
	t.Helper()
	ctx := context.Background()
	l, err := CreateLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	var descs []ocispec.Descriptor
	for _, n := range []int{5000, 70000} {
		b, d := blob(t, n)
		if err := l.Push(ctx, d, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		descs = append(descs, d)
	}
	img := descs[0]
	img.Annotations = map[string]string{ocispec.AnnotationRefName: "registry.example.com/team/app:1.4.2"}
	l.AddEntry(img)
	key, err := l.AddFile(ctx, "release.pub", KeyMediaType, []byte("-----BEGIN PUBLIC KEY-----\n"))
	if err != nil {
		t.Fatal(err)
	}
	cat := &Catalog{
		Tool:    Tool{Name: "airlock", Version: "test"},
		Created: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC),
		Images:  []Image{{Source: "registry.example.com/team/app:1.4.2", Digest: descs[0].Digest}},
		Trust:   Trust{Keys: []File{key}},
	}
	if _, err := l.WriteCatalog(ctx, cat); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	return cat, descs
}

func TestLayoutRefusesWrongDigest(t *testing.T) {
	dir := t.TempDir()
	l, err := CreateLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, d := blob(t, 1000)
	b[10] ^= 1
	err = l.Push(context.Background(), d, bytes.NewReader(b))
	var dm *DigestMismatchError
	if !errors.As(err, &dm) || dm.Expected != d.Digest {
		t.Fatalf("Push of altered bytes: got %v, want DigestMismatchError for %s", err, d.Digest)
	}
	if ok, _ := l.Exists(context.Background(), d); ok {
		t.Fatal("a blob that failed its digest check is stored")
	}
	if err := l.Push(context.Background(), d, bytes.NewReader(b[:999])); err == nil || !strings.Contains(err.Error(), "999 bytes") {
		t.Fatalf("short blob: got %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, ingestDir))
	if len(ents) != 0 {
		t.Fatalf("partial files left behind: %v", ents)
	}
}

func TestCreateLayoutRefusesForeignDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateLayout(dir); !errors.Is(err, ErrNotLayout) {
		t.Fatalf("got %v, want ErrNotLayout", err)
	}
}

func TestDirectoryRoundTrip(t *testing.T) {
	dir := t.TempDir()
	want, descs := writeSample(t, dir)
	r, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, _, err := r.Catalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.Images[0].Digest != want.Images[0].Digest || got.Trust.Keys[0].Digest != want.Trust.Keys[0].Digest {
		t.Fatalf("catalog read back differs: %+v", got)
	}
	key, err := r.ReadFile(context.Background(), got.Trust.Keys[0])
	if err != nil || !strings.HasPrefix(string(key), "-----BEGIN PUBLIC KEY") {
		t.Fatalf("key: %q, %v", key, err)
	}
	if _, err := os.Stat(filepath.Join(dir, ingestDir)); !os.IsNotExist(err) {
		t.Fatal("ingest directory left after Commit")
	}
	var names []string
	for _, m := range r.Index.Manifests {
		names = append(names, m.Annotations[ocispec.AnnotationRefName])
	}
	if strings.Join(names, ",") != "registry.example.com/team/app:1.4.2,airlock.catalog" && strings.Join(names, ",") != "airlock.catalog,registry.example.com/team/app:1.4.2" {
		t.Fatalf("index.json names: %v", names)
	}
	readBack(t, r, descs)
}

func readBack(t *testing.T, r *Reader, descs []ocispec.Descriptor) {
	t.Helper()
	for _, d := range descs {
		rc, err := r.Fetch(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || digest.FromBytes(b) != d.Digest {
			t.Fatalf("blob %s read back wrong: %v", d.Digest, err)
		}
	}
}

func TestTarVolumesRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_, descs := writeSample(t, filepath.Join(dir, "layout"))
	base := filepath.Join(dir, "out", "airlock.tar")
	os.MkdirAll(filepath.Dir(base), 0o755)
	vols, err := WriteTar(ctx, filepath.Join(dir, "layout"), base, 16<<10)
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) < 5 {
		t.Fatalf("want the 75 KB layout split into 16 KiB volumes, got %d volumes", len(vols))
	}
	for _, open := range []string{base + ".000", base + ".003", base, base + ChecksumSuffix} {
		r, err := Open(ctx, open)
		if err != nil {
			t.Fatalf("Open(%s): %v", filepath.Base(open), err)
		}
		if _, _, err := r.Catalog(ctx); err != nil {
			t.Fatal(err)
		}
		readBack(t, r, descs)
		r.Close()
	}
	ents, _ := os.ReadDir(filepath.Dir(base))
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".partial") {
			t.Fatalf("partial volume left: %s", e.Name())
		}
	}

	t.Run("flipped byte", func(t *testing.T) {
		p := base + ".002"
		orig, _ := os.ReadFile(p)
		bad := append([]byte(nil), orig...)
		bad[100] ^= 0xff
		os.WriteFile(p, bad, 0o644)
		defer os.WriteFile(p, orig, 0o644)
		_, err := Open(ctx, base+".000")
		if err == nil || !strings.Contains(err.Error(), "airlock.tar.002") || !strings.Contains(err.Error(), "damaged") {
			t.Fatalf("got %v, want an error naming volume .002 as damaged", err)
		}
	})
	t.Run("missing volume", func(t *testing.T) {
		p := base + ".001"
		os.Rename(p, p+".away")
		defer os.Rename(p+".away", p)
		_, err := Open(ctx, base+".000")
		if err == nil || !strings.Contains(err.Error(), "airlock.tar.001") {
			t.Fatalf("got %v, want an error naming the missing volume", err)
		}
	})
}

func TestSingleTar(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_, descs := writeSample(t, filepath.Join(dir, "layout"))
	base := filepath.Join(dir, "a.tar")
	vols, err := WriteTar(ctx, filepath.Join(dir, "layout"), base, 0)
	if err != nil || len(vols) != 1 || vols[0].Name != "a.tar" {
		t.Fatalf("vols %+v, err %v", vols, err)
	}
	r, err := Open(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	readBack(t, r, descs)
}

func TestFetchDetectsTamperedBlob(t *testing.T) {
	dir := t.TempDir()
	_, descs := writeSample(t, dir)
	p := BlobPath(dir, descs[1].Digest)
	b, _ := os.ReadFile(p)
	b[0] ^= 1
	os.WriteFile(p, b, 0o644)
	r, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := r.Fetch(context.Background(), descs[1])
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	var dm *DigestMismatchError
	if !errors.As(err, &dm) {
		t.Fatalf("reading a tampered blob: got %v, want DigestMismatchError", err)
	}
}
