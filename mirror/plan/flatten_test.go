package plan_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/referrers"
)

func TestFlattenOnePlatform(t *testing.T) {
	p := mirrortest.SparsePlan("linux/amd64")
	whole := &plan.ImagePlan{Image: config.Image{Registry: "registry.example.com", Repository: "team/whole", Tag: "1"},
		Source: "registry.example.com/team/whole:1", Root: mirrortest.NamedNode("whole", ocispec.MediaTypeImageManifest)}
	out, reps, err := plan.Flatten([]*plan.ImagePlan{p, whole})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[1] != whole {
		t.Fatalf("plans: %v; want the flattened one and the other as it was", out)
	}
	fp := out[0]
	amd := p.Root.Children[0]
	if fp.Root != amd || !fp.Flattened() || fp.Sparse || fp.Image.Tag != "1.4.2" || fp.Source != p.Source {
		t.Fatalf("flattened root %s (flattened %v, sparse %v, tag %q), want the platform manifest %s, tag kept",
			fp.Root.Desc.Digest, fp.Flattened(), fp.Sparse, fp.Image.Tag, amd.Desc.Digest)
	}
	var carried []string
	for _, r := range fp.Referrers {
		carried = append(carried, string(r.Manifest))
	}
	if want := []string{"sig linux/amd64", "countersig linux/amd64"}; !slices.Equal(carried, want) {
		t.Errorf("carried %q, want %q", carried, want)
	}
	for _, r := range fp.Referrers { // the tags the engine writes: these and the image's own
		if strings.HasSuffix(r.Referrer.Tag, ".sig") {
			t.Errorf("the index's cosign tag %s is carried", r.Referrer.Tag)
		}
	}
	if len(reps) != 1 {
		t.Fatalf("reports: %+v", reps)
	}
	r := reps[0]
	if r.Index != p.Root.Desc.Digest || r.Digest != amd.Desc.Digest || r.Platform != "linux/amd64" || r.Carried != 2 {
		t.Errorf("report %+v", r)
	}
	var left []digest.Digest
	for _, lb := range r.LeftBehind {
		left = append(left, lb.Digest)
	}
	want := []digest.Digest{digest.FromString("index-sig"), digest.FromString("index-sbom"), digest.FromString("sbom-sig")}
	if !slices.Equal(left, want) {
		t.Errorf("left behind %v, want the index's signature, its SBOM and the SBOM's signature %v", left, want)
	}
	if r.LeftBehind[0].Kind != referrers.KindSignature || r.LeftBehind[0].Subject != p.Root.Desc.Digest {
		t.Errorf("left behind[0] = %+v", r.LeftBehind[0])
	}
}

func TestFlattenRefusesMorePlatforms(t *testing.T) {
	two, none := mirrortest.SparsePlan("linux/amd64", "linux/arm64"), mirrortest.SparsePlan()
	none.Source = "registry.example.com/team/none:1"
	one := mirrortest.SparsePlan("linux/amd64")
	out, reps, err := plan.Flatten([]*plan.ImagePlan{one, two, none})
	var fe *plan.FlattenError
	if !errors.As(err, &fe) || out != nil || reps != nil {
		t.Fatalf("Flatten = %v, %v, %v; want a FlattenError and nothing to push", out, reps, err)
	}
	if len(fe.Refused) != 2 {
		t.Fatalf("refused %q, want both images", fe.Refused)
	}
	for _, want := range []string{"team/app:1.4.2", "2 platform manifests", "linux/amd64, linux/arm64", "team/none:1", "no platform manifest", "nothing was pushed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestFlattenLeavesWholeIndexes(t *testing.T) {
	p := mirrortest.SparsePlan("linux/amd64", "linux/arm64")
	p.Sparse = false // every platform saved: the index is whole, and any registry takes it
	out, reps, err := plan.Flatten([]*plan.ImagePlan{p})
	if err != nil || len(out) != 1 || out[0] != p || len(reps) != 0 {
		t.Fatalf("Flatten = %v, %v, %v; want the plan as it was", out, reps, err)
	}
}
