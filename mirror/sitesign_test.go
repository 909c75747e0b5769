package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/verify"
	"airlock.dev/airlock/vocab"
)

// sigLayers reads the manifest at the cosign .sig tag of d in store and returns its digest and layers.
func sigLayers(t *testing.T, tgt *mirrortest.FakeTarget, store string, d string) (string, []ocispec.Descriptor) {
	t.Helper()
	return sigLayersAt(t, tgt, store, "sha256-"+d+".sig")
}

func sigLayersAt(t *testing.T, tgt *mirrortest.FakeTarget, store, tag string) (string, []ocispec.Descriptor) {
	t.Helper()
	s := tgt.Stores[store]
	md, ok := s.Tags[tag]
	if !ok {
		return "", nil
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(s.Content[md], &m); err != nil {
		t.Fatal(err)
	}
	return md.String(), m.Layers
}

// TestLoadSignsVerifiedImages: load --sign-key signs, with the site key, every manifest of each image
// that passed verification (the index and both platform manifests), at its cosign .sig tag, naming
// the site repository; an upstream signature at such a tag keeps its layers, the site's after them,
// and is still pushed by its digest. The image that failed verification is neither loaded nor
// signed. A second load finds every signature present and writes none; a plain load keeps them. With
// nothing pinned, --sign-key refuses before anything is written.
func TestLoadSignsVerifiedImages(t *testing.T) {
	keys := t.TempDir()
	release, releasePub := stationKey(t, keys, "release")
	site, _ := stationKey(t, keys, "site")
	src, plans := mirrortest.SamplePlans(t)
	app := plans[0]
	app.Referrers = append(app.Referrers, bundleSignature(t, src, "team/app", app.Root, release))
	upstream := app.Referrers[1] // the amd64 manifest's cosign .sig
	dir, _, catDesc := writeTestArchive(t, plans, nil)
	o := LoadOptions{Anchors: verify.Anchors{Keys: []string{releasePub}}, SignKey: site}

	tgt := mirrortest.NewFakeTarget()
	o.Publish.Target, o.Publish.To, o.Publish.Retry = tgt, loadTo, mirrortest.Retry
	res, err := Load(context.Background(), dir, o)
	if err != nil {
		t.Fatal(err)
	}
	manifests := (&plan.ImagePlan{Root: app.Root}).Nodes()
	if len(res.SiteSigned) != len(manifests)+2 || res.SiteSigned[len(manifests)].Kind != "att" || res.SiteSigned[len(manifests)+1].Kind != "bundle" {
		t.Fatalf("site-signed %+v, want the %d manifests of %s and its import attestation, legacy and bundle", res.SiteSigned, len(manifests), app.Source)
	}
	checkImportAttestation(t, tgt, site, app, "site/team/app", catDesc.Digest.String())
	checkImportBundle(t, tgt, site, app, "site/team/app", res.SiteSigned[len(manifests)+1].Tag)
	first := map[string]string{}
	for _, n := range manifests {
		d := n.Desc.Digest
		at, layers := sigLayers(t, tgt, "site/team/app", d.Encoded())
		if len(layers) == 0 {
			t.Fatalf("%s: no .sig on the site", d)
		}
		first[d.Encoded()] = at
		last := layers[len(layers)-1]
		payload := verify.SimpleSigningPayload("site/team/app", d)
		if !site.SignedPayload(payload, last.Annotations["dev.cosignproject.cosign/signature"]) || string(tgt.Stores["site/team/app"].Content[last.Digest]) != string(payload) {
			t.Errorf("%s: the last layer is not the site's signature of site/team/app@%s", d, d)
		}
		if d == upstream.Referrer.Subject {
			var um ocispec.Manifest
			json.Unmarshal(upstream.Manifest, &um)
			if len(layers) != len(um.Layers)+1 || layers[0].Digest != um.Layers[0].Digest {
				t.Errorf("%s: layers %+v, want the upstream signature's then the site's", d, layers)
			}
			if _, ok := tgt.Stores["site/team/app"].Content[upstream.Desc.Digest]; !ok {
				t.Error("the upstream signature manifest was not pushed by its digest")
			}
		}
	}
	if tgt.Stores["site/team/api"] != nil {
		t.Error("the image that failed verification was loaded")
	}

	first["att"], _ = sigLayersAt(t, tgt, "site/team/app", "sha256-"+app.Root.Desc.Digest.Encoded()+".att")
	// Each cosign tag is read once before it is written (the site's signing reads it; the engine's
	// preflight takes that answer) and once after (read back).
	for tag, n := range tgt.Stores["site/team/app"].TagReads {
		if strings.HasPrefix(tag, "sha256-") && n != 2 {
			t.Errorf("tag %s read %d times, want twice: before and after it is written", tag, n)
		}
	}

	// Again: every signature present, none written; then a plain load: kept.
	for _, again := range []LoadOptions{o, {Anchors: o.Anchors, Publish: o.Publish}} {
		res, err := Load(context.Background(), dir, again)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range res.SiteSigned {
			if s.Action != "present" {
				t.Errorf("again: %+v, want present", s)
			}
		}
		for _, ir := range res.Report.Images {
			if len(ir.ReferrerTagsMoved) > 0 {
				t.Errorf("again: tags moved %+v", ir.ReferrerTagsMoved)
			}
		}
		for d, at := range first {
			now, _ := sigLayers(t, tgt, "site/team/app", d)
			if d == "att" {
				now, _ = sigLayersAt(t, tgt, "site/team/app", "sha256-"+app.Root.Desc.Digest.Encoded()+".att")
			}
			if now != at {
				t.Errorf("again: the .sig of %s moved from %s to %s", d, at, now)
			}
		}
	}

	empty := mirrortest.NewFakeTarget()
	_, err = Load(context.Background(), dir, LoadOptions{SignKey: site, Publish: PublishOptions{To: o.Publish.To, Retry: o.Publish.Retry, Target: empty}})
	if !errors.Is(err, ErrSignUnverified) || len(empty.Events) != 0 {
		t.Errorf("nothing pinned: %v, %d writes; want ErrSignUnverified and nothing written", err, len(empty.Events))
	}
}

// checkImportBundle: the store lists, as the one import bundle referrer of the root (beside the
// upstream's), the manifest at ref
// (REPO@DIGEST), as cosign v3 writes one (artifactType and layer a Sigstore bundle, an empty config,
// the root as subject, the bundle annotations), whose bundle the site key signed over the same import
// statement as the legacy .att's.
func checkImportBundle(t *testing.T, tgt *mirrortest.FakeTarget, site *verify.SigningKey, ip *plan.ImagePlan, repo, ref string) {
	t.Helper()
	st := tgt.Stores[repo]
	var listed []ocispec.Descriptor
	st.Referrers(context.Background(), ip.Root.Desc, vocab.BundleMediaType, func(p []ocispec.Descriptor) error {
		for _, d := range p {
			if d.Annotations[vocab.AnnotationBundlePredicateType] == vocab.ImportPredicateType {
				listed = append(listed, d)
			}
		}
		return nil
	})
	if len(listed) != 1 || repo+"@"+listed[0].Digest.String() != ref {
		t.Fatalf("import bundle referrers of the root %+v, want one, %s", listed, ref)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(st.Content[listed[0].Digest], &m); err != nil {
		t.Fatal(err)
	}
	if m.ArtifactType != vocab.BundleMediaType || m.Config.MediaType != ocispec.MediaTypeEmptyJSON || string(st.Content[m.Config.Digest]) != "{}" ||
		len(m.Layers) != 1 || m.Layers[0].MediaType != vocab.BundleMediaType || m.Subject == nil || m.Subject.Digest != ip.Root.Desc.Digest ||
		m.Annotations[vocab.AnnotationBundlePredicateType] != vocab.ImportPredicateType || m.Annotations[vocab.AnnotationBundleContent] != "dsse-envelope" {
		t.Errorf("bundle referrer %s", st.Content[listed[0].Digest])
	}
	_, layers := sigLayersAt(t, tgt, repo, "sha256-"+ip.Root.Desc.Digest.Encoded()+".att")
	legacy := site.SignedStatement(st.Content[layers[len(layers)-1].Digest])
	if got := site.SignedBundleStatement(st.Content[m.Layers[0].Digest]); got == nil || string(got) != string(legacy) {
		t.Errorf("the bundle's statement %s\nwant the .att's %s", got, legacy)
	}
}

// checkImportAttestation: the root's .att tag holds, last, a DSSE envelope the site key signed over an
// in-toto statement of the import predicate type whose subject is the root in repo, and whose
// predicate records the source, the target with its tag, both platforms, the archive's catalog, the
// trust, the rule and the one signer that verified (not the signatures that did not), and the time.
func checkImportAttestation(t *testing.T, tgt *mirrortest.FakeTarget, site *verify.SigningKey, ip *plan.ImagePlan, repo, catalog string) {
	t.Helper()
	_, layers := sigLayersAt(t, tgt, repo, "sha256-"+ip.Root.Desc.Digest.Encoded()+".att")
	if len(layers) == 0 {
		t.Fatal("no .att on the site")
	}
	last := layers[len(layers)-1]
	if last.MediaType != "application/vnd.dsse.envelope.v1+json" || last.Annotations["predicateType"] != vocab.ImportPredicateType {
		t.Errorf("the .att layer %+v", last)
	}
	st := site.SignedStatement(tgt.Stores[repo].Content[last.Digest])
	var s struct {
		Type    string `json:"_type"`
		Subject []struct {
			Name   string
			Digest map[string]string
		}
		PredicateType string
		Predicate     struct {
			Source       struct{ Reference, Digest, NamedBy string }
			Target       struct{ Reference string }
			Platforms    []struct{ Platform, Digest string }
			Archive      struct{ Catalog string }
			Verification struct {
				Trust, Origin, Rule string
				Signers             []string
			}
			Importer struct{ Name string }
			Time     time.Time
		}
	}
	if st == nil || json.Unmarshal(st, &s) != nil {
		t.Fatalf("the envelope is not the site's: %s", tgt.Stores[repo].Content[last.Digest])
	}
	p := s.Predicate
	var platforms []string // the sample's index names no platforms: the digests alone
	for _, pl := range p.Platforms {
		platforms = append(platforms, pl.Digest)
	}
	wantPlatforms := []string{ip.Root.Children[0].Desc.Digest.String(), ip.Root.Children[1].Desc.Digest.String()}
	if s.Type != "https://in-toto.io/Statement/v1" || len(s.Subject) != 1 || s.Subject[0].Name != repo || s.Subject[0].Digest["sha256"] != ip.Root.Desc.Digest.Encoded() ||
		s.PredicateType != vocab.ImportPredicateType || p.Source.Reference != ip.Source || p.Source.NamedBy != "a catalog no pinned archive key signed" || p.Source.Digest != ip.Root.Desc.Digest.String() ||
		p.Target.Reference != repo+":"+ip.Image.Tag || !slices.Equal(platforms, wantPlatforms) || p.Archive.Catalog != catalog ||
		!strings.Contains(p.Verification.Trust, "release.pub") || p.Verification.Origin != "site" || p.Verification.Rule == "" ||
		!slices.Equal(p.Verification.Signers, []string{"release.pub"}) || p.Importer.Name != "airlock" || time.Since(p.Time) > time.Hour {
		t.Errorf("statement %s", st)
	}
}

// TestImportAttestationNamesTheArchiveSigner: loaded from an archive whose catalog a pinned archive
// key signed, the import attestation says so (source.namedBy) and names that key and its hint
// (archive.signedBy); an unsigned catalog's names none (TestLoadSignsVerifiedImages).
func TestImportAttestationNamesTheArchiveSigner(t *testing.T) {
	keys := t.TempDir()
	release, releasePub := stationKey(t, keys, "release")
	transfer, transferPub := stationKey(t, keys, "transfer")
	site, _ := stationKey(t, keys, "site")
	src, plans := mirrortest.SamplePlans(t)
	app := plans[0]
	app.Referrers = append(app.Referrers, bundleSignature(t, src, "team/app", app.Root, release))
	dir, _, _ := writeTestArchive(t, plans, nil, transfer)
	tgt := mirrortest.NewFakeTarget()
	o := LoadOptions{Anchors: verify.Anchors{ArchiveKeys: []string{transferPub}, Keys: []string{releasePub}}, SignKey: site}
	o.Publish.Target, o.Publish.To, o.Publish.Retry = tgt, loadTo, mirrortest.Retry
	if _, err := Load(context.Background(), dir, o); err != nil {
		t.Fatal(err)
	}
	_, layers := sigLayersAt(t, tgt, "site/team/app", "sha256-"+app.Root.Desc.Digest.Encoded()+".att")
	if len(layers) == 0 {
		t.Fatal("no .att on the site")
	}
	var st struct {
		Predicate struct {
			Source  struct{ NamedBy string }
			Archive struct {
				SignedBy []struct{ Key, KeyHint string }
			}
		}
	}
	b := site.SignedStatement(tgt.Stores["site/team/app"].Content[layers[len(layers)-1].Digest])
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	p := st.Predicate
	if p.Source.NamedBy != "a catalog signed by a pinned archive key" || len(p.Archive.SignedBy) != 1 || p.Archive.SignedBy[0].Key != "transfer.pub" || p.Archive.SignedBy[0].KeyHint != transfer.Hint || transfer.Hint == "" {
		t.Errorf("statement %s, want namedBy a signed catalog and signedBy transfer.pub (hint %s)", b, transfer.Hint)
	}
}

// TestSiteSignedListsWhatLanded: load --sign-key reports the site's signatures of the images that
// landed only: an image whose push failed (a blob the target refuses) lists none, though its
// signatures were made before the push (sitesign.go:143, signedLanded).
func TestSiteSignedListsWhatLanded(t *testing.T) {
	keys := t.TempDir()
	release, releasePub := stationKey(t, keys, "release")
	site, _ := stationKey(t, keys, "site")
	src, plans := mirrortest.SamplePlans(t)
	app := plans[0]
	app.Referrers = append(app.Referrers, bundleSignature(t, src, "team/app", app.Root, release))
	dir, _, _ := writeTestArchive(t, plans, nil)
	tgt := mirrortest.NewFakeTarget()
	tgt.FailBlob = app.Root.Children[0].Blobs[1].Digest // a layer of the amd64 manifest
	o := LoadOptions{Anchors: verify.Anchors{Keys: []string{releasePub}}, SignKey: site}
	o.Publish.Target, o.Publish.To, o.Publish.Retry = tgt, loadTo, mirrortest.Retry
	res, _ := Load(context.Background(), dir, o)
	if res == nil || res.Report == nil {
		t.Fatalf("no report: %+v", res)
	}
	if len(res.SiteSigned) != 0 {
		t.Errorf("site-signed %+v, want none: the one verified image did not land", res.SiteSigned)
	}
}
