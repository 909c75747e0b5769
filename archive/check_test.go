package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const checkRef = "registry.example.com/team/app:1.4.2"

// writeCheckSample writes a layout holding an image manifest with one layer, a referrer of it
// (listed under a cosign tag) and a catalog that describes them.
func writeCheckSample(t *testing.T, dir string) (*Catalog, map[string]ocispec.Descriptor) {
	t.Helper()
	ctx := context.Background()
	l, err := CreateLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	push := func(mt string, b []byte) ocispec.Descriptor {
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
		if err := l.PushBytes(ctx, d, b); err != nil {
			t.Fatal(err)
		}
		return d
	}
	layerBytes, _ := blob(t, 70000)
	layer := push(ocispec.MediaTypeImageLayer, layerBytes)
	cfg := push(ocispec.MediaTypeImageConfig, []byte(`{}`))
	mb, _ := json.Marshal(ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}})
	img := push(ocispec.MediaTypeImageManifest, mb)
	rb, _ := json.Marshal(ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Subject: &img})
	ref := push(ocispec.MediaTypeImageManifest, rb)

	e := img
	e.Annotations = map[string]string{ocispec.AnnotationRefName: checkRef}
	l.AddEntry(e)
	tag := "sha256-" + img.Digest.Encoded() + ".sig"
	e = ref
	e.Annotations = map[string]string{ocispec.AnnotationRefName: "registry.example.com/team/app:" + tag}
	l.AddEntry(e)
	cat := &Catalog{
		Tool:      Tool{Name: "airlock", Version: "test"},
		Created:   time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC),
		Images:    []Image{{Source: checkRef, Digest: img.Digest, MediaType: img.MediaType, Size: img.Size}},
		Referrers: []Referrer{{Digest: ref.Digest, MediaType: ref.MediaType, Size: ref.Size, Kind: "signature", Subject: img.Digest, FoundBy: "cosign-tag", Tag: tag}},
		// As save fills it: every manifest and blob of the images, sorted.
		Contents: sortedDigests(layer.Digest, cfg.Digest, img.Digest, ref.Digest),
	}
	if _, err := l.WriteCatalog(ctx, cat); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	return cat, map[string]ocispec.Descriptor{"layer": layer, "image": img, "referrer": ref}
}

func sortedDigests(ds ...digest.Digest) []digest.Digest {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds
}

// openChecked opens dir and runs the production check of verify ARCHIVE on it: VerifyContents, and
// nothing of the test's own (no test helper hashes anything).
func openChecked(t *testing.T, dir string) error {
	t.Helper()
	ctx := context.Background()
	r, err := Open(ctx, dir)
	if err != nil {
		return err
	}
	defer r.Close()
	cat, _, err := r.Catalog(ctx)
	if err != nil {
		return err
	}
	return VerifyContents(ctx, r, cat)
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string, cat *Catalog, d map[string]ocispec.Descriptor)
		want   string // "" = passes
	}{
		{"intact", func(*testing.T, string, *Catalog, map[string]ocispec.Descriptor) {}, ""},
		{"flipped byte in a layer", func(t *testing.T, dir string, _ *Catalog, d map[string]ocispec.Descriptor) {
			p := BlobPath(dir, d["layer"].Digest)
			b, _ := os.ReadFile(p)
			b[100] ^= 1
			os.WriteFile(p, b, 0o644)
		}, "does not hash to its name"},
		{"image ref pointing elsewhere", func(t *testing.T, dir string, _ *Catalog, d map[string]ocispec.Descriptor) {
			editIndex(t, dir, func(idx *ocispec.Index) {
				for i, m := range idx.Manifests {
					if m.Annotations[ocispec.AnnotationRefName] == checkRef {
						idx.Manifests[i].Digest, idx.Manifests[i].Size = d["referrer"].Digest, d["referrer"].Size
					}
				}
			})
		}, "index.json disagrees with the catalog: it lists " + checkRef + " as"},
		{"image not listed", func(t *testing.T, dir string, _ *Catalog, d map[string]ocispec.Descriptor) {
			editIndex(t, dir, func(idx *ocispec.Index) {
				for i, m := range idx.Manifests {
					if m.Annotations[ocispec.AnnotationRefName] == checkRef {
						idx.Manifests = append(idx.Manifests[:i], idx.Manifests[i+1:]...)
						return
					}
				}
			})
		}, "it does not list " + checkRef},
		{"foreign ref name", func(t *testing.T, dir string, _ *Catalog, d map[string]ocispec.Descriptor) {
			editIndex(t, dir, func(idx *ocispec.Index) {
				e := d["image"]
				e.Annotations = map[string]string{ocispec.AnnotationRefName: "evil.example.com/x:latest"}
				idx.Manifests = append(idx.Manifests, e)
			})
		}, `it lists "evil.example.com/x:latest"`},
		{"cosign tag naming a non-referrer", func(t *testing.T, dir string, _ *Catalog, d map[string]ocispec.Descriptor) {
			editIndex(t, dir, func(idx *ocispec.Index) {
				e := d["layer"]
				e.Annotations = map[string]string{ocispec.AnnotationRefName: "registry.example.com/team/app:sha256-" + d["image"].Digest.Encoded() + ".att"}
				idx.Manifests = append(idx.Manifests, e)
			})
		}, "which the catalog lists as no referrer"},
		{"referrer manifest missing", func(t *testing.T, dir string, _ *Catalog, d map[string]ocispec.Descriptor) {
			os.Remove(BlobPath(dir, d["referrer"].Digest))
		}, "but the archive lacks it"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cat, d := writeCheckSample(t, dir)
			c.damage(t, dir, cat, d)
			err := openChecked(t, dir)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("intact archive refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
			if c.want != "" && !strings.Contains(err.Error(), "copy it again") {
				t.Errorf("the error does not say what to do: %v", err)
			}
		})
	}
}

