package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror"
	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
)

func TestSparseSaveNotice(t *testing.T) {
	if got := mirror.SparseSaveNotice([]archive.Image{{Source: "a:1"}, {Source: "b:2"}}); got != "" {
		t.Errorf("no sparse image: %q, want no notice", got)
	}
	got := mirror.SparseSaveNotice([]archive.Image{{Source: "r/a:1", Sparse: true}, {Source: "r/b:2"}, {Source: "r/c:3", Sparse: true}})
	for _, want := range []string{"note: 2 image(s) saved with a platform filter", "(a sparse index: r/a:1, r/c:3)", "validation.manifests.indexes.platforms: none", "--sparse-index=flatten"} {
		if !strings.Contains(got, want) {
			t.Errorf("notice %q\ndoes not say %q", got, want)
		}
	}
}

// checkArchived opens the archive at path and checks each image is listed under its source
// reference, and the cosign-tag signature under repository:tag, the other referrer with no name.
func checkArchived(t *testing.T, path string, plans []*plan.ImagePlan) {
	t.Helper()
	ctx := context.Background()
	r, err := archive.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, p := range plans {
		d, err := r.Resolve(ctx, p.Source)
		if err != nil || d.Digest != p.Root.Desc.Digest || d.Annotations[archive.AnnotationRepository] != p.Root.Repository {
			t.Errorf("%s: %+v, %v; want %s", p.Source, d, err, p.Root.Desc.Digest)
		}
		for _, n := range p.Nodes() {
			for _, b := range append([]ocispec.Descriptor{n.Desc}, n.Blobs...) {
				if ok, err := r.Exists(ctx, b); !ok || err != nil {
					t.Errorf("%s: %s not in the archive (%v)", p.Source, b.Digest, err)
				}
			}
		}
	}
	sig, sigAmd := plans[0].Referrers[0], plans[0].Referrers[1]
	d, err := r.Resolve(ctx, "team/app:"+sigAmd.Referrer.Tag)
	if err != nil || d.Digest != sigAmd.Desc.Digest || d.Annotations[archive.AnnotationSubject] != sigAmd.Referrer.Subject.String() ||
		d.Annotations[archive.AnnotationFoundBy] != string(sigAmd.Referrer.Method) {
		t.Errorf("cosign-tag signature: %+v, %v; want %s listed under its tag", d, err, sigAmd.Desc.Digest)
	}
	d, err = r.Resolve(ctx, sig.Desc.Digest.String())
	if err != nil || d.Annotations[ocispec.AnnotationRefName] != "" || d.Annotations[archive.AnnotationSubject] != plans[0].Root.Desc.Digest.String() {
		t.Errorf("API signature: %+v, %v; want it listed with its subject and no name", d, err)
	}
}

func TestCopyIntoLayout(t *testing.T) {
	_, plans := mirrortest.SamplePlans(t)
	dir := filepath.Join(t.TempDir(), "archive")
	l, err := archive.CreateLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	tgt := &engine.LayoutTarget{Layout: l}
	rep, err := engine.Copy(context.Background(), plans, tgt, engine.CopyOptions{Retry: mirrortest.Retry})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := tgt.Store(context.Background(), plans[0]); st.Name() != l.Root() {
		t.Errorf("store name %q, want the layout root %q", st.Name(), l.Root())
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	if rep.Images[0].Status != "pushed" || rep.Images[1].Status != "pushed" {
		t.Errorf("statuses %s %s", rep.Images[0].Status, rep.Images[1].Status)
	}
	checkArchived(t, dir, plans)
}

// TestCopyIntoTar: a copy into tar volumes writes the archive and a volume list of sizes, no sums by
// default, and each volume's sha256 with Sums (save --volume-sums).
func TestCopyIntoTar(t *testing.T) {
	for _, sums := range []bool{false, true} {
		ctx := context.Background()
		_, plans := mirrortest.SamplePlans(t)
		out := filepath.Join(t.TempDir(), "a.tar")
		none := func(ocispec.Descriptor) bool { return false }
		tt, err := engine.NewTarTarget(out, 0, engine.TarContent(plans, none))
		if err != nil {
			t.Fatal(err)
		}
		defer tt.Abort()
		tt.Sums = sums
		if st, _ := tt.Store(ctx, plans[1]); st.Name() != out {
			t.Errorf("store name %q, want %q", st.Name(), out)
		}
		if _, err := engine.Copy(ctx, plans, tt, engine.CopyOptions{Retry: mirrortest.Retry}); err != nil {
			t.Fatal(err)
		}
		if err := tt.Layout.Commit(); err != nil {
			t.Fatal(err)
		}
		vols, err := tt.Finish(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tt.Abort() // nothing after Finish
		if len(vols) != 1 || vols[0].Size == 0 || (vols[0].SHA256 != "") != sums {
			t.Errorf("sums %v: volumes %+v, want one, with a sum only if asked", sums, vols)
		}
		if _, err := os.Stat(out + ".staging"); !os.IsNotExist(err) {
			t.Errorf("staging layout left behind: %v", err)
		}
		checkArchived(t, out, plans)
	}
}

func TestNewTarTargetFailures(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The staging layout cannot be made under a file.
	if tt, err := engine.NewTarTarget(filepath.Join(file, "a.tar"), 0, nil); err == nil || tt != nil {
		t.Errorf("under a file: %v, want an error", err)
	}
	// The tar writer cannot keep its journal: a directory where it goes.
	out := filepath.Join(dir, "b.tar")
	if _, err := archive.CreateLayout(out + ".staging"); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(out+".staging", "tar-journal", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, plans := mirrortest.SamplePlans(t)
	tt, err := engine.NewTarTarget(out, 0, engine.TarContent(plans, func(ocispec.Descriptor) bool { return false }))
	if err == nil || tt != nil || !strings.HasPrefix(err.Error(), "write "+out+": ") {
		t.Errorf("journal unwritable: %v, want an error naming %s", err, out)
	}
}

// TestTarContentInCopyOrder: the tar's slots are laid out in the order the copy writes: every blob in
// the order copyBlobs lists them, then the manifests, so the volumes can be hashed behind the copy.
func TestTarContentInCopyOrder(t *testing.T) {
	_, plans := mirrortest.SamplePlans(t)
	wantBlobs, wantManifests := engine.BlobOrder(plans), []digest.Digest(nil)
	for _, p := range plans {
		for _, n := range p.Nodes() {
			wantManifests = append(wantManifests, n.Desc.Digest)
		}
	}
	var got []digest.Digest // as the tar writer lays them out: each once, where it first comes
	for _, d := range engine.TarContent(plans, func(ocispec.Descriptor) bool { return false }) {
		if !slices.Contains(got, d.Digest) {
			got = append(got, d.Digest)
		}
	}
	want := append(wantBlobs, wantManifests...)
	if !slices.Equal(got, want) {
		t.Errorf("tar content in order\n%s\nwant blobs as the copy lists them, then manifests\n%s", got, want)
	}
}
