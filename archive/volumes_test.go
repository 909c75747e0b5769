package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// writeVolumes saves the check sample as tar volumes a.tar.000, ... of volumeSize bytes in dir.
func writeVolumes(t *testing.T, dir string, volumeSize int64) (string, []Volume) {
	t.Helper()
	writeCheckSample(t, filepath.Join(dir, "layout"))
	base := filepath.Join(dir, "a.tar")
	vols, err := WriteTar(context.Background(), filepath.Join(dir, "layout"), base, volumeSize)
	if err != nil {
		t.Fatal(err)
	}
	return base, vols
}

// TestOpenTellsBadCopyFromHostileTar: a tar stream the tar reader refuses is first checked volume by
// volume against the list, so a bad copy is named as one (the first damaged volume, in order); when
// the volumes match their list (rewritten with them), the stream itself is refused.
func TestOpenTellsBadCopyFromHostileTar(t *testing.T) {
	ctx := context.Background()
	t.Run("bad copy", func(t *testing.T) {
		dir := t.TempDir()
		base, vols := writeVolumes(t, dir, 4096)
		if len(vols) < 3 {
			t.Fatalf("%d volumes, want at least 3", len(vols))
		}
		flipAt(t, filepath.Join(dir, vols[2].Name), 700) // damaged too, but later in order
		flipAt(t, base+".000", 3)                        // the first header: the tar reader refuses it
		_, err := Open(ctx, base+".000")
		var ce *CheckError
		if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "volume a.tar.000: sha256 ") ||
			!strings.Contains(err.Error(), "the volume list says "+vols[0].SHA256+": the copy is damaged") {
			t.Fatalf("got %v, want a *CheckError naming volume a.tar.000 and its listed sum", err)
		}
	})
	t.Run("rewritten with its list", func(t *testing.T) {
		dir := t.TempDir()
		base, vols := writeVolumes(t, dir, 4096)
		rewriteVolumes(t, dir, vols, func(stream []byte) { stream[3] ^= 1 })
		_, err := Open(ctx, base+".000")
		var ce *CheckError
		if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), base+".000: ") || strings.Contains(err.Error(), "sha256") {
			t.Fatalf("got %v, want a *CheckError refusing the tar stream of %s.000", err, base)
		}
	})
}

// TestOpenRefusesLastVolumeLargerThanTheOthers: a last volume larger than the volume size is from
// another archive.
func TestOpenRefusesLastVolumeLargerThanTheOthers(t *testing.T) {
	dir := t.TempDir()
	base, vols := writeVolumes(t, dir, 4096)
	last := vols[len(vols)-1].Name
	if err := os.Truncate(filepath.Join(dir, last), 4608); err != nil { // zeros: still ends like a tar
		t.Fatal(err)
	}
	_, err := Open(context.Background(), base+".000")
	want := "volume " + last + " is 4608 bytes, larger than the 4096-byte volumes before it: it is from another archive"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want an error containing %q", err, want)
	}
}

// TestOpenVolumeFilesNamesTheMissingOne: the volume that cannot be opened is named with its place.
func TestOpenVolumeFilesNamesTheMissingOne(t *testing.T) {
	dir := t.TempDir()
	base, vols := writeVolumes(t, dir, 4096)
	os.Remove(filepath.Join(dir, vols[1].Name))
	files, err := openVolumeFiles(base, vols)
	want := "volume 2 of " + strconv.Itoa(len(vols)) + " (a.tar.001)"
	if files != nil || err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "copy every volume listed in "+base+".sha256") {
		t.Fatalf("got %v, want an error starting %q", err, want)
	}
}

// TestStreamWriterOneByte: a stream of one byte makes one volume and its list, named NAME.tar or
// NAME.tar.000 by the volume size: its size by default, its sha256 with sums; nothing is left
// under a partial name.
func TestStreamWriterOneByte(t *testing.T) {
	one := sha256.Sum256([]byte("x"))
	sum := hex.EncodeToString(one[:])
	for _, c := range []struct {
		size int64
		name string
		sums bool
	}{{0, "e.tar", false}, {4096, "e.tar.000", false}, {0, "e.tar", true}, {4096, "e.tar.000", true}} {
		dir := t.TempDir()
		base := filepath.Join(dir, "e.tar")
		vw := newStreamWriter(base, c.size)
		if _, err := vw.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		vols, err := vw.finish(c.sums)
		if err != nil {
			t.Fatal(err)
		}
		want, wantList := Volume{Name: c.name, Size: 1}, listHeader+"1  "+c.name+"\n"
		if c.sums {
			want.SHA256, wantList = sum, sum+"  "+c.name+"\n"
		}
		if len(vols) != 1 || vols[0] != want {
			t.Errorf("size %d, sums %v: volumes %+v, want %+v", c.size, c.sums, vols, want)
		}
		if fi, err := os.Stat(filepath.Join(dir, c.name)); err != nil || fi.Size() != 1 {
			t.Errorf("size %d: volume %s: %v", c.size, c.name, err)
		}
		if b, err := os.ReadFile(base + ChecksumSuffix); err != nil || string(b) != wantList {
			t.Errorf("size %d, sums %v: volume list %q, %v; want %q", c.size, c.sums, b, err, wantList)
		}
		if m, _ := filepath.Glob(base + "*.partial"); len(m) > 0 {
			t.Errorf("left behind: %v", m)
		}
	}
}

