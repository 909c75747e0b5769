package mirror

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"helm.sh/helm/v4/pkg/provenance"

	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/verify"
	"airlock.dev/airlock/vocab"
)

// pgpSigner is an OpenPGP key that signs charts' provenance, with its public keyring written to ring.
func pgpSigner(t *testing.T, dir, name string) (e *openpgp.Entity, ring string) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", strings.ToLower(name)+"@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := e.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	ring = filepath.Join(dir, strings.ToLower(name)+".gpg")
	if err := os.WriteFile(ring, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return e, ring
}

// chartPlan is a chart artifact as helm push stores it (config, .tgz, and the .prov signer made when
// signer is not nil), its blobs in src.
func chartPlan(t *testing.T, src *mirrortest.FakeSource, name, version string, signer *openpgp.Entity) *plan.ImagePlan {
	t.Helper()
	tgz := []byte("the chart " + name + " " + version)
	cfg := []byte(`{"name":"` + name + `","version":"` + version + `","apiVersion":"v2"}`)
	desc := func(mt string, b []byte) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mt, Digest: src.Add(b), Size: int64(len(b))}
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: desc(vocab.HelmConfigMediaType, cfg), Layers: []ocispec.Descriptor{desc(vocab.HelmContentMediaType, tgz)}}
	if signer != nil {
		prov, err := (&provenance.Signatory{Entity: signer}).ClearSign(tgz, name+"-"+version+".tgz", cfg)
		if err != nil {
			t.Fatal(err)
		}
		m.Layers = append(m.Layers, desc(vocab.HelmProvMediaType, []byte(prov)))
	}
	root := mirrortest.ManifestNode(t, src, "stable/"+name, ocispec.MediaTypeImageManifest, m, append([]ocispec.Descriptor{m.Config}, m.Layers...))
	return mirrortest.Plan(t, src, "charts.example.com/stable/"+name+":"+version, root)
}

// TestVerifyChartProvenance: with a keyring pinned at the site, verify and load --verify check every
// Helm chart's provenance against it: a chart signed by a key of the keyring passes, reported with its
// signer; a chart without a .prov, or signed by another key, fails, named, and load does not push it;
// an image is not a chart. Without a keyring nothing changes: all three pass on their cosign signatures.
func TestVerifyChartProvenance(t *testing.T) {
	ctx := context.Background()
	keys := t.TempDir()
	transfer, transferPub := stationKey(t, keys, "transfer")
	release, releasePub := stationKey(t, keys, "release")
	signer, ring := pgpSigner(t, keys, "Charts")
	stranger, _ := pgpSigner(t, keys, "Stranger")
	src := &mirrortest.FakeSource{Blobs: map[digest.Digest][]byte{}}
	plans := []*plan.ImagePlan{
		chartPlan(t, src, "app", "1.4.2", signer),
		chartPlan(t, src, "db", "0.3.0", nil),
		chartPlan(t, src, "cache", "2.0.0", stranger),
		mirrortest.Plan(t, src, "registry.example.com/team/api:2.0", mirrortest.ImageNode(t, src, "team/api", 300)),
	}
	for _, p := range plans {
		p.Referrers = append(p.Referrers, bundleSignature(t, src, p.Image.Repository, p.Root, release))
	}
	dir, _, _ := writeTestArchive(t, plans, nil, transfer)
	pinned := verify.Anchors{ArchiveKeys: []string{transferPub}, Keys: []string{releasePub}}

	results, _, err := VerifyTarget(ctx, dir, VerifyOptions{Anchors: pinned})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if !r.Passed || r.Provenance != nil {
			t.Errorf("no keyring: %s passed %v, provenance %+v; want passed, provenance not checked", r.Source, r.Passed, r.Provenance)
		}
	}

	withRing := pinned
	withRing.Keyring = ring
	results, trust, err := VerifyTarget(ctx, dir, VerifyOptions{Anchors: withRing})
	if err != nil {
		t.Fatal(err)
	}
	if trust.Keyring == nil || trust.Origin.Keyring == nil || trust.Origin.Keyring.File != ring {
		t.Errorf("trust %+v: want the keyring %s in it", trust.Origin, ring)
	}
	fpr := func(e *openpgp.Entity) string { return fmt.Sprintf("%X", e.PrimaryKey.Fingerprint) }
	if p := results[0].Provenance; !results[0].Passed || p == nil || !p.Valid || p.Chart != "app-1.4.2.tgz" || p.Signer != "Charts <charts@example.com>" || p.Key != fpr(signer) {
		t.Errorf("signed chart: %+v, provenance %+v", results[0], p)
	}
	wants := map[int]string{
		1: "chart db-0.3.0.tgz has no provenance: its artifact carries no provenance layer",
		2: "chart cache-2.0.0.tgz: provenance not signed by a key in the keyring " + ring + ": it is signed by key " + fpr(stranger),
	}
	for i, want := range wants {
		r := results[i]
		if r.Passed || r.Provenance == nil || r.Provenance.Valid || len(r.Failures) != 1 || !strings.HasPrefix(r.Failures[0], want) {
			t.Errorf("%s: passed %v, failures %q; want failed with %q", r.Source, r.Passed, r.Failures, want)
		}
	}
	if r := results[3]; !r.Passed || r.Provenance != nil {
		t.Errorf("image: %+v, want passed, no provenance", r)
	}

	host, regs := startKeptRegistry(t)
	res, _, err := loadOnRegistry(t, dir, host, regs, LoadOptions{Anchors: withRing})
	if err != nil && !strings.Contains(err.Error(), "refused") {
		t.Fatal(err)
	}
	if res == nil || len(res.Refused) != 2 || !strings.Contains(res.Refused[0], "charts.example.com/stable/db:0.3.0") || !strings.Contains(res.Refused[0], wants[1]) ||
		!strings.Contains(res.Refused[1], "charts.example.com/stable/cache:2.0.0") || !strings.Contains(res.Refused[1], wants[2]) {
		t.Fatalf("load: refused %q; want db (no provenance) and cache (another key)", res.Refused)
	}
	if res.Report == nil || len(res.Report.Images) != 2 {
		t.Errorf("load: report %+v; want app and api loaded", res.Report)
	}
}
