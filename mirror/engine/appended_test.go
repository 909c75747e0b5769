package engine_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
)

// withLayer returns the manifest n's bytes with one more layer appended, as cosign appends a
// signature to the manifest at a .sig tag, and puts it in store under tag.
func withLayer(t *testing.T, n *plan.Node, payload string) (digest.Digest, []byte) {
	t.Helper()
	var m ocispec.Manifest
	if err := json.Unmarshal(n.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: "application/vnd.dev.cosign.simplesigning.v1+json", Digest: digest.FromString(payload), Size: int64(len(payload)),
		Annotations: map[string]string{"dev.cosignproject.cosign/signature": "c2l0ZQ=="}})
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return digest.FromBytes(b), b
}

// TestCosignTagsGrowAndAreKept: a cosign .sig tag on the target whose manifest holds the planned
// signature manifest's layers and one more (a signature appended there since, the site's) is no tag
// move: it is left as it is, the planned manifest still pushed and read back by its digest, and a run
// with --tag-moves=refuse passes. The other way round, a planned manifest that holds the tag's layers
// and more is written, and reported as no move either. An unrelated manifest at the tag is a move.
func TestCosignTagsGrowAndAreKept(t *testing.T) {
	ctx := context.Background()
	for _, refuse := range []bool{false, true} {
		_, plans := mirrortest.SamplePlans(t)
		app := plans[0]
		sig := app.Referrers[1] // the cosign-tagged signature of the amd64 manifest
		tag := sig.Referrer.Tag
		tgt := mirrortest.NewFakeTarget()
		st, err := tgt.Store(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		store := st.(*mirrortest.FakeStore)
		grown, gb := withLayer(t, sig, "site signature")
		store.Content[grown], store.Tags[tag] = gb, grown

		rep, err := engine.Copy(ctx, plans[:1], tgt, engine.CopyOptions{Retry: mirrortest.Retry, Preflight: true, RefuseTagMoves: refuse})
		if err != nil {
			t.Fatalf("refuse %v: %v", refuse, err)
		}
		if ir := rep.Images[0]; ir.Status != "pushed" || len(ir.ReferrerTagsMoved) != 0 {
			t.Errorf("refuse %v: status %s, moved %+v; want pushed and no move", refuse, ir.Status, ir.ReferrerTagsMoved)
		}
		if store.Tags[tag] != grown {
			t.Errorf("refuse %v: the tag names %s, want the grown manifest %s kept", refuse, store.Tags[tag], grown)
		}
		if _, ok := store.Content[sig.Desc.Digest]; !ok {
			t.Errorf("refuse %v: the planned signature manifest was not pushed by its digest", refuse)
		}
	}

	// Ours grows what the tag holds: written, not a move.
	_, plans := mirrortest.SamplePlans(t)
	app := plans[0]
	sig := app.Referrers[1]
	tgt := mirrortest.NewFakeTarget()
	st, _ := tgt.Store(ctx, app)
	store := st.(*mirrortest.FakeStore)
	store.Content[sig.Desc.Digest], store.Tags[sig.Referrer.Tag] = sig.Manifest, sig.Desc.Digest
	grown, gb := withLayer(t, sig, "site signature")
	site := &plan.Node{Desc: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: grown, Size: int64(len(gb))}, Manifest: gb, Repository: sig.Repository,
		Blobs: sig.Blobs, Referrer: sig.Referrer}
	app.Referrers[1] = site
	rep, err := engine.Copy(ctx, plans[:1], tgt, engine.CopyOptions{Retry: mirrortest.Retry, Preflight: true, RefuseTagMoves: true})
	if err != nil {
		t.Fatal(err)
	}
	if ir := rep.Images[0]; ir.Status != "pushed" || len(ir.ReferrerTagsMoved) != 0 || store.Tags[sig.Referrer.Tag] != grown {
		t.Errorf("grown: status %s, moved %+v, tag %s; want pushed, no move, the tag at %s", ir.Status, ir.ReferrerTagsMoved, store.Tags[sig.Referrer.Tag], grown)
	}

	// Unrelated: a move, refused.
	_, plans = mirrortest.SamplePlans(t)
	tgt = mirrortest.NewFakeTarget()
	st, _ = tgt.Store(ctx, plans[0])
	store = st.(*mirrortest.FakeStore)
	other := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"x","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}]}`)
	od := digest.FromBytes(other)
	tag := plans[0].Referrers[1].Referrer.Tag
	store.Content[od], store.Tags[tag] = other, od
	rep, _ = engine.Copy(ctx, plans[:1], tgt, engine.CopyOptions{Retry: mirrortest.Retry, Preflight: true, RefuseTagMoves: true})
	if ir := rep.Images[0]; ir.Status != "failed" || len(ir.ReferrerTagsMoved) != 1 || store.Tags[tag] != od {
		t.Errorf("unrelated: status %s, moved %+v; want failed, the move refused, the tag left", ir.Status, ir.ReferrerTagsMoved)
	}

	// The same layers in another manifest (an annotation added): neither holds more than the other,
	// so nothing was appended: a move, refused (appended's len(a) > len(b), engine_images.go:194).
	_, plans = mirrortest.SamplePlans(t)
	tgt = mirrortest.NewFakeTarget()
	st, _ = tgt.Store(ctx, plans[0])
	store = st.(*mirrortest.FakeStore)
	sig = plans[0].Referrers[1]
	var m ocispec.Manifest
	if err := json.Unmarshal(sig.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	m.Annotations = map[string]string{"another": "manifest"}
	same, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	sd := digest.FromBytes(same)
	store.Content[sd], store.Tags[sig.Referrer.Tag] = same, sd
	rep, _ = engine.Copy(ctx, plans[:1], tgt, engine.CopyOptions{Retry: mirrortest.Retry, Preflight: true, RefuseTagMoves: true})
	if ir := rep.Images[0]; ir.Status != "failed" || len(ir.ReferrerTagsMoved) != 1 || store.Tags[sig.Referrer.Tag] != sd {
		t.Errorf("same layers: status %s, moved %+v; want failed, the move refused, the tag left", ir.Status, ir.ReferrerTagsMoved)
	}
}
