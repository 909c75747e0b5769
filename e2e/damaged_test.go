package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/e2e/internal/proxy"
	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
)

// TestDamagedArchives saves a real signed sample (and a 3 MiB image, so the tar spans several 1 MiB
// volumes) once, then for each kind of damage loads a damaged copy and checks that load refuses it
// with its own message, that nothing was tagged on the target, and that nothing was written beside
// the archive.
func TestDamagedArchives(t *testing.T) {
	ctx := t.Context()
	src := registries.StartDistribution(ctx, t)
	dst := registries.StartDistribution(ctx, t)
	work := t.TempDir()
	f := seed.Sample(ctx, t, src, "team/app", filepath.Join(work, "keys"))
	big := pushRandomImage(ctx, t, src, "team/big", "v1", 3<<20)
	pushRandomImage(ctx, t, src, "team/other", "v1", 3<<20)
	key := filepath.Base(f.PublicKeyPath)
	set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\n  - ref: %s/team/big:v1\ntrust:\n  keys: [keys/%s]\n", f.Ref(), src, key))
	otherSetDir := filepath.Join(work, "other-set")
	mkdir(t, otherSetDir)
	otherSet := writeImageSet(t, otherSetDir, fmt.Sprintf("images:\n  - ref: %s\n  - ref: %s/team/other:v1\n", f.Ref(), src))

	saved := filepath.Join(work, "saved")
	dirArch := filepath.Join(saved, "dir", "archive")
	// tarArch and plainOther: save's default volume list (sizes, no sums); sumsArch and otherTar:
	// save --volume-sums (sums, in sha256sum -c format).
	tarArch := filepath.Join(saved, "vol", "airlock.tar")
	sumsArch := filepath.Join(saved, "sums", "airlock.tar")
	otherTar := filepath.Join(saved, "other", "airlock.tar")
	plainOther := filepath.Join(saved, "plain-other", "airlock.tar")
	nestedArch := filepath.Join(saved, "nested", "archive")
	for _, a := range []string{tarArch, sumsArch, otherTar, plainOther} {
		mkdir(t, filepath.Dir(a))
	}
	mustRun(ctx, t, "save", "-c", set, "-o", dirArch)
	mustRun(ctx, t, "save", "-c", set, "-o", tarArch, "--volume-size", "1MiB")
	mustRun(ctx, t, "save", "-c", set, "-o", sumsArch, "--volume-size", "1MiB", "--volume-sums")
	mustRun(ctx, t, "save", "-c", otherSet, "-o", otherTar, "--volume-size", "1MiB", "--volume-sums")
	mustRun(ctx, t, "save", "-c", otherSet, "-o", plainOther, "--volume-size", "1MiB")
	for _, a := range []string{tarArch, sumsArch, otherTar, plainOther} {
		if vols, _ := filepath.Glob(a + ".0*"); len(vols) < 4 {
			t.Fatalf("want %s in at least 4 volumes of 1 MiB, got %v", a, vols)
		}
	}
	if sums := volumeSums(t, tarArch); len(sums) != 0 {
		t.Fatalf("a default save wrote volume sums: %v", sums)
	}
	const nestedRef = "registry.example.com/team/nested:v1"
	writeNestedArchive(t, nestedArch, nestedRef, 21)

	otherSums := volumeSums(t, otherTar)
	sbomSig := f.Referrers[seed.SBOMSignature].Manifest.Digest
	oci := func(name string, size int64) tar.Header {
		return tar.Header{Name: name, Typeflag: tar.TypeReg, Size: size}
	}
	layoutFile := oci("oci-layout", -1)

	cases := []struct {
		name, input string
		// prepare puts a damaged archive into dir and returns the path to load.
		prepare func(t *testing.T, dir string) string
		// want is a substring of the message that only this damage produces.
		want func(dir string) string
		// outside lists paths, outside the archive's directory, a hostile entry aims at.
		outside func(dir string) []string
	}{
		{
			name: "truncated volume", input: "a tar volume cut short (airlock.tar.001 truncated to half)",
			prepare: func(t *testing.T, dir string) string {
				p := copyVolumes(t, tarArch, dir)
				if err := os.Truncate(p+".001", 512<<10); err != nil {
					t.Fatal(err)
				}
				return p + ".000"
			},
			want: func(string) string {
				return "volume airlock.tar.001 is 524288 bytes, the other volumes 1048576: it is truncated"
			},
		},
		{
			name: "missing volume", input: "a tar volume missing (airlock.tar.002 not copied)",
			prepare: func(t *testing.T, dir string) string {
				p := copyVolumes(t, tarArch, dir)
				if err := os.Remove(p + ".002"); err != nil {
					t.Fatal(err)
				}
				return p + ".000"
			},
			want: func(string) string { return "(airlock.tar.002) is missing: copy every volume listed in" },
		},
		{
			name: "volumes out of order", input: "two tar volumes swapped (airlock.tar.001 and airlock.tar.002), the default volume list (no sums)",
			prepare: func(t *testing.T, dir string) string {
				p := copyVolumes(t, tarArch, dir)
				copyFile(t, tarArch+".001", p+".002")
				copyFile(t, tarArch+".002", p+".001")
				return p + ".000"
			},
			want: func(string) string {
				return " in the tar volumes does not hash to its name (1 such blob(s)); it is in volumes airlock.tar.000, airlock.tar.001, airlock.tar.002 and airlock.tar.003; a volume is damaged, out of order or from another archive"
			},
		},
		{
			name: "volume from another archive, no sums", input: "a volume of another archive swapped in (its airlock.tar.001), the default volume list (no sums)",
			prepare: func(t *testing.T, dir string) string {
				p := copyVolumes(t, tarArch, dir)
				copyFile(t, plainOther+".001", p+".001")
				return p + ".000"
			},
			want: func(string) string {
				return " in the tar volumes does not hash to its name (1 such blob(s)); it is in volumes airlock.tar.000, airlock.tar.001, airlock.tar.002 and airlock.tar.003"
			},
		},
		{
			name: "flipped byte in a tar volume, no sums", input: "one byte flipped inside a tar volume (airlock.tar.001), the default volume list (no sums)",
			prepare: func(t *testing.T, dir string) string {
				p := copyVolumes(t, tarArch, dir)
				flipByte(t, p+".001", 700_000)
				return p + ".000"
			},
			want: func(string) string {
				return " in the tar volumes does not hash to its name (1 such blob(s)); it is in volumes airlock.tar.000, airlock.tar.001, airlock.tar.002 and airlock.tar.003"
			},
		},
		{
			name: "volume from another archive", input: "a volume of another archive swapped in (its airlock.tar.001), a volume list with sums (save --volume-sums)",
			prepare: func(t *testing.T, dir string) string {
				p := copyVolumes(t, sumsArch, dir)
				copyFile(t, otherTar+".001", p+".001")
				return p + ".000"
			},
			want: func(string) string {
				return "volume airlock.tar.001: sha256 " + otherSums["airlock.tar.001"] + ", the volume list says"
			},
		},
		{
			name: "flipped byte in a tar volume", input: "one byte flipped inside a tar volume (airlock.tar.000), a volume list with sums (save --volume-sums)",
			prepare: func(t *testing.T, dir string) string {
				p := copyVolumes(t, sumsArch, dir)
				flipByte(t, p+".000", 700_000)
				return p + ".000"
			},
			want: func(string) string { return "volume airlock.tar.000: sha256 " },
		},
		{
			name: "flipped byte in a layer of tar volumes, volume list rewritten", input: "one byte flipped in the largest layer inside the tar volumes, and NAME.tar.sha256 written again to match (as whoever altered them would)",
			prepare: func(t *testing.T, dir string) string {
				p := copyVolumes(t, sumsArch, dir)
				layer, err := os.ReadFile(largestBlob(t, dirArch))
				if err != nil {
					t.Fatal(err)
				}
				rewriteVolumes(t, p, func(stream []byte) {
					at := bytes.Index(stream, layer)
					if at < 0 {
						t.Fatal("the largest layer is not in the tar stream")
					}
					stream[at+len(layer)/2] ^= 0x01
				})
				return p + ".000"
			},
			want: func(string) string { return "blob sha256:" + filepath.Base(largestBlob(t, dirArch)) },
		},
		{
			name: "flipped byte in a blob", input: "one byte flipped in a blob of a directory archive",
			prepare: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "archive")
				copyTree(t, dirArch, p)
				flipByte(t, largestBlob(t, p), 1<<20)
				return p
			},
			want: func(dir string) string {
				return "blob sha256:" + filepath.Base(largestBlob(t, filepath.Join(dir, "archive"))) + " does not hash to its name"
			},
		},
		{
			name: "altered index.json", input: "index.json altered: the image's ref name points at another digest",
			prepare: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "archive")
				copyTree(t, dirArch, p)
				editIndexJSON(t, p, func(idx *ocispec.Index) {
					for i, m := range idx.Manifests {
						if m.Annotations[ocispec.AnnotationRefName] == f.Ref() {
							idx.Manifests[i].Digest = big
							idx.Manifests[i].MediaType = ocispec.MediaTypeImageManifest
						}
					}
				})
				return p
			},
			want: func(string) string {
				return "index.json disagrees with the catalog: it lists " + f.Ref() + " as " + big.String()
			},
		},
		{
			name: "catalog disagrees with the layout", input: "a referrer manifest the catalog lists deleted from the layout",
			prepare: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "archive")
				copyTree(t, dirArch, p)
				if err := os.Remove(archive.BlobPath(p, sbomSig)); err != nil {
					t.Fatal(err)
				}
				return p
			},
			want: func(string) string { return sbomSig.String() + ", but the archive lacks it" },
		},
		{
			name: "dotdot entry", input: "tar entry `../evil`",
			prepare: func(t *testing.T, dir string) string {
				return writeTarWithList(t, dir, craftTar(t, layoutFile, oci("../evil", 5), oci("index.json", -1)))
			},
			want:    func(string) string { return `tar entry "../evil": unsafe path refused: it climbs out` },
			outside: func(dir string) []string { return []string{filepath.Join(dir, "evil")} },
		},
		{
			name: "absolute entry", input: "tar entry with an absolute path",
			prepare: func(t *testing.T, dir string) string {
				return writeTarWithList(t, dir, craftTar(t, layoutFile, oci(filepath.Join(dir, "abs-evil"), 5), oci("index.json", -1)))
			},
			want:    func(string) string { return "unsafe path refused: an absolute path" },
			outside: func(dir string) []string { return []string{filepath.Join(dir, "abs-evil")} },
		},
		{
			name: "symlink entry", input: "tar entry that is a symbolic link (index.json -> ../evil-target)",
			prepare: func(t *testing.T, dir string) string {
				return writeTarWithList(t, dir, craftTar(t, layoutFile, tar.Header{Name: "index.json", Typeflag: tar.TypeSymlink, Linkname: "../evil-target"}))
			},
			want:    func(string) string { return `tar entry "index.json" is a symbolic link to "../evil-target"` },
			outside: func(dir string) []string { return []string{filepath.Join(dir, "evil-target")} },
		},
		{
			name: "hard link entry", input: "tar entry that is a hard link (index.json => oci-layout)",
			prepare: func(t *testing.T, dir string) string {
				return writeTarWithList(t, dir, craftTar(t, layoutFile, tar.Header{Name: "index.json", Typeflag: tar.TypeLink, Linkname: "oci-layout"}))
			},
			want: func(string) string { return `tar entry "index.json" is a hard link to "oci-layout"` },
		},
		{
			name: "duplicate entries", input: "tar with the same entry twice (index.json)",
			prepare: func(t *testing.T, dir string) string {
				return writeTarWithList(t, dir, craftTar(t, layoutFile, oci("index.json", -1), oci("./index.json", -1)))
			},
			want: func(string) string { return `tar entry "./index.json" appears twice` },
		},
		{
			name: "absurd size", input: "first tar entry declaring 1 TiB, far more than the archive",
			prepare: func(t *testing.T, dir string) string {
				var buf bytes.Buffer
				tw := tar.NewWriter(&buf)
				if err := tw.WriteHeader(&tar.Header{Name: "oci-layout", Typeflag: tar.TypeReg, Size: 1 << 40, Mode: 0o644, Format: tar.FormatGNU}); err != nil {
					t.Fatal(err)
				}
				// The header alone, then the end-of-archive marker: the size is a lie.
				return writeTarWithList(t, dir, append(buf.Bytes(), make([]byte, 1024)...))
			},
			want: func(string) string { return `tar entry "oci-layout" declares 1099511627776 bytes, more than the` },
		},
		{
			name: "nested indexes", input: "an image index nesting 21 indexes deep",
			prepare: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "archive")
				copyTree(t, nestedArch, p)
				return p
			},
			want: func(string) string { return "indexes nest more than 16 deep" },
		},
	}

	repos := []string{"team/app", "team/big", "team/nested"}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prefix := fmt.Sprintf("case%d", i)
			dir := filepath.Join(work, "cases", prefix)
			mkdir(t, dir)
			arch := c.prepare(t, dir)
			before := tree(t, dir)

			// Every request to the target goes through a counting proxy: a refusal before any push
			// makes no write at all (a repository holding only blobs is listed nowhere).
			target := proxy.Start(t, dst, 0)
			res := run(ctx, t, "load", arch, "--to", target.Host+"/"+prefix)
			want := c.want(dir)
			if res.code == 0 {
				t.Fatalf("load of a damaged archive (%s) succeeded:\n%s", c.input, res.stdout)
			}
			if !strings.Contains(res.stderr, want) {
				t.Fatalf("load (%s): exit %d, stderr lacks %q:\n%s", c.input, res.code, want, res.stderr)
			}
			for _, r := range target.Requests() {
				if r.Write() {
					t.Errorf("a load refused before any push wrote to the target: %s %s", r.Method, r.Path)
				}
			}
			for _, repo := range repos {
				status, _, body := get(ctx, t, http.MethodGet, dst, "/v2/"+prefix+"/"+repo+"/tags/list")
				var tags struct{ Tags []string }
				json.Unmarshal(body, &tags)
				if status != http.StatusNotFound && !(status == http.StatusOK && len(tags.Tags) == 0) {
					t.Errorf("a refused load left tags on %s/%s: status %d, %s", prefix, repo, status, body)
				}
			}
			if status, _, body := get(ctx, t, http.MethodGet, dst, "/v2/_catalog?n=1000"); status == http.StatusOK {
				var cat struct{ Repositories []string }
				json.Unmarshal(body, &cat)
				for _, r := range cat.Repositories {
					if strings.HasPrefix(r, prefix+"/") {
						t.Errorf("a refused load pushed content into %s", r)
					}
				}
			}
			if after := tree(t, dir); !equalTrees(before, after) {
				t.Errorf("load wrote into %s:\nbefore %v\nafter  %v", dir, before, after)
			}
			if c.outside != nil {
				for _, p := range c.outside(dir) {
					if _, err := os.Lstat(p); err == nil {
						t.Errorf("%s was created outside the archive", p)
					}
				}
			}
			// The error is airlock's last line; logs and the "nothing verified" note come before it.
			msg := strings.TrimSpace(res.stderr)
			if i := strings.LastIndex(msg, "\nairlock: "); i >= 0 {
				msg = msg[i+1:]
			}
			msg = strings.TrimSpace(strings.TrimPrefix(msg, "airlock: "))
			t.Logf("%s: exit %d: %s", c.name, res.code, msg)
			record("archive", c.input, "refused before any push: "+stableMessage(msg, dir, src)+"; no tag on the target")
		})
	}
}