// TestWriteTarLeavesNothingWhenItFails: a layout without index.json is not written, and no volume,
// partial or not, is left behind.
func TestWriteTarLeavesNothingWhenItFails(t *testing.T) {
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	writeCheckSample(t, layout)
	os.Remove(filepath.Join(layout, ocispec.ImageIndexFile))
	base := filepath.Join(dir, "a.tar")
	_, err := WriteTar(context.Background(), layout, base, 4096)
	if err == nil || !strings.Contains(err.Error(), ocispec.ImageIndexFile) {
		t.Fatalf("got %v, want a failure on the missing index.json", err)
	}
	if m, _ := filepath.Glob(base + "*"); len(m) > 0 {
		t.Errorf("left behind: %v", m)
	}
}

// TestSignKeepsSingleVolumeName: an archive of one volume NAME.tar.000 is still NAME.tar.000 once
// signed (not NAME.tar), with its list, and holds the signature.
func TestSignKeepsSingleVolumeName(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base, vols := writeVolumes(t, dir, 1<<30)
	if len(vols) != 1 || vols[0].Name != "a.tar.000" {
		t.Fatalf("volumes %+v, want a.tar.000 alone", vols)
	}
	bundle := []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`)
	desc, err := Sign(ctx, base+".000", func(ocispec.Descriptor) ([]byte, error) { return bundle, nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(base); err == nil {
		t.Error("signing wrote a.tar beside a.tar.000")
	}
	r, err := Open(ctx, base+".000")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(r.Volumes) != 1 || r.Volumes[0].Name != "a.tar.000" {
		t.Errorf("volumes after signing %+v, want a.tar.000 alone", r.Volumes)
	}
	_, catDesc, err := r.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sigs, err := r.CatalogSignatures(ctx, catDesc.Digest)
	if err != nil || len(sigs) != 1 || sigs[0].Manifest.Digest != desc.Digest {
		t.Fatalf("signatures %+v, %v; want the one attached as %s", sigs, err, desc.Digest)
	}
}

// writeVolumesNoSums saves the check sample as tar volumes a.tar.000, ... of volumeSize bytes in dir,
// with the volume list save writes by default: sizes, no sums.
func writeVolumesNoSums(t *testing.T, dir string, volumeSize int64) (string, []Volume) {
	t.Helper()
	writeCheckSample(t, filepath.Join(dir, "layout"))
	base := filepath.Join(dir, "a.tar")
	vols, err := writeTar(context.Background(), filepath.Join(dir, "layout"), base, volumeSize, false)
	if err != nil {
		t.Fatal(err)
	}
	return base, vols
}

// TestDefaultVolumeListHasSizesNotSums: the default list holds each volume's size and name, in order,
// after a comment, and no sum; it is read back as written, and the archive opens.
func TestDefaultVolumeListHasSizesNotSums(t *testing.T) {
	dir := t.TempDir()
	base, vols := writeVolumesNoSums(t, dir, 4096)
	if len(vols) < 3 {
		t.Fatalf("%d volumes, want at least 3", len(vols))
	}
	want := listHeader
	for i, v := range vols {
		fi, err := os.Stat(filepath.Join(dir, v.Name))
		if err != nil || v.SHA256 != "" || v.Name != fmt.Sprintf("a.tar.%03d", i) || fi.Size() != v.Size {
			t.Errorf("volume %d: %+v (%v); want a.tar.%03d, its size, no sum", i, v, err, i)
		}
		want += fmt.Sprintf("%d  %s\n", v.Size, v.Name)
	}
	if b, err := os.ReadFile(base + ChecksumSuffix); err != nil || string(b) != want {
		t.Fatalf("volume list %q, %v; want %q", b, err, want)
	}
	got, err := readVolumeList(base)
	if err != nil || !slices.Equal(got, vols) {
		t.Fatalf("read back %+v, %v; want %+v", got, err, vols)
	}
	r, err := Open(context.Background(), base+".000")
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}

// TestOpenWithoutSumsFindsBadCopies: with the default list (no sums), a missing, truncated, resized,
// misordered or damaged volume, and a list out of order, are each refused by Open with a *CheckError
// that names the volume, before anything is served.
func TestOpenWithoutSumsFindsBadCopies(t *testing.T) {
	for _, c := range []struct {
		name   string
		damage func(t *testing.T, dir string, vols []Volume)
		want   func(vols []Volume) string
	}{
		{"missing volume", func(t *testing.T, dir string, vols []Volume) {
			os.Remove(filepath.Join(dir, vols[1].Name))
		}, func(vols []Volume) string { return "(a.tar.001) is missing: copy every volume listed in" }},
		{"truncated volume", func(t *testing.T, dir string, vols []Volume) {
			os.Truncate(filepath.Join(dir, vols[1].Name), 2048)
		}, func(vols []Volume) string {
			return "volume a.tar.001 is 2048 bytes, the other volumes 4096: it is truncated"
		}},
		{"last volume of another size", func(t *testing.T, dir string, vols []Volume) {
			last := vols[len(vols)-1]
			os.Truncate(filepath.Join(dir, last.Name), last.Size+512) // a zero block more: still ends like a tar
		}, func(vols []Volume) string {
			last := vols[len(vols)-1]
			return fmt.Sprintf("volume %s is %d bytes, the volume list says %d: it is truncated (an incomplete copy) or from another archive", last.Name, last.Size+512, last.Size)
		}},
		{"volumes swapped", func(t *testing.T, dir string, vols []Volume) {
			a, b := filepath.Join(dir, vols[1].Name), filepath.Join(dir, vols[2].Name)
			os.Rename(a, a+".x")
			os.Rename(b, a)
			os.Rename(a+".x", b)
		}, func(vols []Volume) string { return "a.tar.00" }},
		{"byte flipped in a blob", func(t *testing.T, dir string, vols []Volume) {
			flipAt(t, filepath.Join(dir, vols[2].Name), 2000)
		}, func(vols []Volume) string { return "does not hash to its name (1 such blob(s)); it is in volume" }},
		{"list out of order", func(t *testing.T, dir string, vols []Volume) {
			p := filepath.Join(dir, "a.tar"+ChecksumSuffix)
			b, _ := os.ReadFile(p)
			lines := strings.SplitAfter(string(b), "\n")
			lines[2], lines[3] = lines[3], lines[2] // the comment is line 0
			os.WriteFile(p, []byte(strings.Join(lines, "")), 0o644)
		}, func(vols []Volume) string {
			return `:3: volume "a.tar.002" where the list must name a.tar.001 (volume 2 of`
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			base, vols := writeVolumesNoSums(t, dir, 4096)
			if len(vols) < 4 || vols[len(vols)-1].Size+512 > 4096 {
				t.Fatalf("volumes %+v: want at least 4, the last with room for a block", vols)
			}
			c.damage(t, dir, vols)
			r, err := Open(context.Background(), base+".000")
			if err == nil {
				r.Close()
				t.Fatalf("a bad copy (%s) opened", c.name)
			}
			if want := c.want(vols); !strings.Contains(err.Error(), want) {
				t.Fatalf("got %v, want an error containing %q", err, want)
			}
			t.Log(err)
			var ce *CheckError
			if c.name != "list out of order" && !errors.As(err, &ce) {
				t.Errorf("got %T, want a *CheckError", err)
			}
		})
	}
}

// TestVolumeSumsPassSha256sum: a list with sums (save --volume-sums) passes `sha256sum -c` run in the
// volumes' directory, and fails it once a volume is damaged; a default list (no sums) never passes it.
func TestVolumeSumsPassSha256sum(t *testing.T) {
	bin, err := exec.LookPath("sha256sum")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sha256sum not found")
		}
		t.Skip("sha256sum not found")
	}
	check := func(dir string) (string, error) {
		cmd := exec.Command(bin, "-c", "a.tar"+ChecksumSuffix)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	dir := t.TempDir()
	_, vols := writeVolumes(t, dir, 4096)
	if out, err := check(dir); err != nil || strings.Count(out, ": OK\n") != len(vols) {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
	flipAt(t, filepath.Join(dir, vols[1].Name), 100)
	if out, err := check(dir); err == nil || !strings.Contains(out, vols[1].Name+": FAILED") {
		t.Errorf("sha256sum -c passed a damaged volume: %v\n%s", err, out)
	}
	plain := t.TempDir()
	writeVolumesNoSums(t, plain, 4096)
	if out, err := check(plain); err == nil {
		t.Errorf("sha256sum -c passed a list without sums:\n%s", out)
	}
}
