package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
	"airlock.dev/airlock/e2e/internal/tools"
)

// The catalog is input: what no pinned key signed decides nothing. Each attack builds a forged
// archive, runs the command a site would run, and reads the whole registry afterwards.

// TestBadInputForgedCatalog: an unsigned catalog (only image keys or a policy pinned) cannot tag an
// unsigned image as a referrer, land a signed image where another rule applies, or replace the site's
// kept record of another catalog.
func TestBadInputForgedCatalog(t *testing.T) {
	ctx := t.Context()
	src := registries.StartGGCR(t)
	dst := registries.StartDistribution(ctx, t)
	work := t.TempDir()
	app := seed.Sample(ctx, t, src, "team/app", filepath.Join(work, "keys"))
	// Signed by a key the site never pins: as good as unsigned.
	unsigned := seed.Sample(ctx, t, src, "team/tools", filepath.Join(work, "attacker"))
	set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\n  - ref: %s\n", app.Ref(), unsigned.Ref()))
	both := filepath.Join(work, "both")
	mustRun(ctx, t, "save", "-c", set, "-o", both)
	appSet := writeImageSet(t, t.TempDir(), fmt.Sprintf("images:\n  - ref: %s\n", app.Ref()))
	appOnly := filepath.Join(work, "app-only")
	mustRun(ctx, t, "save", "-c", appSet, "-o", appOnly)
	forbidden := []digest.Digest{unsigned.IndexDigest}
	for _, p := range unsigned.Platforms {
		forbidden = append(forbidden, p.Digest)
	}

	t.Run("an unsigned image listed as a referrer with a tag of its own", func(t *testing.T) {
		forged := filepath.Join(t.TempDir(), "forged")
		copyTree(t, both, forged)
		forgeCatalog(t, forged, func(cat *archive.Catalog, idx *ocispec.Index) {
			var kept []archive.Image
			for _, img := range cat.Images {
				if img.Digest != unsigned.IndexDigest {
					kept = append(kept, img)
					continue
				}
				cat.Referrers = append(cat.Referrers, archive.Referrer{Digest: img.Digest, MediaType: img.MediaType, Size: img.Size,
					ArtifactType: "application/spdx+json", Kind: "sbom", Subject: app.IndexDigest, Repository: img.Repository, FoundBy: "cosign-tag", Tag: "latest"})
			}
			cat.Images = kept
			for i, e := range idx.Manifests {
				if e.Digest == unsigned.IndexDigest {
					delete(idx.Manifests[i].Annotations, ocispec.AnnotationRefName)
				}
			}
		})
		res := run(ctx, t, "load", forged, "--to", dst+"/referrer", "--key", app.PublicKeyPath, "--verify")
		if res.code != 1 || !strings.Contains(res.stderr, `its tag "latest" is not sha256-`+app.IndexDigest.Encoded()) || !strings.Contains(res.stderr, "the catalog was altered; refused") {
			t.Errorf("load --key of an unsigned image listed as a tagged referrer: exit %d, want 1 naming the tag\n%s\n%s", res.code, res.stdout, res.stderr)
		}
		expectNowhere(ctx, t, dst, "referrer/", forbidden, "latest")
		recordIfPassed(t, "attack", "unsigned catalog (load --key --verify): an unsigned image listed as an sbom referrer of a signed image, cosign-tag, tag latest",
			"refused, exit 1: the tag is not sha256-<subject>.sig/.att/.sbom, the catalog was altered; no tag, manifest or blob of it on the target")
	})

	t.Run("an unsigned image in place of a legacy signature, its cosign tag already on the site", func(t *testing.T) {
		mustRun(ctx, t, "load", appOnly, "--to", dst+"/prod", "--key", app.PublicKeyPath)
		legacy := app.Referrers[seed.LegacySignature]
		forged := filepath.Join(t.TempDir(), "forged")
		copyTree(t, both, forged)
		forgeCatalog(t, forged, func(cat *archive.Catalog, idx *ocispec.Index) {
			var kept []archive.Image
			var evil archive.Image
			for _, img := range cat.Images {
				if img.Digest == unsigned.IndexDigest {
					evil = img
					continue
				}
				kept = append(kept, img)
			}
			cat.Images = kept
			for i, r := range cat.Referrers {
				if r.Digest == legacy.Manifest.Digest {
					cat.Referrers[i].Digest, cat.Referrers[i].MediaType, cat.Referrers[i].Size = evil.Digest, evil.MediaType, evil.Size
					cat.Referrers[i].Kind, cat.Referrers[i].ArtifactType = "other", evil.MediaType // nothing to verify
				}
			}
			for i, e := range idx.Manifests {
				switch {
				case e.Digest == unsigned.IndexDigest:
					delete(idx.Manifests[i].Annotations, ocispec.AnnotationRefName)
				case strings.HasSuffix(e.Annotations[ocispec.AnnotationRefName], ":"+legacy.Tag):
					idx.Manifests[i].Digest, idx.Manifests[i].MediaType, idx.Manifests[i].Size = evil.Digest, evil.MediaType, evil.Size
				}
			}
		})
		res := run(ctx, t, "load", forged, "--to", dst+"/prod", "--key", app.PublicKeyPath, "--verify", "--tag-moves=refuse")
		if res.code != 1 || !strings.Contains(res.stdout+res.stderr, "tag "+dst+"/prod/team/app:"+legacy.Tag+" would move from "+legacy.Manifest.Digest.String()) ||
			!strings.Contains(res.stdout+res.stderr, "nothing of this image was pushed") {
			t.Errorf("load --tag-moves=refuse of an unsigned image in place of the legacy signature: exit %d, want 1 naming the tag\n%s\n%s", res.code, res.stdout, res.stderr)
		}
		if d := tagDigest(ctx, t, dst, "prod/team/app", legacy.Tag); d != legacy.Manifest.Digest {
			t.Errorf("%s moved to %s", legacy.Tag, d)
		}
		expectNowhere(ctx, t, dst, "prod/", forbidden, "latest")
		recordIfPassed(t, "attack", "unsigned catalog (load --key --verify --tag-moves=refuse): an unsigned image in place of a legacy signature whose cosign tag is on the site",
			"the referrer's cosign tag goes through the tag-move check before anything is pushed: refused, exit 1, nothing of the image pushed, the tag left alone")
	})

	t.Run("a signed image relabelled to land where a weaker rule applies", func(t *testing.T) {
		pol := filepath.Join(t.TempDir(), "policy.yaml")
		body := fmt.Sprintf("apiVersion: airlock.dev/v1alpha1\nkind: Policy\nrules:\n  - name: app needs an SPDX SBOM\n    match: [%s/team/app]\n    signers: [{key: %s}]\n    attestations: [https://spdx.dev/Document]\n  - name: catch-all\n    match: [\"**\"]\n    signers: [{key: %s}]\n",
			src, app.PublicKeyPath, app.PublicKeyPath)
		if err := os.WriteFile(pol, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		// Honestly named, the image fails the rule for team/app.
		if res := run(ctx, t, "load", appOnly, "--to", dst+"/honest", "--policy", pol); res.code != 1 || !strings.Contains(res.stderr, "https://spdx.dev/Document") {
			t.Fatalf("the honest name: exit %d, want 1 for the missing SPDX attestation\n%s\n%s", res.code, res.stdout, res.stderr)
		}
		// Another path, with a catalog target back to team/app: the target is not used.
		relabelled := filepath.Join(t.TempDir(), "relabelled")
		copyTree(t, appOnly, relabelled)
		relabel(t, relabelled, app.IndexDigest, src+"/team/misc", "team/app")
		res := run(ctx, t, "load", relabelled, "--to", dst+"/target", "--policy", pol)
		if res.code != 0 || !strings.Contains(res.stdout, dst+"/target/team/misc:"+seed.Tag) {
			t.Errorf("relabelled with a target: exit %d, want 0 with the image at team/misc\n%s\n%s", res.code, res.stdout, res.stderr)
		}
		if tags := repoTags(ctx, t, dst, "target/team/app"); len(tags) != 0 {
			t.Errorf("an unsigned catalog's target was followed: target/team/app holds %v", tags)
		}
		// Another host, same path: it lands at team/app, and team/app's rule applies.
		rehosted := filepath.Join(t.TempDir(), "rehosted")
		copyTree(t, appOnly, rehosted)
		relabel(t, rehosted, app.IndexDigest, "evil.example.org/team/app", "")
		res = run(ctx, t, "load", rehosted, "--to", dst+"/host", "--policy", pol)
		if res.code != 1 || !strings.Contains(res.stderr, "https://spdx.dev/Document") {
			t.Errorf("relabelled host: exit %d, want 1 for the missing SPDX attestation\n%s\n%s", res.code, res.stdout, res.stderr)
		}
		expectNowhere(ctx, t, dst, "host/", []digest.Digest{app.IndexDigest}, seed.Tag)
		recordIfPassed(t, "attack", "unsigned catalog (load --policy): a signed image relabelled team/misc with target team/app, to dodge team/app's SPDX rule",
			"the target is ignored: it lands at team/misc under the rule for team/misc; nothing at team/app")
		recordIfPassed(t, "attack", "unsigned catalog (load --policy): a signed image relabelled to another source host, same path",
			"the rule is the first matching its path under any host (team/app's): refused, exit 1, missing attestation; nothing at team/app")
	})

	t.Run("an unsigned catalog with another's creation time", func(t *testing.T) {
		mustRun(ctx, t, "load", appOnly, "--to", dst+"/record", "--key", app.PublicKeyPath)
		honest := readCatalogDigest(ctx, t, appOnly)
		forged := filepath.Join(t.TempDir(), "forged")
		copyTree(t, appOnly, forged)
		forgeCatalog(t, forged, func(cat *archive.Catalog, _ *ocispec.Index) { cat.Tool.Version = "forged" })
		mustRun(ctx, t, "load", forged, "--to", dst+"/record", "--key", app.PublicKeyPath)
		tags := repoTags(ctx, t, dst, "record/airlock/catalog")
		found := 0
		for _, tag := range tags {
			if d := tagDigest(ctx, t, dst, "record/airlock/catalog", tag); d == honest {
				found++
			}
		}
		if len(tags) != 2 || found != 1 {
			t.Errorf("kept catalogs: tags %v, %d naming the honest catalog %s; want both kept, each under its own tag", tags, found, honest)
		}
		recordIfPassed(t, "attack", "unsigned catalog with another catalog's creation time, loaded after it",
			"both kept at PREFIX/airlock/catalog, each tagged by creation time and digest; the first record untouched")
	})
}

// TestBadInputFakeCatalogSignature: with the archive key pinned, an index.json entry marked as a catalog
// signature that is not one (a Docker manifest list listing a runnable unsigned image, with the
// catalog as subject and one bundle-typed layer) is refused by verify and load, and nothing is pushed.
func TestBadInputFakeCatalogSignature(t *testing.T) {
	ctx := t.Context()
	src := registries.StartGGCR(t)
	dst := registries.StartDistribution(ctx, t)
	work := t.TempDir()
	app := seed.Sample(ctx, t, src, "team/app", filepath.Join(work, "keys"))
	evil := seed.Sample(ctx, t, src, "team/tools", filepath.Join(work, "attacker"))
	transferKey, transferPub := transferKeyPair(ctx, t, filepath.Join(work, "transfer"))
	arch := filepath.Join(work, "archive")
	if res := runEnv(ctx, t, withPassword, "save", "-c", writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\ntrust:\n  keys: [%s]\n", app.Ref(), app.PublicKeyPath)), "-o", arch, "--sign-key", transferKey); res.code != 0 {
		t.Fatalf("save --sign-key: exit %d\n%s", res.code, res.stderr)
	}
	evilArch := filepath.Join(work, "evil")
	mustRun(ctx, t, "save", "-c", writeImageSet(t, t.TempDir(), fmt.Sprintf("images:\n  - ref: %s\n", evil.Ref())), "-o", evilArch)
	// The attacker's image travels in the archive's blobs.
	entries, err := os.ReadDir(filepath.Join(evilArch, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(evilArch, "blobs", "sha256", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(arch, "blobs", "sha256", e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	catDigest := readCatalogDigest(ctx, t, arch)
	bundle := putBlob(t, arch, []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
	amd := evil.Platforms["linux/amd64"]
	list := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.docker.distribution.manifest.list.v2+json",
		"manifests":     []any{map[string]any{"mediaType": amd.MediaType, "digest": amd.Digest, "size": amd.Size, "platform": map[string]string{"os": "linux", "architecture": "amd64"}}},
		"layers":        []any{map[string]any{"mediaType": archive.BundleMediaType, "digest": bundle.Digest, "size": bundle.Size}},
		"subject":       map[string]any{"mediaType": ocispec.MediaTypeImageManifest, "digest": catDigest, "size": 1},
	}
	lb, _ := json.Marshal(list)
	fake := putBlob(t, arch, lb)
	editIndexJSON(t, arch, func(idx *ocispec.Index) {
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: "application/vnd.docker.distribution.manifest.list.v2+json", Digest: fake.Digest, Size: fake.Size,
			Annotations: map[string]string{archive.AnnotationCatalogSignature: catDigest.String(), archive.AnnotationSubject: catDigest.String()}})
	})
	expectRefused(ctx, t, "verify with a fake catalog signature", []string{"verify", arch, "--archive-key", transferPub}, "catalog signature "+fake.Digest.String())
	res := run(ctx, t, "load", arch, "--to", dst+"/fake", "--archive-key", transferPub, "--verify")
	if res.code != 1 || !strings.Contains(res.stderr, fake.Digest.String()) {
		t.Errorf("load with a fake catalog signature: exit %d, want 1 naming %s\n%s\n%s", res.code, fake.Digest, res.stdout, res.stderr)
	}
	if repos := catalogRepos(ctx, t, dst); len(repos) != 0 {
		t.Errorf("load with a fake catalog signature pushed %v", repos)
	}
	recordIfPassed(t, "attack", "archive key pinned: an index.json entry marked as a catalog signature that is a Docker manifest list of a runnable unsigned image",
		"verify and load refuse it (exit 1), naming the entry: not the shape of a catalog signature; the target registry holds nothing")
}

// TestBadInputRollback: an older archive, validly signed by the pinned key, loaded after a newer one
// does not move the tag the newer one set back to the old image; --allow-older does.
func TestBadInputRollback(t *testing.T) {
	ctx := t.Context()
	src := registries.StartGGCR(t)
	dst := registries.StartDistribution(ctx, t)
	work := t.TempDir()
	old := seed.Sample(ctx, t, src, "team/app", filepath.Join(work, "keys"))
	fixed := seed.Sample(ctx, t, src, "team/app-fixed", filepath.Join(work, "keys2"))
	transferKey, transferPub := transferKeyPair(ctx, t, filepath.Join(work, "transfer"))
	save := func(name, body string) string {
		p := filepath.Join(work, name)
		if res := runEnv(ctx, t, withPassword, "save", "-c", writeImageSet(t, t.TempDir(), body), "-o", p, "--sign-key", transferKey); res.code != 0 {
			t.Fatalf("save %s: exit %d\n%s", name, res.code, res.stderr)
		}
		return p
	}
	older := save("older", fmt.Sprintf("images:\n  - ref: %s\n", old.Ref()))
	time.Sleep(1100 * time.Millisecond) // catalogs are created to the second
	newer := save("newer", fmt.Sprintf("images:\n  - ref: %s\n    target: team/app\n", fixed.Ref()))
	pinned := []string{"--to", dst + "/mirror", "--archive-key", transferPub}

	mustRun(ctx, t, append([]string{"load", newer}, pinned...)...)
	if d := tagDigest(ctx, t, dst, "mirror/team/app", seed.Tag); d != fixed.IndexDigest {
		t.Fatalf("after the newer archive, team/app:%s names %s, want %s", seed.Tag, d, fixed.IndexDigest)
	}
	newCat, oldCat := readCatalogDigest(ctx, t, newer), readCatalogDigest(ctx, t, older)
	res := run(ctx, t, append([]string{"load", older}, pinned...)...)
	if res.code != 1 || !strings.Contains(res.stderr, "rollback refused") || !strings.Contains(res.stderr, newCat.String()) || !strings.Contains(res.stderr, oldCat.String()) || !strings.Contains(res.stderr, "--allow-older") {
		t.Errorf("load of the older archive: exit %d, want 1 naming both catalogs\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if d := tagDigest(ctx, t, dst, "mirror/team/app", seed.Tag); d != fixed.IndexDigest {
		t.Errorf("the older archive moved team/app:%s back to %s", seed.Tag, d)
	}
	res = run(ctx, t, append([]string{"load", older, "--allow-older"}, pinned...)...)
	if d := tagDigest(ctx, t, dst, "mirror/team/app", seed.Tag); res.code != 0 || d != old.IndexDigest {
		t.Errorf("--allow-older: exit %d, team/app:%s at %s, want %s\n%s", res.code, seed.Tag, d, old.IndexDigest, res.stderr)
	}
	recordIfPassed(t, "attack", "replay: an older archive, validly signed by the pinned key, loaded after a newer one that moved the tag",
		"that image refused (exit 1), naming both catalogs and their creation times; the tag stays; --allow-older moves it back")
}

// recordIfPassed records a reliability row once t has asserted its outcome.
func recordIfPassed(t *testing.T, area, input, outcome string) {
	if !t.Failed() {
		record(area, input, outcome)
	}
}

// withPassword is the environment that opens the keys the real cosign made.
var withPassword = []string{"COSIGN_PASSWORD=" + seed.KeyPassword}

// transferKeyPair makes, with the real cosign, the key pair archives are signed with.
func transferKeyPair(ctx context.Context, t *testing.T, dir string) (key, pub string) {
	t.Helper()
	c := &seed.Cosign{Path: tools.Path(t, "cosign"), Home: t.TempDir()}
	key, pub, err := c.GenerateKeyPair(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	return key, pub
}

// forgeCatalog rewrites the catalog of the directory archive dir (and index.json) as an attacker with
// write access to the medium would: every digest that names the catalog agrees again; signatures of
// the old catalog are dropped.
func forgeCatalog(t *testing.T, dir string, edit func(*archive.Catalog, *ocispec.Index)) {
	t.Helper()
	var catEntry ocispec.Descriptor
	var idx ocispec.Index
	readJSON(t, filepath.Join(dir, ocispec.ImageIndexFile), &idx)
	for _, e := range idx.Manifests {
		if e.Annotations[ocispec.AnnotationRefName] == archive.CatalogRefName {
			catEntry = e
		}
	}
	var cm ocispec.Manifest
	readJSON(t, archive.BlobPath(dir, catEntry.Digest), &cm)
	var cat archive.Catalog
	readJSON(t, archive.BlobPath(dir, cm.Layers[0].Digest), &cat)
	editIndexJSON(t, dir, func(idx *ocispec.Index) {
		edit(&cat, idx)
		cb, _ := json.MarshalIndent(cat, "", "  ")
		nc := putBlob(t, dir, cb)
		cm.Layers[0].Digest, cm.Layers[0].Size = nc.Digest, nc.Size
		cmb, _ := json.Marshal(cm)
		ncm := putBlob(t, dir, cmb)
		var out []ocispec.Descriptor
		for _, e := range idx.Manifests {
			if e.Annotations[archive.AnnotationCatalogSignature] != "" {
				continue
			}
			if e.Digest == catEntry.Digest {
				e.Digest, e.Size = ncm.Digest, ncm.Size
			}
			out = append(out, e)
		}
		idx.Manifests = out
	})
}

// relabel gives the image d of the archive at dir another source repository (and tag kept) and
// catalog target.
func relabel(t *testing.T, dir string, d digest.Digest, repo, target string) {
	t.Helper()
	forgeCatalog(t, dir, func(cat *archive.Catalog, idx *ocispec.Index) {
		for i, img := range cat.Images {
			if img.Digest != d {
				continue
			}
			source := repo + ":" + img.Tag
			for j, e := range idx.Manifests {
				if e.Annotations[ocispec.AnnotationRefName] == img.Source {
					idx.Manifests[j].Annotations[ocispec.AnnotationRefName] = source
				}
			}
			cat.Images[i].Source, cat.Images[i].Repository, cat.Images[i].Target = source, repo, target
		}
	})
}

func readJSON(t *testing.T, p string, v any) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
}

func putBlob(t *testing.T, dir string, b []byte) ocispec.Descriptor {
	t.Helper()
	d := ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}
	if err := os.WriteFile(archive.BlobPath(dir, d.Digest), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// repoTags lists the tags of repo on host; none when the repository does not exist.
func repoTags(ctx context.Context, t *testing.T, host, repo string) []string {
	t.Helper()
	status, _, body := get(ctx, t, http.MethodGet, host, "/v2/"+repo+"/tags/list")
	if status == http.StatusNotFound {
		return nil
	}
	var tl struct{ Tags []string }
	if status != http.StatusOK || json.Unmarshal(body, &tl) != nil {
		t.Fatalf("GET %s/v2/%s/tags/list: %d %s", host, repo, status, body)
	}
	return tl.Tags
}

// tagDigest is the digest repo:tag names on host ("" when it is not there).
func tagDigest(ctx context.Context, t *testing.T, host, repo, tag string) digest.Digest {
	t.Helper()
	status, h, _ := get(ctx, t, http.MethodHead, host, "/v2/"+repo+"/manifests/"+tag)
	if status != http.StatusOK {
		return ""
	}
	return digest.Digest(h.Get("Docker-Content-Digest"))
}

// expectNowhere reads every repository under prefix on host, every tag and the manifests ds: no tag
// is named badTag, none names one of ds, and no repository holds one of ds.
func expectNowhere(ctx context.Context, t *testing.T, host, prefix string, ds []digest.Digest, badTag string) {
	t.Helper()
	for _, repo := range catalogRepos(ctx, t, host) {
		if !strings.HasPrefix(repo, prefix) {
			continue
		}
		for _, tag := range repoTags(ctx, t, host, repo) {
			d := tagDigest(ctx, t, host, repo, tag)
			for _, bad := range ds {
				if d == bad {
					t.Errorf("%s/%s:%s names the forged content %s", host, repo, tag, bad)
				}
			}
			if tag == badTag && !strings.HasPrefix(repo, prefix+"airlock/") {
				t.Errorf("%s/%s:%s was written by a forged catalog", host, repo, tag)
			}
		}
		for _, bad := range ds {
			if status, _, _ := get(ctx, t, http.MethodHead, host, "/v2/"+repo+"/manifests/"+bad.String()); status == http.StatusOK {
				t.Errorf("%s/%s holds the forged manifest %s", host, repo, bad)
			}
		}
	}
}
