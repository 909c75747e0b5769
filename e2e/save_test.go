package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/oci"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
	"airlock.dev/airlock/e2e/internal/tools"
)

// registryCases are the two real registries every save test runs against.
var registryCases = []struct {
	name  string
	start func(ctx context.Context, t testing.TB) string
}{
	{"ggcr-referrers-api", func(_ context.Context, t testing.TB) string { return registries.StartGGCR(t) }},
	{"distribution-no-api", registries.StartDistribution},
}

// writeImageSet writes an ImageSet file into dir and returns its path.
func writeImageSet(t testing.TB, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "imageset.yaml")
	if err := os.WriteFile(p, []byte("apiVersion: airlock.dev/v1alpha1\nkind: ImageSet\n"+body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSave saves the signed sample from each registry and checks the archive holds every manifest
// of it, byte for byte, and that the catalog says how each referrer was found.
func TestSave(t *testing.T) {
	for _, rc := range registryCases {
		t.Run(rc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			host := rc.start(ctx, t)
			work := t.TempDir()
			f := seed.Sample(ctx, t, host, "team/app", filepath.Join(work, "keys"))
			set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\ntrust:\n  keys: [keys/%s]\n", f.Ref(), filepath.Base(f.PublicKeyPath)))
			out := filepath.Join(work, "archive")

			res := mustRun(ctx, t, "save", "-c", set, "-o", out, "--format", "json")
			var sum struct {
				Manifests         int
				Referrers         int
				ReferrersByMethod map[string]int
			}
			if err := json.Unmarshal([]byte(res.stdout), &sum); err != nil {
				t.Fatalf("save --format json printed no JSON: %v\n%s", err, res.stdout)
			}
			if sum.Referrers != len(seed.Kinds) {
				t.Errorf("summary: %d referrers, want %d", sum.Referrers, len(seed.Kinds))
			}

			checkEveryBlobHashesToItsName(t, out)
			// Every manifest and blob of the sample is in the archive.
			want := []ocispec.Descriptor{f.Index, f.Platforms["linux/amd64"], f.Platforms["linux/arm64"]}
			want = append(want, f.ImageBlobs...)
			for _, k := range seed.Kinds {
				want = append(want, f.Referrers[k].Manifest)
				want = append(want, f.Referrers[k].Blobs...)
			}
			for _, d := range want {
				if _, err := os.Stat(archive.BlobPath(out, d.Digest)); err != nil {
					t.Errorf("archive lacks %s (%s)", d.Digest, d.MediaType)
				}
			}

			cat := readCatalog(ctx, t, out)
			if len(cat.Images) != 1 || cat.Images[0].Digest != f.IndexDigest || cat.Images[0].Source != f.Ref() {
				t.Fatalf("catalog images: %+v", cat.Images)
			}
			if len(cat.Images[0].Platforms) != 2 || cat.Images[0].Sparse {
				t.Errorf("catalog platforms: %+v sparse=%v", cat.Images[0].Platforms, cat.Images[0].Sparse)
			}
			byDigest := map[digest.Digest]archive.Referrer{}
			for _, r := range cat.Referrers {
				byDigest[r.Digest] = r
			}
			for _, k := range seed.Kinds {
				sr := f.Referrers[k]
				got, ok := byDigest[sr.Manifest.Digest]
				if !ok {
					t.Errorf("catalog lacks the %s (%s)", k, sr.Manifest.Digest)
					continue
				}
				if got.FoundBy != string(sr.Found) || got.Subject != sr.Subject || got.Tag != sr.Tag {
					t.Errorf("%s: catalog says found by %q, subject %s, tag %q; want %q, %s, %q", k, got.FoundBy, got.Subject, got.Tag, sr.Found, sr.Subject, sr.Tag)
				}
			}
			if len(cat.Trust.Keys) != 1 {
				t.Errorf("catalog trust keys: %+v", cat.Trust.Keys)
			} else if key, _ := os.ReadFile(f.PublicKeyPath); digest.FromBytes(key) != cat.Trust.Keys[0].Digest {
				t.Errorf("the key in the archive is not the ImageSet's key")
			}

			checkOtherToolsRead(ctx, t, out, f)

			// inspect prints the tree with every referrer under its subject.
			tree := mustRun(ctx, t, "inspect", out).stdout
			t.Logf("airlock save:\n%s\nairlock inspect:\n%s", mustRun(ctx, t, "save", "-c", set, "-o", out).stdout, tree)
			for _, k := range seed.Kinds {
				if !strings.Contains(tree, f.Referrers[k].Manifest.Digest.String()) {
					t.Errorf("inspect does not show the %s:\n%s", k, tree)
				}
			}
			if !strings.Contains(tree, "linux/amd64") || !strings.Contains(tree, f.Ref()) {
				t.Errorf("inspect tree lacks the image or its platforms:\n%s", tree)
			}
		})
	}
}

// checkEveryBlobHashesToItsName reads every file under blobs/ and checks its sha256.
func checkEveryBlobHashesToItsName(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) == 0 {
		t.Fatal("archive has no blobs")
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if got := digest.FromBytes(b).Encoded(); got != e.Name() {
			t.Errorf("blob %s hashes to %s", e.Name(), got)
		}
	}
	for _, stray := range []string{".airlock-ingest"} {
		if _, err := os.Stat(filepath.Join(dir, stray)); err == nil {
			t.Errorf("%s left in the archive", stray)
		}
	}
}