func TestCheckCatalogSizes(t *testing.T) {
	d := digest.FromString("x")
	for _, size := range []int64{0, -1, 4<<20 + 1, 1 << 40} {
		cat := &Catalog{Images: []Image{{Source: checkRef, Digest: d, Size: size}}}
		if err := checkCatalogSizes(cat); err == nil || !strings.Contains(err.Error(), "not sane") {
			t.Errorf("size %d: got %v", size, err)
		}
	}
	cat := &Catalog{Referrers: []Referrer{{Digest: "sha256:zz", Size: 10}}}
	if err := checkCatalogSizes(cat); err == nil || !strings.Contains(err.Error(), "invalid digest") {
		t.Errorf("invalid digest: got %v", err)
	}
}

func TestCheckDeltaSkipsPresence(t *testing.T) {
	dir := t.TempDir()
	cat, d := writeCheckSample(t, dir)
	os.Remove(BlobPath(dir, d["referrer"].Digest))
	r, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cat.Base = digest.FromString("base")
	if err := Check(r, cat); err != nil {
		t.Fatalf("a delta lacking what its base holds is refused: %v", err)
	}
}

func editIndex(t *testing.T, dir string, edit func(*ocispec.Index)) {
	t.Helper()
	p := filepath.Join(dir, ocispec.ImageIndexFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	edit(&idx)
	b, _ = json.Marshal(idx)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTarFSRefusesHostileEntries(t *testing.T) {
	blobName := "blobs/sha256/" + digest.FromString("x").Encoded()
	cases := []struct {
		name string
		hdrs []tar.Header
		want string
	}{
		{"dotdot", []tar.Header{{Name: "../evil", Typeflag: tar.TypeReg, Size: 1}}, `unsafe path refused: it climbs out`},
		{"dotdot inside", []tar.Header{{Name: "blobs/../../evil", Typeflag: tar.TypeReg, Size: 1}}, `unsafe path refused: it climbs out`},
		{"dotdot directory", []tar.Header{{Name: "../evil/", Typeflag: tar.TypeDir}}, `unsafe path refused: it climbs out`},
		{"absolute", []tar.Header{{Name: "/etc/passwd", Typeflag: tar.TypeReg, Size: 1}}, "unsafe path refused: an absolute path"},
		{"symlink", []tar.Header{{Name: "index.json", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}}, "is a symbolic link"},
		{"hardlink", []tar.Header{{Name: "index.json", Typeflag: tar.TypeLink, Linkname: "oci-layout"}}, "is a hard link"},
		{"fifo", []tar.Header{{Name: "index.json", Typeflag: tar.TypeFifo}}, "type"},
		{"duplicate", []tar.Header{{Name: "index.json", Typeflag: tar.TypeReg, Size: 1}, {Name: "./index.json", Typeflag: tar.TypeReg, Size: 1}}, "appears twice"},
		{"not layout", []tar.Header{{Name: "etc/cron.d/evil", Typeflag: tar.TypeReg, Size: 1}}, "not part of an OCI image layout"},
		{"not layout blob", []tar.Header{{Name: "blobs/sha256/a/b", Typeflag: tar.TypeReg, Size: 1}}, "not part of an OCI image layout"},
		{"huge index.json", []tar.Header{{Name: "index.json", Typeflag: tar.TypeReg, Size: maxIndexSize + 1}}, "over the"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, h := range c.hdrs {
				h.Mode = 0o644
				if err := tw.WriteHeader(&h); err != nil {
					t.Fatal(err)
				}
				if h.Size > 0 {
					tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
				}
			}
			tw.Close()
			_, err := newTarFS(bytes.NewReader(buf.Bytes()))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		data := fuzzTar(t,
			tar.Header{Name: "./", Typeflag: tar.TypeDir},
			tar.Header{Name: "oci-layout", Typeflag: tar.TypeReg, Size: 30},
			tar.Header{Name: "blobs/sha256/", Typeflag: tar.TypeDir},
			tar.Header{Name: "./" + blobName, Typeflag: tar.TypeReg, Size: 700},
			tar.Header{Name: "index.json", Typeflag: tar.TypeReg, Size: 2},
		)
		if _, err := newTarFS(bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTarFSRefusesAbsurdSizes declares, on the first entry and on a later one, sizes beyond the
// archive, up to the largest int64 (which would overflow offset + size).
func TestTarFSRefusesAbsurdSizes(t *testing.T) {
	for _, size := range []int64{1 << 32, 1<<62 + 7, 1<<63 - 1} {
		for _, first := range []bool{true, false} {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			if !first {
				tw.WriteHeader(&tar.Header{Name: "oci-layout", Typeflag: tar.TypeReg, Size: 3, Mode: 0o644})
				tw.Write([]byte("abc"))
				tw.Flush()
			}
			tw.WriteHeader(&tar.Header{Name: "index.json", Typeflag: tar.TypeReg, Size: size, Mode: 0o644, Format: tar.FormatGNU})
			data := append(buf.Bytes(), make([]byte, 1024)...) // the header alone, then the end marker
			_, err := newTarFS(bytes.NewReader(data))
			if err == nil || !strings.Contains(err.Error(), "more than the") {
				t.Errorf("size %d (first entry %v): got %v", size, first, err)
			}
		}
	}
}

func TestOpenRefusesMissingAndTruncatedVolumes(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		damage func(base string)
		want   string
	}{
		{"missing", func(base string) { os.Remove(base + ".001") }, "(a.tar.001) is missing"},
		{"truncated middle", func(base string) { os.Truncate(base+".001", 1000) }, "volume a.tar.001 is 1000 bytes, the other volumes 4096: it is truncated"},
		{"truncated last", func(base string) {
			vols, _ := filepath.Glob(base + ".0*")
			last := vols[len(vols)-1]
			fi, _ := os.Stat(last)
			os.Truncate(last, fi.Size()-1)
		}, "truncated"},
		{"truncated last on a block boundary", func(base string) {
			vols, _ := filepath.Glob(base + ".0*")
			last := vols[len(vols)-1]
			fi, _ := os.Stat(last)
			os.Truncate(last, fi.Size()/512*512-512)
		}, "truncated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeCheckSample(t, filepath.Join(dir, "layout"))
			base := filepath.Join(dir, "a.tar")
			if _, err := WriteTar(ctx, filepath.Join(dir, "layout"), base, 4096); err != nil {
				t.Fatal(err)
			}
			if r, err := Open(ctx, base+".000"); err != nil {
				t.Fatalf("intact volumes refused: %v", err)
			} else {
				r.Close()
			}
			c.damage(base)
			_, err := Open(ctx, base+".000")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// TestCheckCatalogSizesPlatformsAndTrust: platform manifests are held to the manifest limits like
// images; a trust file may be empty or as large as a catalog, not negative or larger, and must have
// a valid digest.
func TestCheckCatalogSizesPlatformsAndTrust(t *testing.T) {
	d := digest.FromString("x")
	img := Image{Source: checkRef, Digest: d, Size: 100}
	for _, c := range []struct {
		name string
		cat  Catalog
		want string // "" = passes
	}{
		{"platform of size 0", Catalog{Images: []Image{{Source: checkRef, Digest: d, Size: 100, Platforms: []Platform{{Platform: "linux/arm64", Digest: d, Size: 0}}}}},
			"the catalog gives platform linux/arm64 of " + checkRef + " (" + d.String() + ") a size of 0 bytes"},
		{"platform with a bad digest", Catalog{Images: []Image{{Source: checkRef, Digest: d, Size: 100, Platforms: []Platform{{Platform: "linux/arm64", Digest: "sha256:zz", Size: 10}}}}},
			`platform linux/arm64 of ` + checkRef + ` with an invalid digest "sha256:zz"`},
		{"trust file with a bad digest", Catalog{Images: []Image{img}, Trust: Trust{Keys: []File{{Name: "release.pub", Digest: "md5:x", Size: 10}}}},
			`trust file release.pub with an invalid digest "md5:x"`},
		{"negative trust file", Catalog{Images: []Image{img}, Trust: Trust{Policy: &File{Name: "policy.yaml", Digest: d, Size: -1}}},
			"trust file policy.yaml (" + d.String() + ") a size of -1 bytes, which is not sane (0 to 67108864)"},
		{"trust file over the limit", Catalog{Images: []Image{img}, Trust: Trust{TrustedRoot: &File{Name: "trusted_root.json", Digest: d, Size: maxCatalogSize + 1}}},
			"a size of 67108865 bytes, which is not sane"},
		{"empty trust file", Catalog{Images: []Image{img}, Trust: Trust{Keys: []File{{Name: "empty.pub", Digest: d, Size: 0}}}}, ""},
		{"trust file at the limit", Catalog{Images: []Image{img}, Trust: Trust{ImageSet: &File{Name: "imageset.yaml", Digest: d, Size: maxCatalogSize}}}, ""},
	} {
		err := checkCatalogSizes(&c.cat)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

// TestCheckPresentPlatformsAndTrust: every platform manifest of a full (not sparse) image and every
// trust file the catalog lists must be in the archive at the catalog's size; a file the archive
// refuses to serve is reported with what it is.
func TestCheckPresentPlatformsAndTrust(t *testing.T) {
	absent := digest.FromString("absent")
	for _, c := range []struct {
		name string
		edit func(dir string, cat *Catalog, d map[string]ocispec.Descriptor)
		want string // "" = passes
	}{
		{"platform missing", func(_ string, cat *Catalog, _ map[string]ocispec.Descriptor) {
			cat.Images[0].Platforms = []Platform{{Platform: "linux/arm64", Digest: absent, Size: 10}}
		}, "the catalog lists platform linux/arm64 of " + checkRef + " " + absent.String() + ", but the archive lacks it"},
		{"platform missing from a sparse image", func(_ string, cat *Catalog, _ map[string]ocispec.Descriptor) {
			cat.Images[0].Platforms = []Platform{{Platform: "linux/arm64", Digest: absent, Size: 10}}
			cat.Images[0].Sparse = true
		}, ""},
		{"platform present", func(_ string, cat *Catalog, d map[string]ocispec.Descriptor) {
			cat.Images[0].Platforms = []Platform{{Platform: "linux/amd64", Digest: d["referrer"].Digest, Size: d["referrer"].Size}}
		}, ""},
		{"image of another size", func(_ string, cat *Catalog, d map[string]ocispec.Descriptor) {
			cat.Images[0].Size++
		}, "is %d bytes in the archive, the catalog says %d"},
		{"trust file missing", func(_ string, cat *Catalog, _ map[string]ocispec.Descriptor) {
			cat.Trust.Keys = []File{{Name: "release.pub", Digest: absent, Size: 10}}
		}, "the catalog lists trust file release.pub " + absent.String() + ", but the archive lacks it"},
		{"trust file present", func(_ string, cat *Catalog, d map[string]ocispec.Descriptor) {
			cat.Trust.Keys = []File{{Name: "release.pub", Digest: d["layer"].Digest, Size: d["layer"].Size}}
		}, ""},
		{"referrer a symbolic link", func(dir string, _ *Catalog, d map[string]ocispec.Descriptor) {
			p := BlobPath(dir, d["referrer"].Digest)
			os.Rename(p, p+".real")
			if err := os.Symlink(p+".real", p); err != nil {
				t.Fatal(err)
			}
		}, "referrer (signature of %s) %s: " + "%s: blobs/sha256/%s is a symbolic link"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cat, d := writeCheckSample(t, dir)
			c.edit(dir, cat, d)
			want := c.want
			switch c.name {
			case "image of another size":
				want = fmt.Sprintf(want, d["image"].Size, d["image"].Size+1)
			case "referrer a symbolic link":
				want = fmt.Sprintf(want, d["image"].Digest, d["referrer"].Digest, dir, d["referrer"].Digest.Encoded())
			}
			r, err := Open(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			err = Check(r, cat)
			switch {
			case want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
				t.Fatalf("got %v, want an error containing %q", err, want)
			}
		})
	}
}

// TestCheckIndexRefusesTwoCatalogs: index.json may name one catalog, not two.
func TestCheckIndexRefusesTwoCatalogs(t *testing.T) {
	dir := t.TempDir()
	cat, d := writeCheckSample(t, dir)
	editIndex(t, dir, func(idx *ocispec.Index) {
		e := d["layer"]
		e.Annotations = map[string]string{ocispec.AnnotationRefName: CatalogRefName}
		idx.Manifests = append(idx.Manifests, e)
	})
	r, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := Check(r, cat); err == nil || !strings.Contains(err.Error(), "index.json disagrees with the catalog: it names 2 catalogs") {
		t.Fatalf("got %v, want a refusal of the second catalog", err)
	}
}
