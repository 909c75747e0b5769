package mirror

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/registry"
	"airlock.dev/airlock/verify"
)

// saveSetup starts a registry holding host/team/app:1.0 and returns an image set naming it.
func saveSetup(t *testing.T) (*config.ImageSet, *registry.Registries, string) {
	t.Helper()
	host, regs, _ := mirrortest.StartPagingRegistry(t, 100)
	mirrortest.PushTags(context.Background(), t, regs, host+"/team/app", "1.0")
	img, err := config.ParseReference(host + "/team/app:1.0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return &config.ImageSet{Path: filepath.Join(dir, "imageset.yaml"), Dir: dir, Images: []config.Image{img}}, regs, dir
}

func TestSaveOptions(t *testing.T) {
	ctx := context.Background()
	set, regs, dir := saveSetup(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	// The image fails verification (it is unsigned): nothing is written, the image is named.
	out := filepath.Join(dir, "gated")
	_, pub := stationKey(t, t.TempDir(), "release")
	trust, err := (&verify.Anchors{Keys: []string{pub}}).Site()
	if err != nil {
		t.Fatal(err)
	}
	var warned []string
	_, err = Save(ctx, set, regs, SaveOptions{Output: out, Retry: mirrortest.Retry, Trust: trust, Warn: func(s string) { warned = append(warned, s) }})
	if !errors.Is(err, plan.ErrCheckFailed) || !strings.HasPrefix(err.Error(), "save --verify: nothing written: 1 of 1 images failed verification") ||
		!strings.Contains(err.Error(), "/team/app:1.0 (sha256:") || len(warned) != 1 || !strings.HasPrefix(warned[0], "refused, verification failed: ") {
		t.Errorf("gate: %v, warned %q; want the one image refused", err, warned)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("gated save wrote %s", out)
	}

	// --since naming nothing.
	if _, err := Save(ctx, set, regs, SaveOptions{Output: filepath.Join(dir, "delta"), Retry: mirrortest.Retry, Since: filepath.Join(dir, "no-base")}); err == nil || !strings.HasPrefix(err.Error(), "--since: ") {
		t.Errorf("--since without a base: %v", err)
	}

	// A dry run writes nothing, and pins when asked.
	pin := filepath.Join(dir, "pinned.yaml")
	sum, err := Save(ctx, set, regs, SaveOptions{Output: filepath.Join(dir, "dry"), Retry: mirrortest.Retry, DryRun: true, PinOut: pin})
	if err != nil || !sum.DryRun || len(sum.Images) != 1 || sum.PinnedTo != pin || sum.Catalog != "" {
		t.Errorf("dry run: %+v, %v", sum, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "dry")); !os.IsNotExist(err) {
		t.Error("dry run wrote the archive")
	}
	if b, err := os.ReadFile(pin); err != nil || !strings.Contains(string(b), string(sum.Images[0].Digest)) {
		t.Errorf("pinned set: %v\n%s", err, b)
	}
	// --pin-out into a directory that does not exist: the archive is written, the error names the flag.
	if _, err := Save(ctx, set, regs, SaveOptions{Output: filepath.Join(dir, "pinfail"), Retry: mirrortest.Retry, PinOut: filepath.Join(dir, "no", "pinned.yaml")}); err == nil || !strings.HasPrefix(err.Error(), "--pin-out: ") {
		t.Errorf("--pin-out unwritable: %v", err)
	}

	// Signing fails: no index.json, so the archive is never complete and unsigned.
	out = filepath.Join(dir, "unsigned")
	boom := errors.New("no signing today")
	if _, err := Save(ctx, set, regs, SaveOptions{Output: out, Retry: mirrortest.Retry, SignKey: signFunc(func(digest.Digest) ([]byte, error) { return nil, boom })}); !errors.Is(err, boom) {
		t.Errorf("signing failing: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "index.json")); !os.IsNotExist(err) {
		t.Errorf("index.json written although signing failed: %v", err)
	}

	// A tar, logged: one volume, the catalog named, the archive opens and lists the image.
	out = filepath.Join(dir, "a.tar")
	var signed digest.Digest
	sum, err = Save(ctx, set, regs, SaveOptions{Output: out, Retry: mirrortest.Retry, Log: log, Version: "test",
		SignKey: signFunc(func(d digest.Digest) ([]byte, error) {
			signed = d
			return []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`), nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Volumes) != 1 || sum.Catalog == "" || signed != sum.Catalog {
		t.Errorf("tar save: volumes %+v, catalog %s, signed %s", sum.Volumes, sum.Catalog, signed)
	}
	r, err := archive.Open(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cat, catDesc, err := r.Catalog(ctx)
	if err != nil || catDesc.Digest != sum.Catalog || len(cat.Images) != 1 || cat.Trust.ImageSet == nil {
		t.Errorf("catalog %+v (%s), %v", cat, catDesc.Digest, err)
	}
	if sigs, err := r.CatalogSignatures(ctx, catDesc.Digest); err != nil || len(sigs) != 1 {
		t.Errorf("catalog signatures %d, %v; want the one attached", len(sigs), err)
	}

	// A tar whose staging layout cannot be made.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	if _, err := Save(ctx, set, regs, SaveOptions{Output: filepath.Join(file, "b.tar"), Retry: mirrortest.Retry}); err == nil {
		t.Error("tar under a file: saved")
	}
}

// signFunc is a Signer made of a function.
type signFunc func(digest.Digest) ([]byte, error)

func (f signFunc) SignDigest(d digest.Digest) ([]byte, error) { return f(d) }
