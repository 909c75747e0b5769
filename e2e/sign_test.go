package e2e

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
	"airlock.dev/airlock/e2e/internal/tools"
)

// TestSign is the signing station between the connected host and the site: whoever controls the medium
// between them must not be able to have the station vouch for what they wrote. sign verifies every
// image against image trust given at the station (never the archive's own) before it signs; an
// attacker's archive, whose catalog carries the attacker's key as its trust, is refused and left
// byte for byte as it was. Each case runs on a directory and on tar volumes.
func TestSign(t *testing.T) {
	ctx := t.Context()
	src := registries.StartGGCR(t)
	work := t.TempDir()
	release := seed.Sample(ctx, t, src, "team/app", filepath.Join(work, "release"))
	attacker := seed.Sample(ctx, t, src, "team/app-evil", filepath.Join(work, "attacker"))
	pushRandomImage(ctx, t, src, "team/plain", "v1", 64<<10)
	plainRef := src + "/team/plain:v1"
	c := &seed.Cosign{Path: tools.Path(t, "cosign"), Home: t.TempDir()}
	transferKey, transferPub, err := c.GenerateKeyPair(ctx, filepath.Join(work, "transfer"))
	if err != nil {
		t.Fatal(err)
	}
	// The station's environment: the transfer key's password, and no site trust file but what a case
	// gives.
	station := []string{"COSIGN_PASSWORD=" + seed.KeyPassword, "AIRLOCK_TRUST="}
	honestSet := imageSetIn(t, filepath.Join(work, "honest-set"), fmt.Sprintf("images:\n  - ref: %s\ntrust:\n  keys: [%s]\n", release.Ref(), release.PublicKeyPath))
	// The attacker's image set: an image signed by the attacker's key and an unsigned one, with the
	// attacker's key as the archive's trust. The archive agrees with its catalog, every blob hashed.
	evilSet := imageSetIn(t, filepath.Join(work, "evil-set"), fmt.Sprintf("images:\n  - ref: %s\n  - ref: %s\ntrust:\n  keys: [%s]\n", attacker.Ref(), plainRef, attacker.PublicKeyPath))

	for _, form := range []struct{ name, file string }{{"directory", "airlock"}, {"tar", "airlock.tar"}} {
		t.Run(form.name, func(t *testing.T) {
			save := func(set, name string) string {
				t.Helper()
				dir := filepath.Join(t.TempDir(), name)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				out := filepath.Join(dir, form.file)
				args := []string{"save", "-c", set, "-o", out}
				if form.name == "tar" {
					args = append(args, "--volume-size", "1MiB")
				}
				mustRun(ctx, t, args...)
				return out
			}
			sign := func(arch string, args ...string) result {
				t.Helper()
				return runEnv(ctx, t, station, append([]string{"sign", arch, "--key", transferKey}, args...)...)
			}

			// (1) The attack: refused, each image named with its reason, nothing written.
			evil := save(evilSet, "evil")
			before := snapshot(t, filepath.Dir(evil))
			res := sign(evil, "--image-key", release.PublicKeyPath)
			if res.code != 1 || !strings.Contains(res.stderr, "not signed: 2 of 2 images failed verification against site: keys cosign.pub") {
				t.Errorf("sign the attacker's archive --image-key release.pub: exit %d, want 1, refused\nstderr:\n%s\nstdout:\n%s", res.code, res.stderr, res.stdout)
			}
			for _, want := range []string{
				attacker.Ref() + " (" + attacker.IndexDigest.String() + "): ", // the attacker-signed image, named
				"not accepted: by an unknown signer",                          // its signatures are by another key
				plainRef + " (sha256:",                                        // the unsigned image, named
				"valid signatures over the image",                             // why: no valid signature by the station's key
			} {
				if !strings.Contains(res.stderr, want) {
					t.Errorf("the refusal does not name %q:\n%s", want, res.stderr)
				}
			}
			if !strings.Contains(res.stdout, "FAIL  "+attacker.Ref()) || !strings.Contains(res.stdout, "unknown-signer: cosign.pub: signed by a different key") || !strings.Contains(res.stdout, "not signed "+evil) {
				t.Errorf("the report does not show the failing images:\n%s", res.stdout)
			}
			sameFiles(t, "the refused archive", before, snapshot(t, filepath.Dir(evil)))
			// A site trust file at the station does as --image-key does; its archiveKeys are not image trust.
			trustFile := filepath.Join(t.TempDir(), "station.yaml")
			writeFile(t, trustFile, "apiVersion: airlock.dev/v1alpha1\nkind: SiteTrust\nkeys: ["+release.PublicKeyPath+"]\n")
			if res := sign(evil, "--trust", trustFile); res.code != 1 || !strings.Contains(res.stderr, "(site trust file "+trustFile+")") {
				t.Errorf("sign the attacker's archive --trust: exit %d, want 1 naming the site trust file\n%s", res.code, res.stderr)
			}
			sameFiles(t, "the archive refused with --trust", before, snapshot(t, filepath.Dir(evil)))

			// (2) No image trust: a usage error naming every way to give it, nothing written.
			archiveKeysOnly := filepath.Join(t.TempDir(), "archive-keys.yaml")
			writeFile(t, archiveKeysOnly, "apiVersion: airlock.dev/v1alpha1\nkind: SiteTrust\narchiveKeys: ["+transferPub+"]\n")
			for _, extra := range [][]string{nil, {"AIRLOCK_TRUST=" + archiveKeysOnly}} {
				res := runEnv(ctx, t, append(station, extra...), "sign", evil, "--key", transferKey)
				if res.code != 2 {
					t.Errorf("sign with no image trust (%v): exit %d, want 2\n%s", extra, res.code, res.stderr)
				}
				for _, flag := range []string{"--image-key", "--trust", "--policy", "--content-only"} {
					if !strings.Contains(res.stderr, flag) {
						t.Errorf("sign with no image trust (%v) does not name %s:\n%s", extra, flag, res.stderr)
					}
				}
			}
			sameFiles(t, "the archive signed with no image trust", before, snapshot(t, filepath.Dir(evil)))

			// (3) The honest archive: verified against the station's key, signed, and the site pins
			// the transfer key.
			honest := save(honestSet, "honest")
			res = sign(honest, "--image-key", release.PublicKeyPath)
			if res.code != 0 || !strings.Contains(res.stdout, "images verified: 1 against site: keys cosign.pub") || !strings.Contains(res.stdout, "signed "+honest) {
				t.Fatalf("sign the honest archive: exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
			}
			if res := run(ctx, t, "verify", honest, "--archive-key", transferPub); res.code != 0 || !strings.Contains(res.stdout, "archive signed by cosign.pub") {
				t.Errorf("verify the signed archive --archive-key: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
			}

			// (4) --content-only: the old check alone, said so, in text and in JSON. On the attacker's
			// archive it signs what (1) refused: the opt-out is explicit.
			res = sign(evil, "--content-only")
			if res.code != 0 || !strings.Contains(res.stdout, "content only: images' signatures not checked (--content-only)") || !strings.Contains(res.stdout, "signed "+evil) {
				t.Errorf("sign --content-only: exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
			}
			res = sign(honest, "--content-only", "--format", "json")
			var rep struct {
				Signed    bool   `json:"signed"`
				Checked   string `json:"checked"`
				Signature string `json:"signature"`
			}
			if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || res.code != 0 || !rep.Signed || rep.Checked != "content-only" || rep.Signature == "" {
				t.Errorf("sign --content-only --format json: exit %d, %+v (%v)\n%s\n%s", res.code, rep, err, res.stdout, res.stderr)
			}
			if res := sign(honest, "--content-only", "--image-key", release.PublicKeyPath); res.code != 2 || !strings.Contains(res.stderr, "--content-only checks no image signature") {
				t.Errorf("sign --content-only --image-key: exit %d, want 2\n%s", res.code, res.stderr)
			}
		})
	}
}

// snapshot returns the sha256 of every file under dir, by path relative to dir.
func snapshot(t *testing.T, dir string) map[string][sha256.Size]byte {
	t.Helper()
	out := map[string][sha256.Size]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameFiles fails unless after holds the same files as before, byte for byte.
func sameFiles(t *testing.T, what string, before, after map[string][sha256.Size]byte) {
	t.Helper()
	for p, sum := range before {
		if got, ok := after[p]; !ok {
			t.Errorf("%s: %s was removed", what, p)
		} else if got != sum {
			t.Errorf("%s: %s changed", what, p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: %s was added", what, p)
		}
	}
}

func writeFile(t *testing.T, p, body string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSignDelta: a delta archive (save --since) holds only what its base lacks; the station verifies
// the images the delta holds and lists those only its base holds as not checked here. An image the
// station's trust refuses, added in a delta, is refused as in a full archive.
func TestSignDelta(t *testing.T) {
	ctx := t.Context()
	src := registries.StartGGCR(t)
	work := t.TempDir()
	keys := filepath.Join(work, "release")
	app := seed.Sample(ctx, t, src, "team/app", keys)
	api := seed.Sample(ctx, t, src, "team/api", keys) // the same release key, reused from keys
	attacker := seed.Sample(ctx, t, src, "team/app-evil", filepath.Join(work, "attacker"))
	c := &seed.Cosign{Path: tools.Path(t, "cosign"), Home: t.TempDir()}
	transferKey, _, err := c.GenerateKeyPair(ctx, filepath.Join(work, "transfer"))
	if err != nil {
		t.Fatal(err)
	}
	station := []string{"COSIGN_PASSWORD=" + seed.KeyPassword, "AIRLOCK_TRUST="}
	full := filepath.Join(work, "full")
	mustRun(ctx, t, "save", "-c", imageSetIn(t, filepath.Join(work, "set1"), fmt.Sprintf("images:\n  - ref: %s\n", app.Ref())), "-o", full)

	delta := filepath.Join(work, "delta")
	mustRun(ctx, t, "save", "-c", imageSetIn(t, filepath.Join(work, "set2"), fmt.Sprintf("images:\n  - ref: %s\n  - ref: %s\n", app.Ref(), api.Ref())), "-o", delta, "--since", full)
	res := runEnv(ctx, t, station, "sign", delta, "--key", transferKey, "--image-key", app.PublicKeyPath)
	if res.code != 0 || !strings.Contains(res.stdout, "images verified: 1 against site: keys cosign.pub") ||
		!strings.Contains(res.stdout, "PASS  "+api.Ref()) || !strings.Contains(res.stdout, "BASE  "+app.Ref()+"  not in this delta archive") {
		t.Fatalf("sign the delta: exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	if res := run(ctx, t, "inspect", delta); !strings.Contains(res.stdout, "  signature sha256:") {
		t.Errorf("inspect shows no catalog signature on the signed delta:\n%s", res.stdout)
	}

	evilDelta := filepath.Join(work, "evil-delta")
	mustRun(ctx, t, "save", "-c", imageSetIn(t, filepath.Join(work, "set3"), fmt.Sprintf("images:\n  - ref: %s\n  - ref: %s\n", app.Ref(), attacker.Ref())), "-o", evilDelta, "--since", full)
	before := snapshot(t, evilDelta)
	res = runEnv(ctx, t, station, "sign", evilDelta, "--key", transferKey, "--image-key", app.PublicKeyPath)
	if res.code != 1 || !strings.Contains(res.stderr, attacker.Ref()) || !strings.Contains(res.stderr, "by an unknown signer") {
		t.Errorf("sign a delta adding an attacker's image: exit %d, want 1 naming it\n%s", res.code, res.stderr)
	}
	sameFiles(t, "the refused delta", before, snapshot(t, evilDelta))
}

// imageSetIn writes an ImageSet into dir, created first.
func imageSetIn(t *testing.T, dir, body string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return writeImageSet(t, dir, body)
}
