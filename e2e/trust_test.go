package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
	"airlock.dev/airlock/e2e/internal/tools"
)

// TestSignedArchive is the transfer medium attacked: an archive signed with a key made by the real
// cosign CLI verifies offline when the site pins that key, and each way of changing the archive on
// the way is refused with the reason.
func TestSignedArchive(t *testing.T) {
	ctx := t.Context()
	src := registries.StartGGCR(t)
	dst := registries.StartDistribution(ctx, t)
	work := t.TempDir()
	app := seed.Sample(ctx, t, src, "team/app", filepath.Join(work, "keys"))
	c := &seed.Cosign{Path: tools.Path(t, "cosign"), Home: t.TempDir()}
	transferKey, transferPub, err := c.GenerateKeyPair(ctx, filepath.Join(work, "transfer"))
	if err != nil {
		t.Fatal(err)
	}
	withPassword := []string{"COSIGN_PASSWORD=" + seed.KeyPassword}
	set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\ntrust:\n  keys: [keys/%s]\n", app.Ref(), filepath.Base(app.PublicKeyPath)))
	arch := filepath.Join(work, "archive")
	if res := runEnv(ctx, t, withPassword, "save", "-c", set, "-o", arch, "--sign-key", transferKey); res.code != 0 || !strings.Contains(res.stdout, "catalog signed by cosign.key") {
		t.Fatalf("save --sign-key: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if res := mustRun(ctx, t, "inspect", arch); !strings.Contains(res.stdout, "  signature sha256:") {
		t.Errorf("inspect shows no catalog signature:\n%s", res.stdout)
	}

	// Pinned, with no network at all.
	pinned := []string{"--archive-key", transferPub}
	offline(ctx, t, append([]string{"verify", arch}, pinned...), "archive signed by cosign.pub")

	// Nothing pinned: refused, naming the ways to pin.
	res := run(ctx, t, "verify", arch)
	if res.code != 2 || !strings.Contains(res.stderr, "--archive-key") || !strings.Contains(res.stderr, "AIRLOCK_TRUST") {
		t.Errorf("verify with no anchor: exit %d\n%s", res.code, res.stderr)
	}
	// The explicit opt-out says so.
	res = run(ctx, t, "verify", arch, "--insecure-archive-trust")
	if res.code != 0 || !strings.Contains(res.stdout, "trust: the archive itself, not pinned") || !strings.Contains(res.stderr, "WARNING") {
		t.Errorf("verify --insecure-archive-trust: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	// A site trust file pins the same key; AIRLOCK_TRUST names it.
	trustFile := filepath.Join(work, "site-trust.yaml")
	if err := os.WriteFile(trustFile, []byte("apiVersion: airlock.dev/v1alpha1\nkind: SiteTrust\narchiveKeys: ["+transferPub+"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := runEnv(ctx, t, []string{"AIRLOCK_TRUST=" + trustFile}, "verify", arch); res.code != 0 || !strings.Contains(res.stdout, "archive signed by cosign.pub") {
		t.Errorf("verify with AIRLOCK_TRUST: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}

	// An attacker's archive: an image signed by the attacker, an ImageSet naming the attacker's key,
	// the catalog signed with it. It vouches for itself perfectly; the pinned key refuses it.
	evil := seed.Sample(ctx, t, src, "team/app-evil", filepath.Join(work, "attacker"))
	evilSet := writeImageSet(t, t.TempDir(), fmt.Sprintf("images:\n  - ref: %s\ntrust:\n  keys: [%s]\n", evil.Ref(), evil.PublicKeyPath))
	forged := filepath.Join(work, "forged")
	if res := runEnv(ctx, t, withPassword, "save", "-c", evilSet, "-o", forged, "--sign-key", evil.PrivateKeyPath); res.code != 0 {
		t.Fatalf("save the forged archive: exit %d\n%s", res.code, res.stderr)
	}
	if res := run(ctx, t, "verify", forged, "--insecure-archive-trust"); res.code != 0 {
		t.Fatalf("the forged archive should vouch for itself when nothing is pinned: exit %d\n%s", res.code, res.stderr)
	}
	expectRefused(ctx, t, "archive signed by another key", append([]string{"verify", forged}, pinned...), "unknown signer")

	// An unsigned archive.
	unsigned := filepath.Join(work, "unsigned")
	mustRun(ctx, t, "save", "-c", set, "-o", unsigned)
	expectRefused(ctx, t, "unsigned archive", append([]string{"verify", unsigned}, pinned...), "is not signed")

	// Tar volumes saved unsigned are signed on a signing station, then verify pinned.
	tarArch := filepath.Join(work, "vols", "airlock.tar")
	if err := os.MkdirAll(filepath.Dir(tarArch), 0o755); err != nil {
		t.Fatal(err)
	}
	mustRun(ctx, t, "save", "-c", set, "-o", tarArch, "--volume-size", "1MiB")
	expectRefused(ctx, t, "unsigned tar volumes", append([]string{"verify", tarArch + ".000"}, pinned...), "is not signed")
	if res := runEnv(ctx, t, withPassword, "sign", tarArch+".000", "--key", transferKey, "--image-key", app.PublicKeyPath); res.code != 0 {
		t.Fatalf("airlock sign tar volumes: exit %d\n%s", res.code, res.stderr)
	}
	if res := run(ctx, t, append([]string{"verify", tarArch + ".000"}, pinned...)...); res.code != 0 || !strings.Contains(res.stdout, "archive signed by cosign.pub") {
		t.Errorf("verify signed tar volumes: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}

	// A flipped byte in the largest layer: the catalog signature holds, the layer's digest does not.
	flipped := filepath.Join(work, "flipped")
	copyTree(t, arch, flipped)
	layer := largestBlob(t, flipped)
	flipByte(t, layer, 1<<20)
	expectRefused(ctx, t, "flipped byte in the largest layer", append([]string{"verify", flipped}, pinned...), "sha256:"+filepath.Base(layer))

	// A tampered signature bundle on the SBOM (a referrer of a referrer), bytes changed in place.
	sbomSig := app.Referrers[seed.SBOMSignature].Manifest.Digest
	tampered := filepath.Join(work, "tampered")
	copyTree(t, arch, tampered)
	tamperLayer(t, tampered, sbomSig)
	expectRefused(ctx, t, "tampered bundle on the SBOM", append([]string{"verify", tampered}, pinned...), "sha256:")

	// The same bundle altered by an attacker who rewrites everything that names it (referrer manifest,
	// catalog, index.json, the signature's subject annotation): every digest agrees again. The pinned
	// archive key refuses the new catalog; pinned image keys alone find the SBOM signature invalid.
	rewritten := filepath.Join(work, "rewritten")
	copyTree(t, arch, rewritten)
	rewriteReferrerLayer(t, rewritten, sbomSig, breakBundleSignature)
	expectRefused(ctx, t, "consistently rewritten SBOM signature, archive key pinned", append([]string{"verify", rewritten}, pinned...), "signs another digest")
	res = run(ctx, t, "verify", rewritten, "--key", app.PublicKeyPath)
	if res.code != 1 || !strings.Contains(res.stdout, "FAIL") || !regexp.MustCompile(`signature +on sbom [0-9a-f]{12} +bundle +[0-9a-f]{12}  INVALID`).MatchString(res.stdout) {
		t.Errorf("consistently rewritten SBOM signature, image key pinned: exit %d, want 1\n%s\n%s", res.code, res.stdout, res.stderr)
	}

	// load of the forged archive with the key pinned pushes nothing at all.
	res = run(ctx, t, "load", forged, "--to", dst+"/forged", "--verify", "--archive-key", transferPub)
	if res.code != 1 || !strings.Contains(res.stderr, "unknown signer") {
		t.Errorf("load --verify --archive-key of the forged archive: exit %d\n%s", res.code, res.stderr)
	}
	if repos := catalogRepos(ctx, t, dst); len(repos) != 0 {
		t.Errorf("load of the forged archive left repositories on the target: %v", repos)
	}
	res = run(ctx, t, "load", flipped, "--to", dst+"/flipped", "--archive-key", transferPub)
	if res.code != 1 || !strings.Contains(res.stderr, filepath.Base(layer)) {
		t.Errorf("load --archive-key of the archive with a flipped layer: exit %d\n%s", res.code, res.stderr)
	}
	if repos := catalogRepos(ctx, t, dst); len(repos) != 0 {
		t.Errorf("load of the damaged archive left repositories on the target: %v", repos)
	}

	// The real archive loads; its catalog is kept on the site, and cosign itself verifies it there.
	res = mustRun(ctx, t, "load", arch, "--to", dst+"/mirror", "--verify", "--archive-key", transferPub)
	if !strings.Contains(res.stdout, "trust: archive signed by cosign.pub") || !strings.Contains(res.stderr, "kept at "+dst+"/mirror/airlock/catalog:") {
		t.Errorf("load: trust or catalog line missing:\n%s\n%s", res.stdout, res.stderr)
	}
	catDigest := readCatalogDigest(ctx, t, arch)
	checkCosignVerifiesDigest(ctx, t, transferPub, dst+"/mirror/airlock/catalog@"+catDigest.String())
	// And the site registry verifies against the archive pinned the same way.
	if res := run(ctx, t, "verify", dst+"/mirror", "--archive", arch, "--archive-key", transferPub); res.code != 0 {
		t.Errorf("verify the site registry: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}

	// A plain load with nothing pinned still copies, and says nothing was verified.
	res = mustRun(ctx, t, "load", arch, "--to", dst+"/plain", "--format", "json")
	var rep struct{ Trust string }
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || !strings.HasPrefix(rep.Trust, "nothing verified") || !strings.Contains(res.stderr, "nothing verified") {
		t.Errorf("plain load: no word that nothing was verified (%v):\n%s\n%s", err, res.stdout, res.stderr)
	}
	// load --verify with nothing pinned refuses before pushing.
	if res := run(ctx, t, "load", arch, "--to", dst+"/unpinned", "--verify"); res.code != 2 || !strings.Contains(res.stderr, "--archive-key") {
		t.Errorf("load --verify with no anchor: exit %d\n%s", res.code, res.stderr)
	}
}

// offline runs airlock args in a network namespace with loopback only (unshare -rn) and expects exit
// 0 with want in its output.
func offline(ctx context.Context, t *testing.T, args []string, want string) {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("unshare not found (util-linux)")
		}
		t.Logf("unshare not found: running %v with the network", args)
		if res := mustRun(ctx, t, args...); !strings.Contains(res.stdout, want) {
			t.Errorf("airlock %v: no %q in\n%s", args, want, res.stdout)
		}
		return
	}
	out, err := exec.CommandContext(ctx, unshare, append([]string{"-rn", airlock(t)}, args...)...).CombinedOutput()
	switch {
	case err != nil && (bytes.Contains(out, []byte("unshare failed")) || bytes.Contains(out, []byte("Operation not permitted"))):
		if os.Getenv("CI") == "true" {
			t.Fatalf("unshare -rn not permitted here: %s", out)
		}
		t.Logf("unshare -rn not permitted here, skipping the namespace check: %s", out)
	case err != nil:
		t.Errorf("airlock %v inside unshare -rn: %v\n%s", args, err, out)
	case !strings.Contains(string(out), want):
		t.Errorf("airlock %v inside unshare -rn: no %q in\n%s", args, want, out)
	}
}

// expectRefused runs airlock args and expects exit 1 with want in what it printed.
func expectRefused(ctx context.Context, t *testing.T, what string, args []string, want string) {
	t.Helper()
	res := run(ctx, t, args...)
	if res.code != 1 || !strings.Contains(res.stderr+res.stdout, want) {
		t.Errorf("%s: exit %d, want 1 with %q\nstderr:\n%s\nstdout:\n%s", what, res.code, want, res.stderr, res.stdout)
	}
}

// catalogRepos lists the repositories of a registry.
func catalogRepos(ctx context.Context, t *testing.T, host string) []string {
	t.Helper()
	status, _, b := get(ctx, t, http.MethodGet, host, "/v2/_catalog")
	if status != http.StatusOK {
		t.Fatalf("GET %s/v2/_catalog: %d", host, status)
	}
	var c struct{ Repositories []string }
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.Repositories
}

func readCatalogDigest(ctx context.Context, t *testing.T, path string) digest.Digest {
	t.Helper()
	_, d := readCatalogFile(ctx, t, path)
	return d
}

// checkCosignVerifiesDigest runs the real `cosign verify --key` on ref, offline.
func checkCosignVerifiesDigest(ctx context.Context, t *testing.T, pub, ref string) {
	t.Helper()
	c := &seed.Cosign{Path: tools.Path(t, "cosign"), Home: t.TempDir()}
	if out, err := c.Run(ctx, c.Home, append([]string{"verify", "--key", pub, ref}, offlineVerifyFlags...)...); err != nil {
		t.Errorf("cosign verify --key %s %s: %v\n%s", pub, ref, err, out)
	}
}

// breakBundleSignature flips a bit of the DSSE signature inside a Sigstore bundle: still a
// well-formed bundle, no longer a valid signature.
func breakBundleSignature(t *testing.T, b []byte) []byte {
	t.Helper()
	var bundle map[string]any
	if err := json.Unmarshal(b, &bundle); err != nil {
		t.Fatal(err)
	}
	env, ok := bundle["dsseEnvelope"].(map[string]any)
	if !ok {
		t.Fatalf("bundle has no dsseEnvelope: %s", b)
	}
	sig := env["signatures"].([]any)[0].(map[string]any)
	raw, err := base64.StdEncoding.DecodeString(sig["sig"].(string))
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0x01
	sig["sig"] = base64.StdEncoding.EncodeToString(raw)
	out, err := json.Marshal(bundle)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rewriteReferrerLayer changes the first layer of referrer manifest d as mutate says, and then, as an
// attacker with write access to the medium would, rewrites everything that names it so that every
// digest agrees again: the referrer manifest, the catalog (its referrer list and contents), the
// catalog manifest, index.json, and the catalog signature's subject annotation.
func rewriteReferrerLayer(t *testing.T, dir string, d digest.Digest, mutate func(*testing.T, []byte) []byte) {
	t.Helper()
	put := func(b []byte) ocispec.Descriptor {
		desc := ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}
		if err := os.WriteFile(archive.BlobPath(dir, desc.Digest), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return desc
	}
	read := func(d digest.Digest, v any) []byte {
		b, err := os.ReadFile(archive.BlobPath(dir, d))
		if err != nil {
			t.Fatal(err)
		}
		if v != nil {
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatal(err)
			}
		}
		return b
	}
	var m ocispec.Manifest
	read(d, &m)
	nl := put(mutate(t, read(m.Layers[0].Digest, nil)))
	m.Layers[0].Digest, m.Layers[0].Size = nl.Digest, nl.Size
	mb, _ := json.Marshal(m)
	nm := put(mb)

	var catEntry ocispec.Descriptor
	var idx ocispec.Index
	b, err := os.ReadFile(filepath.Join(dir, ocispec.ImageIndexFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	for _, e := range idx.Manifests {
		if e.Annotations[ocispec.AnnotationRefName] == archive.CatalogRefName {
			catEntry = e
		}
	}
	var cm ocispec.Manifest
	read(catEntry.Digest, &cm)
	var cat archive.Catalog
	read(cm.Layers[0].Digest, &cat)
	for i := range cat.Referrers {
		if cat.Referrers[i].Digest == d {
			cat.Referrers[i].Digest, cat.Referrers[i].Size = nm.Digest, nm.Size
		}
	}
	for i := range cat.Contents {
		if cat.Contents[i] == d {
			cat.Contents[i] = nm.Digest
		}
	}
	cat.Contents = append(cat.Contents, nl.Digest)
	cb, _ := json.MarshalIndent(cat, "", "  ")
	nc := put(cb)
	cm.Layers[0].Digest, cm.Layers[0].Size = nc.Digest, nc.Size
	cmb, _ := json.Marshal(cm)
	ncm := put(cmb)
	editIndexJSON(t, dir, func(idx *ocispec.Index) {
		for i, e := range idx.Manifests {
			switch {
			case e.Digest == catEntry.Digest:
				idx.Manifests[i].Digest, idx.Manifests[i].Size = ncm.Digest, ncm.Size
			case e.Digest == d:
				idx.Manifests[i].Digest, idx.Manifests[i].Size = nm.Digest, nm.Size
			}
			if e.Annotations[archive.AnnotationCatalogSignature] != "" {
				// The signature's manifest names the new catalog as its subject; its bundle still
				// signs the old one.
				var sm ocispec.Manifest
				read(e.Digest, &sm)
				sm.Subject.Digest, sm.Subject.Size = ncm.Digest, ncm.Size
				smb, _ := json.Marshal(sm)
				ns := put(smb)
				idx.Manifests[i].Digest, idx.Manifests[i].Size = ns.Digest, ns.Size
				idx.Manifests[i].Annotations[archive.AnnotationCatalogSignature] = ncm.Digest.String()
				idx.Manifests[i].Annotations[archive.AnnotationSubject] = ncm.Digest.String()
			}
		}
	})
}
