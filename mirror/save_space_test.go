package mirror

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror/plan"
)

func TestNeedSpace(t *testing.T) {
	desc := func(s string, size int64) ocispec.Descriptor {
		return ocispec.Descriptor{Digest: digest.FromString(s), Size: size}
	}
	layer, shared, stored, base := desc("layer", 1000), desc("shared", 300), desc("stored", 5000), desc("base", 7000)
	ip := func(m string) *plan.ImagePlan {
		return &plan.ImagePlan{Root: &plan.Node{Desc: desc(m, 10), Blobs: []ocispec.Descriptor{layer, shared, stored, base}}}
	}
	plans := []*plan.ImagePlan{ip("a"), ip("b")}
	out := filepath.Join(t.TempDir(), "archive")
	p := archive.BlobPath(out, stored.Digest)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, make([]byte, stored.Size), 0o644); err != nil {
		t.Fatal(err)
	}
	inBase := func(d ocispec.Descriptor) bool { return d.Digest == base.Digest }
	// Two manifests, the layer and the shared blob once each; the stored blob and the base's are not needed.
	if got, want := needSpace(plans, inBase, out), int64(10+10+1000+300); got != want {
		t.Errorf("directory: need %d, want %d", got, want)
	}
	// Tar volumes hold each blob once: no staging copy.
	if got, want := needSpace(plans, inBase, out+".tar"), int64(10+10+1000+300+5000); got != want {
		t.Errorf("tar (nothing written yet): need %d, want %d", got, want)
	}
}