var (
	digestRE = regexp.MustCompile(`sha256:[0-9a-f]{64}`)
	hexRE    = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
)

// stableMessage replaces what changes from run to run in msg (the work directory, the source
// registry's port, digests) so the reliability table does not change each time it is written.
func stableMessage(msg, dir, src string) string {
	msg = strings.ReplaceAll(msg, `"`+dir, `"/…`) // an absolute entry name stays absolute
	msg = strings.ReplaceAll(msg, dir+string(filepath.Separator), "")
	msg = strings.ReplaceAll(msg, dir, ".")
	msg = strings.ReplaceAll(msg, src, "registry.example.com")
	msg = digestRE.ReplaceAllString(msg, "sha256:<digest>")
	return hexRE.ReplaceAllString(msg, "<sha256>")
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyVolumes copies the volumes of base and its volume list into dir, returning the new base.
func copyVolumes(t *testing.T, base, dir string) string {
	t.Helper()
	files, _ := filepath.Glob(base + ".*")
	for _, f := range files {
		copyFile(t, f, filepath.Join(dir, filepath.Base(f)))
	}
	return filepath.Join(dir, filepath.Base(base))
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		copyFile(t, p, filepath.Join(to, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, p string, off int) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[off%len(b)] ^= 0x01
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// largestBlob returns the path of the largest blob of a layout directory (the 3 MiB layer).
func largestBlob(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var best string
	var size int64 = -1
	for _, e := range ents {
		fi, err := e.Info()
		if err == nil && fi.Size() > size {
			best, size = filepath.Join(dir, "blobs", "sha256", e.Name()), fi.Size()
		}
	}
	return best
}

func editIndexJSON(t *testing.T, dir string, edit func(*ocispec.Index)) {
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
	if b, err = json.Marshal(idx); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// volumeSums reads the volume list of base: volume name -> sha256, for the lines that carry one.
func volumeSums(t *testing.T, base string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(base + archive.ChecksumSuffix)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if sum, name, _ := strings.Cut(line, "  "); hexRE.MatchString(sum) {
			sums[name] = sum
		}
	}
	return sums
}

// rewriteVolumes edits the tar stream the volumes of base form, writes it back into the same volumes
// and writes a volume list that matches them.
func rewriteVolumes(t *testing.T, base string, edit func([]byte)) {
	t.Helper()
	vols, _ := filepath.Glob(base + ".0*")
	sort.Strings(vols)
	var stream []byte
	sizes := make([]int, len(vols))
	for i, v := range vols {
		b, err := os.ReadFile(v)
		if err != nil {
			t.Fatal(err)
		}
		sizes[i] = len(b)
		stream = append(stream, b...)
	}
	edit(stream)
	var list strings.Builder
	for i, v := range vols {
		part := stream[:sizes[i]]
		stream = stream[sizes[i]:]
		if err := os.WriteFile(v, part, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(part)
		fmt.Fprintf(&list, "%s  %s\n", hex.EncodeToString(sum[:]), filepath.Base(v))
	}
	if err := os.WriteFile(base+archive.ChecksumSuffix, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// craftTar writes a tar stream of hdrs. A regular file of size -1 gets plausible layout content:
// oci-layout's or an empty index.json's.
func craftTar(t *testing.T, hdrs ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		var body []byte
		if h.Typeflag == tar.TypeReg {
			switch {
			case h.Size >= 0:
				body = bytes.Repeat([]byte("x"), int(h.Size))
			case strings.HasSuffix(h.Name, "oci-layout"):
				body = []byte(`{"imageLayoutVersion":"1.0.0"}`)
			default:
				body = []byte(`{"schemaVersion":2,"manifests":[]}`)
			}
			h.Size = int64(len(body))
		}
		h.Mode = 0o644
		h.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeTarWithList writes data as dir/arch/case.tar with a matching volume list, so the volume check
// passes and the tar reader itself must refuse what is inside.
func writeTarWithList(t *testing.T, dir string, data []byte) string {
	t.Helper()
	ad := filepath.Join(dir, "arch")
	mkdir(t, ad)
	p := filepath.Join(ad, "case.tar")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if err := os.WriteFile(p+archive.ChecksumSuffix, []byte(hex.EncodeToString(sum[:])+"  case.tar\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeNestedArchive writes, by hand, a directory archive whose image is an index nesting depth
// indexes (the image itself the outermost), the innermost pointing at an empty image manifest.
func writeNestedArchive(t *testing.T, dir, ref string, depth int) {
	t.Helper()
	ctx := context.Background()
	l, err := archive.CreateLayout(dir)
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
	empty := push(ocispec.DescriptorEmptyJSON.MediaType, ocispec.DescriptorEmptyJSON.Data)
	mb, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: empty, Layers: []ocispec.Descriptor{}})
	cur := push(ocispec.MediaTypeImageManifest, mb)
	for range depth {
		ib, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{cur}})
		cur = push(ocispec.MediaTypeImageIndex, ib)
	}
	entry := cur
	entry.Annotations = map[string]string{ocispec.AnnotationRefName: ref}
	l.AddEntry(entry)
	repo, tag, _ := strings.Cut(ref, ":")
	cat := &archive.Catalog{
		Tool:    archive.Tool{Name: "airlock", Version: "e2e-handmade"},
		Created: time.Now().UTC().Truncate(time.Second),
		Images:  []archive.Image{{Source: ref, Repository: repo, Tag: tag, Digest: cur.Digest, MediaType: cur.MediaType, Size: cur.Size}},
		Totals:  archive.Totals{Images: 1, Manifests: depth + 1, Blobs: 1, Bytes: empty.Size},
	}
	if _, err := l.WriteCatalog(ctx, cat); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
}

// tree lists every file under dir with its size and modification time.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, fmt.Sprintf("%s %v %d %d", rel, fi.Mode(), fi.Size(), fi.ModTime().UnixNano()))
		return nil
	})
	sort.Strings(out)
	return out
}

func equalTrees(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
