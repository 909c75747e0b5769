package mirror

import (
	"testing"

	"github.com/opencontainers/go-digest"

	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/verify"
)

// TestVerifyImage: the image described for verification names each platform (a child without one by
// its short digest) and lists every referrer with its subject and kind.
func TestVerifyImage(t *testing.T) {
	src, plans := mirrortest.SamplePlans(t)
	app := plans[0]
	unnamed := mirrortest.ImageNode(t, src, "team/app", 7)
	app.Root.Children = append(app.Root.Children, unnamed)
	app.Referrers[0].Kind = "signature"
	vi := verifyImage(app)
	amd, arm := app.Root.Children[0], app.Root.Children[1]
	if vi.Source != app.Source || vi.Repository != "registry.example.com/team/app" || vi.Digest != app.Root.Desc.Digest || vi.Fetch != app.Content {
		t.Errorf("image %+v does not describe %s", vi, app.Source)
	}
	want := map[digest.Digest]string{amd.Desc.Digest: "linux/amd64", arm.Desc.Digest: "linux/arm64", unnamed.Desc.Digest: unnamed.Desc.Digest.Encoded()[:12]}
	if len(vi.Platforms) != 3 {
		t.Errorf("platforms %v, want %v", vi.Platforms, want)
	}
	for d, name := range want {
		if vi.Platforms[d] != name {
			t.Errorf("platform of %s: %q, want %q", d, vi.Platforms[d], name)
		}
	}
	if len(vi.Referrers) != 2 || vi.Referrers[0].Digest != app.Referrers[0].Desc.Digest || vi.Referrers[0].Subject != app.Root.Desc.Digest ||
		vi.Referrers[0].Kind != "signature" || string(vi.Referrers[1].Manifest) != string(app.Referrers[1].Manifest) || vi.Referrers[1].Subject != amd.Desc.Digest {
		t.Errorf("referrers %+v", vi.Referrers)
	}
}

// TestCoversPlatform: on a flattened image, the checks on its manifest cover its platform; checks on
// anything else are left as they are.
func TestCoversPlatform(t *testing.T) {
	p := mirrortest.SparsePlan("linux/arm64")
	fp, _ := plan.FlattenOne(p)
	other := digest.FromString("other")
	r := verify.Result{
		Signatures:   []verify.Check{{Subject: fp.Root.Desc.Digest}, {Subject: other, Covers: "image"}},
		Attestations: []verify.Check{{Subject: fp.Root.Desc.Digest}},
	}
	coversPlatform(&r, fp)
	if r.Signatures[0].Covers != "linux/arm64" || r.Attestations[0].Covers != "linux/arm64" || r.Signatures[1].Covers != "image" {
		t.Errorf("covers %q %q %q, want linux/arm64 on the manifest's checks only", r.Signatures[0].Covers, r.Attestations[0].Covers, r.Signatures[1].Covers)
	}
}

func TestTargetReference(t *testing.T) {
	d := digest.FromString("x")
	if got := engine.TargetReference("site/mirror/app", "1.0", d); got != "site/mirror/app:1.0" {
		t.Errorf("tagged: %q", got)
	}
	if got := engine.TargetReference("site/mirror/app", "", d); got != "site/mirror/app@"+d.String() {
		t.Errorf("untagged: %q", got)
	}
}