func readCatalog(ctx context.Context, t *testing.T, path string) *archive.Catalog {
	t.Helper()
	cat, _ := readCatalogFile(ctx, t, path)
	return cat
}

// readCatalogFile reads the catalog of the archive at path, and the digest of its manifest.
func readCatalogFile(ctx context.Context, t *testing.T, path string) (*archive.Catalog, digest.Digest) {
	t.Helper()
	r, err := archive.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cat, desc, err := r.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return cat, desc.Digest
}

// checkOtherToolsRead opens the archive with oras-go's OCI store and with regctl.
func checkOtherToolsRead(ctx context.Context, t *testing.T, dir string, f *seed.Fixture) {
	t.Helper()
	store, err := oci.NewFromFS(ctx, os.DirFS(dir))
	if err != nil {
		t.Fatalf("oras-go oci.NewFromFS: %v", err)
	}
	desc, err := store.Resolve(ctx, f.Ref())
	if err != nil || desc.Digest != f.IndexDigest {
		t.Errorf("oras-go resolves %s to %v (%v), want %s", f.Ref(), desc.Digest, err, f.IndexDigest)
	}
	var tags []string
	if err := store.Tags(ctx, "", func(ts []string) error { tags = append(tags, ts...); return nil }); err != nil {
		t.Fatal(err)
	}
	if !contains(tags, f.Ref()) || !contains(tags, archive.CatalogRefName) {
		t.Errorf("oras-go lists tags %v, want %s and %s among them", tags, f.Ref(), archive.CatalogRefName)
	}

	regctl := tools.Path(t, "regctl")
	out, err := exec.CommandContext(ctx, regctl, "manifest", "get", "--format", "raw-body", "ocidir://"+dir+"@"+f.IndexDigest.String()).Output()
	if err != nil {
		t.Fatalf("regctl manifest get ocidir://...@%s: %v", f.IndexDigest, err)
	}
	if digest.FromBytes(out) != f.IndexDigest {
		t.Errorf("regctl read the index back with digest %s, want %s", digest.FromBytes(out), f.IndexDigest)
	}
	out, err = exec.CommandContext(ctx, regctl, "tag", "ls", "ocidir://"+dir).CombinedOutput()
	if err != nil {
		t.Fatalf("regctl tag ls: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), archive.CatalogRefName) {
		t.Errorf("regctl tag ls ocidir:// lists %q, want the catalog among them", out)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
