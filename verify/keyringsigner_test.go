package verify

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/referrers"
	"airlock.dev/airlock/verify/internal/sigtest"
	"airlock.dev/airlock/vocab"
)

// keyringSite is a directory holding keys/charts.gpg (the chart signer's keyring, binary),
// keys/other.asc (another key's, armored), keys/both.asc (both keys) and keys/bad.gpg (not a keyring).
type keyringSite struct {
	dir           string
	signer, other *pgpKey
}

func newKeyringSite(t *testing.T) *keyringSite {
	t.Helper()
	s := &keyringSite{dir: t.TempDir(), signer: newPGPKey(t, "Chart Signer", "charts@example.com"), other: newPGPKey(t, "Someone Else", "else@example.com")}
	if err := os.MkdirAll(filepath.Join(s.dir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"charts.gpg": s.signer.binary, "other.asc": s.other.armored, "bad.gpg": []byte("not a keyring"),
		"both.asc": append(append([]byte{}, s.other.armored...), s.signer.armored...),
	} {
		if err := os.WriteFile(s.path(name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s *keyringSite) path(name string) string { return filepath.Join(s.dir, "keys", name) }

// policy writes a policy of one rule for every repository, with the given signers lines and require,
// and loads it.
func (s *keyringSite) policy(t *testing.T, require string, signers ...string) *Policy {
	t.Helper()
	body := polHeader + "rules:\n  - name: charts\n    match: ['**']\n    require: " + require + "\n    signers:\n"
	for _, l := range signers {
		body += "      - " + l + "\n"
	}
	file := filepath.Join(s.dir, "policy.yaml")
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	pol, err := LoadPolicy(file)
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

func TestParsePolicyKeyringSigner(t *testing.T) {
	s := newKeyringSite(t)
	pol := s.policy(t, "all", "keyring: keys/charts.gpg", "keyring: "+s.path("other.asc"), "key: keys/release.pub")
	got := pol.Rules[0].Signers
	want := []Signer{
		{Name: "charts.gpg", Keyring: s.path("charts.gpg")},
		{Name: "other.asc", Keyring: s.path("other.asc")},
		{Name: "release.pub", Key: s.path("release.pub")},
	}
	if len(got) != 3 || got[0].ring == nil || got[1].ring == nil || got[2].ring != nil {
		t.Fatalf("signers %+v: want two keyrings read and a key", got)
	}
	if k := got[0].ring.Keys(); len(k) != 1 || k[0].Fingerprint != s.signer.fingerprint() || got[0].ring.Name != s.path("charts.gpg") {
		t.Errorf("binary keyring: %s %+v", got[0].ring.Name, k)
	}
	if k := got[1].ring.Keys(); len(k) != 1 || k[0].Fingerprint != s.other.fingerprint() {
		t.Errorf("armored keyring: %+v", k)
	}
	for i := range got {
		got[i].ring = nil
	}
	if !reflect.DeepEqual(got, want) || pol.Rules[0].Require != (Requirement{All: true, Count: 3}) {
		t.Errorf("signers %+v, require %+v;\nwant %+v, all of 3", got, pol.Rules[0].Require, want)
	}
	if !got[0].IsKeyring() || got[0].Keyless() || got[2].IsKeyring() || got[2].Keyless() {
		t.Error("IsKeyring/Keyless wrong for a keyring or a key signer")
	}
	if n := s.policy(t, "2", "keyring: keys/charts.gpg", "key: keys/release.pub").Rules[0].Require; n.Count != 2 {
		t.Errorf("require 2 of a keyring and a key: %+v", n)
	}

	// An archive's own policy: the keyring is not read (the archive carries none).
	data := []byte(polHeader + "rules:\n  - match: ['**']\n    signers:\n      - keyring: keys/missing.gpg\n")
	ap, err := parsePolicy("/archive/policy.yaml", data, nil)
	if err != nil || len(ap.Rules[0].Signers) != 1 || ap.Rules[0].Signers[0] != (Signer{Name: "missing.gpg", Keyring: "/archive/keys/missing.gpg"}) {
		t.Errorf("archive policy: %+v, %v", ap, err)
	}
	// Keys a policy names are trusted too; its keyrings are not keys.
	writeTestKey(t, s.path("release.pub"))
	tr, err := TrustFromFiles(nil, "", filepath.Join(s.dir, "policy.yaml"))
	if err != nil || len(tr.Keys) != 1 || tr.Keys[0].Name != "release.pub" {
		t.Errorf("TrustFromFiles: %+v, %v; want the key release.pub alone", tr, err)
	}
}

func writeTestKey(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, sigtest.NewKey(t).PublicPEM, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestParsePolicyKeyringSignerErrors(t *testing.T) {
	s := newKeyringSite(t)
	file := filepath.Join(s.dir, "policy.yaml")
	const head = polHeader + "rules:\n  - match: [a.io/b]\n    signers:\n" // the first signer is on line 6
	for _, tc := range []struct{ name, signers, want string }{
		{"missing file", "      - keyring: keys/missing.gpg\n",
			file + ":6: rules[0].signers[0].keyring: cannot read the keyring: open " + s.path("missing.gpg") + ": no such file or directory"},
		{"not a keyring", "      - keyring: keys/bad.gpg\n",
			file + ":6: rules[0].signers[0].keyring: keyring " + s.path("bad.gpg") + " is unreadable: "},
		{"empty path", "      - keyring: ''\n",
			file + ":6: rules[0].signers[0].keyring: empty path; expected an OpenPGP keyring file such as keys/charts.gpg (gpg --export KEYID > charts.gpg)"},
		{"not a string", "      - keyring: 12\n", file + ":6: rules[0].signers[0].keyring: must be a string, got integer 12"},
		{"key and keyring", "      - key: k.pub\n        keyring: keys/charts.gpg\n",
			file + ":6: rules[0].signers[0]: has both key and keyring; a signer is one or the other, list them as two signers"},
		{"keyless and keyring", "      - keyring: keys/charts.gpg\n        keyless: {issuer: i, subject: s}\n",
			file + ":6: rules[0].signers[0]: has both keyless and keyring; a signer is one or the other"},
		{"all three", "      - keyring: keys/charts.gpg\n        key: k.pub\n        keyless: {issuer: i, subject: s}\n",
			file + ":6: rules[0].signers[0]: has key, keyless and keyring; a signer is one of them, list them as separate signers"},
		{"requireTlog", "      - keyring: keys/charts.gpg\n        requireTlog: true\n",
			file + ":7: rules[0].signers[0].requireTlog: a keyring signer is satisfied by a Helm chart's provenance (.prov), which has no transparency log entry: leave requireTlog out"},
		{"requireTlog false", "      - keyring: keys/charts.gpg\n        requireTlog: false\n",
			file + ":7: rules[0].signers[0].requireTlog: a keyring signer is satisfied"},
		{"requireTlog not a bool", "      - keyring: keys/charts.gpg\n        requireTlog: yes\n",
			file + `:7: rules[0].signers[0].requireTlog: must be true or false, got string "yes"`},
		{"twice", "      - keyring: keys/charts.gpg\n      - keyring: ./keys/charts.gpg\n",
			file + ":7: rules[0].signers[1]: same signer as rules[0].signers[0] (line 6): charts.gpg"},
		{"too many required", "      - keyring: keys/charts.gpg\n    require: 2\n",
			file + ":7: rules[0].require: requires 2 signers but the rule lists only 1"},
	} {
		if err := os.WriteFile(file, []byte(head+tc.signers), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadPolicy(file)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s:\n got  %v\n want %s...", tc.name, err, tc.want)
		}
	}
	if err := os.WriteFile(file, []byte(polHeader+"rules:\n  - match: [a.io/b]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPolicy(file); err == nil || !strings.Contains(err.Error(), "rules[0].signers: missing; list at least one signer (key:, keyless: or keyring:)") {
		t.Errorf("no signers: %v", err)
	}
}

// chartImage is the chart app 1.4.2 (content tgz, provenance prov unless nil) as an Image to verify,
// with its manifest.
func chartImage(t *testing.T, tgz, prov []byte) Image {
	t.Helper()
	m, blobs := chartArtifact(t, chartConfig, tgz, prov)
	return Image{Source: "charts.example.com/stable/app:1.4.2", Repository: "charts.example.com/stable/app",
		Digest: digest.FromBytes(m), Platforms: map[digest.Digest]string{}, Fetch: blobs, Manifest: m}
}

// cosignSign attaches to img a cosign bundle signing it with k.
func cosignSign(t *testing.T, img *Image, k *sigtest.Key) {
	t.Helper()
	m, layer := sigtest.Referrer(t, sigtest.KeyBundle(t, k, signStmt(img.Digest)), archive.CosignSignPredicateType,
		ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: img.Digest, Size: int64(len(img.Manifest))})
	img.Fetch.(memBlobs)[digest.FromBytes(layer)] = layer
	img.Referrers = append(img.Referrers, Referrer{Digest: digest.FromBytes(m), Subject: img.Digest, Kind: referrers.Kind(m), Manifest: m})
}

func TestKeyringSigner(t *testing.T) {
	ctx := context.Background()
	s := newKeyringSite(t)
	key := sigtest.NewKey(t)
	writeTestKey(t, s.path("release.pub"))
	prov := s.signer.sign(t, chartTgz, chartFile)
	provDigest := digest.FromBytes(prov)
	signed := chartImage(t, chartTgz, prov)
	verifyWith := func(img Image, require string, signers ...string) Result {
		tr := keyTrust(t, key)
		tr.Policy = s.policy(t, require, signers...)
		return tr.Verify(ctx, img)
	}

	res := verifyWith(signed, "any", "keyring: keys/charts.gpg")
	wantCheck := Check{Referrer: provDigest, Subject: signed.Digest, Covers: "image", Format: FormatHelmProvenance, Signer: "charts.gpg",
		Valid: true, Status: StatusValid, Key: "Chart Signer (test) <charts@example.com> (" + s.signer.fingerprint() + ")"}
	wantProv := Provenance{Chart: chartFile, Layer: provDigest, Signer: "Chart Signer (test) <charts@example.com>", Key: s.signer.fingerprint(), Valid: true}
	if !res.Passed || res.Rule != "charts" || len(res.Failures) != 0 || len(res.Signatures) != 1 || res.Signatures[0] != wantCheck || res.Provenance == nil || *res.Provenance != wantProv {
		t.Errorf("chart with its provenance, keyring signer: %+v\n want passed, %+v, %+v", res, wantCheck, wantProv)
	}
	js, _ := json.Marshal(res)
	if !strings.Contains(string(js), `"format":"helm-prov","signer":"charts.gpg","valid":true,"status":"valid","tlog":false,"key":"Chart Signer (test) \u003ccharts@example.com\u003e (`+s.signer.fingerprint()+`)"`) {
		t.Errorf("JSON: %s", js)
	}

	// Two keyrings holding the signer's key are two signers satisfied; the first says who signed.
	res = verifyWith(signed, "all", "keyring: keys/both.asc", "keyring: keys/charts.gpg")
	if !res.Passed || len(res.Signatures) != 2 || res.Signatures[0].Signer != "both.asc" || res.Signatures[1].Signer != "charts.gpg" || res.Provenance == nil || res.Provenance.Key != s.signer.fingerprint() {
		t.Errorf("two keyrings with the key: %+v", res)
	}

	otherWhy := "keyring signer other.asc: chart app-1.4.2.tgz: provenance not signed by a key in the keyring " + s.path("other.asc") + ": it is signed by key " + s.signer.fingerprint()
	res = verifyWith(signed, "any", "keyring: keys/other.asc")
	if res.Passed || len(res.Failures) != 1 || !strings.HasPrefix(res.Failures[0], "signatures: any of [other.asc] required; valid signatures over the image from: none; "+otherWhy) ||
		len(res.Signatures) != 1 || res.Signatures[0].Status != StatusUnknownSigner || res.Signatures[0].Valid || !strings.HasPrefix(res.Signatures[0].Reason, otherWhy) ||
		res.Signatures[0].Referrer != provDigest || res.Provenance != nil {
		t.Errorf("another keyring: %+v\n want failed: %s", res, otherWhy)
	}
	// Only the keyring signer that is not satisfied is named.
	res = verifyWith(signed, "all", "keyring: keys/charts.gpg", "keyring: keys/other.asc")
	if res.Passed || len(res.Failures) != 1 || !strings.HasPrefix(res.Failures[0], "signatures: all of [charts.gpg, other.asc] required; valid signatures over the image from: charts.gpg; "+otherWhy) || res.Provenance == nil {
		t.Errorf("all of the signer's and another keyring: %+v", res)
	}

	// A chart that is not the one signed: the provenance claims a key of the keyring and does not
	// hold, which fails the chart even when a cosign signature meets the rule.
	tampered := chartImage(t, []byte("another chart, under the same name"), prov)
	cosignSign(t, &tampered, key)
	res = verifyWith(tampered, "any", "key: keys/release.pub", "keyring: keys/charts.gpg")
	sumWhy := "keyring signer charts.gpg: chart app-1.4.2.tgz: sum mismatch: the provenance signs " + sha(chartTgz)
	if res.Passed || len(res.Failures) != 1 || !strings.HasPrefix(res.Failures[0], "invalid signature on image (referrer "+provDigest.Encoded()[:12]+"): "+sumWhy) ||
		len(res.Signatures) != 2 || !res.Signatures[0].Valid || res.Signatures[1].Status != StatusInvalid {
		t.Errorf("tampered chart: %+v\n want failed: %s", res, sumWhy)
	}

	// A container image: a keyring signer is never satisfied; its cosign signature counts for a key.
	f := newFixture()
	f.img.Manifest = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	notChart := "keyring signer charts.gpg: not a Helm chart (it has no config: an image index, not " + vocab.HelmConfigMediaType + "): a keyring vouches for Helm charts only, by their provenance"
	res = verifyWith(f.img, "any", "keyring: keys/charts.gpg")
	if res.Passed || !reflect.DeepEqual(res.Failures, []string{"no signature found; " + notChart}) || res.Provenance != nil {
		t.Errorf("an image index: %+v\n want failed: %s", res, notChart)
	}
	image := chartImage(t, chartTgz, prov)
	image.Manifest = []byte(strings.Replace(string(image.Manifest), vocab.HelmConfigMediaType, ocispec.MediaTypeImageConfig, 1))
	cosignSign(t, &image, key)
	res = verifyWith(image, "any", "keyring: keys/charts.gpg")
	want := "signatures: any of [charts.gpg] required; valid signatures over the image from: none; keyring signer charts.gpg: not a Helm chart (its config is " + ocispec.MediaTypeImageConfig + ", not " + vocab.HelmConfigMediaType + ")"
	if res.Passed || len(res.Failures) != 1 || !strings.HasPrefix(res.Failures[0], want) || len(res.Signatures) != 1 ||
		res.Signatures[0].Status != StatusUnknownSigner || res.Signatures[0].Reason != "the rule has no key or keyless signer" {
		t.Errorf("a cosign-signed image, keyring signer: %+v\n want failed: %s", res, want)
	}
	if res = verifyWith(image, "any", "key: keys/release.pub", "keyring: keys/charts.gpg"); !res.Passed || res.Signatures[0].Signer != "release.pub" {
		t.Errorf("a cosign-signed image, key or keyring: %+v", res)
	}

	// A chart without provenance; a cosign key and a keyring both required.
	bare := chartImage(t, chartTgz, nil)
	noProv := "keyring signer charts.gpg: chart app-1.4.2.tgz has no provenance: its artifact carries no provenance layer (" + vocab.HelmProvMediaType + "); have its publisher sign it"
	res = verifyWith(bare, "any", "keyring: keys/charts.gpg")
	if res.Passed || len(res.Failures) != 1 || !strings.HasPrefix(res.Failures[0], "no signature found; "+noProv) {
		t.Errorf("chart without provenance: %+v\n want failed: %s", res, noProv)
	}
	cosignSign(t, &bare, key)
	res = verifyWith(bare, "all", "key: keys/release.pub", "keyring: keys/charts.gpg")
	if res.Passed || len(res.Failures) != 1 || !strings.HasPrefix(res.Failures[0], "signatures: all of [release.pub, charts.gpg] required; valid signatures over the image from: release.pub; "+noProv) {
		t.Errorf("require all, cosign only: %+v", res)
	}
	if res = verifyWith(bare, "any", "key: keys/release.pub", "keyring: keys/charts.gpg"); !res.Passed || len(res.Failures) != 0 {
		t.Errorf("require any, cosign only: %+v", res)
	}
	res = verifyWith(signed, "all", "key: keys/release.pub", "keyring: keys/charts.gpg")
	if res.Passed || !reflect.DeepEqual(res.Failures, []string{"signatures: all of [release.pub, charts.gpg] required; valid signatures over the image from: charts.gpg"}) {
		t.Errorf("require all, provenance only: %+v", res)
	}
	both := chartImage(t, chartTgz, prov)
	cosignSign(t, &both, key)
	res = verifyWith(both, "all", "key: keys/release.pub", "keyring: keys/charts.gpg")
	if !res.Passed || len(res.Signatures) != 2 || res.Signatures[0].Signer != "release.pub" || res.Signatures[1].Signer != "charts.gpg" {
		t.Errorf("require all, both: %+v", res)
	}
}

// TestKeyringSignerUnreadable: what keeps a keyring signer from checking a chart is named.
func TestKeyringSignerUnreadable(t *testing.T) {
	ctx := context.Background()
	s := newKeyringSite(t)
	prov := s.signer.sign(t, chartTgz, chartFile)
	pol := s.policy(t, "any", "keyring: keys/charts.gpg")
	tr := &Trust{Policy: pol}

	notJSON := chartImage(t, chartTgz, prov)
	notJSON.Manifest = []byte("{")
	noConfig := chartImage(t, chartTgz, prov)
	noConfig.Fetch = memBlobs{}
	twoProv := chartImage(t, chartTgz, prov)
	var m ocispec.Manifest
	if err := json.Unmarshal(twoProv.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	m.Layers = append(m.Layers, m.Layers[1])
	twoProv.Manifest, _ = json.Marshal(m)
	for name, tc := range map[string]struct {
		img  Image
		want string
	}{
		"manifest not JSON":     {notJSON, "no signature found; keyring signer charts.gpg: its manifest is unreadable: unexpected end of JSON input"},
		"config unreadable":     {noConfig, "no signature found; keyring signer charts.gpg: chart config: read layer " + digest.FromBytes(chartConfig).String()},
		"two provenance layers": {twoProv, "no signature found; keyring signer charts.gpg: chart app-1.4.2.tgz: more than one provenance layer"},
	} {
		res := tr.Verify(ctx, tc.img)
		if res.Passed || len(res.Failures) != 1 || !strings.HasPrefix(res.Failures[0], tc.want) {
			t.Errorf("%s: %+v\n want failed: %s", name, res, tc.want)
		}
	}

	// An archive's own policy carries no keyring: its keyring signer vouches for nothing.
	data, err := os.ReadFile(pol.Path)
	if err != nil {
		t.Fatal(err)
	}
	ap, err := parsePolicy("/archive/policy.yaml", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := (&Trust{Policy: ap}).Verify(ctx, chartImage(t, chartTgz, prov))
	why := "keyring signer charts.gpg: its keyring is not read from an archive's own policy (the archive carries no keyring): pin the policy at the site (--policy)"
	if res.Passed || len(res.Signatures) != 1 || res.Signatures[0].Status != StatusRejected || !strings.HasPrefix(res.Signatures[0].Reason, why) ||
		len(res.Failures) != 1 || !strings.Contains(res.Failures[0], "from: none; "+why) {
		t.Errorf("archive policy: %+v\n want rejected: %s", res, why)
	}
}

// TestKeyringSignerNeedsTheManifest: an image given without its manifest cannot satisfy a keyring
// signer, and says why; given it, it does; the site's keyring then checks the chart too.
func TestKeyringSignerNeedsTheManifest(t *testing.T) {
	ctx := context.Background()
	s := newKeyringSite(t)
	prov := s.signer.sign(t, chartTgz, chartFile)
	img := chartImage(t, chartTgz, prov)
	tr := &Trust{Policy: s.policy(t, "any", "keyring: keys/charts.gpg")}

	bare := img
	bare.Manifest = nil
	res := tr.Verify(ctx, bare)
	if res.Passed || !reflect.DeepEqual(res.Failures, []string{"no signature found; keyring signer charts.gpg: the artifact's manifest was not given, so its provenance was not checked"}) {
		t.Fatalf("without the manifest: %+v", res)
	}
	res = tr.Verify(ctx, img)
	if !res.Passed || len(res.Failures) != 0 || len(res.Signatures) != 1 || !res.Signatures[0].Valid || res.Provenance == nil || !res.Provenance.Valid {
		t.Errorf("with the manifest: %+v", res)
	}

	ring, err := LoadKeyring(s.path("other.asc"))
	if err != nil {
		t.Fatal(err)
	}
	tr.Keyring = ring
	site := tr.Verify(ctx, img)
	if site.Passed || len(site.Failures) != 1 || !strings.HasPrefix(site.Failures[0], "chart app-1.4.2.tgz: provenance not signed by a key in the keyring "+s.path("other.asc")) ||
		len(site.Signatures) != 1 || !site.Signatures[0].Valid || site.Provenance == nil || site.Provenance.Valid {
		t.Errorf("the policy's keyring, then the site's: %+v", site)
	}
}

// TestKeyringSignerSkippedByCosignChecks: a legacy .sig on a chart is checked with key signers only.
func TestKeyringSignerSkippedByCosignChecks(t *testing.T) {
	s := newKeyringSite(t)
	key := sigtest.NewKey(t)
	img := chartImage(t, chartTgz, nil)
	payload, sig := sigtest.LegacySignature(t, key, img.Repository, img.Digest)
	m, _, layer := sigtest.LegacySigManifest(t, payload, sig)
	img.Fetch.(memBlobs)[digest.FromBytes(layer)] = layer
	img.Referrers = append(img.Referrers, Referrer{Digest: digest.FromBytes(m), Subject: img.Digest, Kind: referrers.Kind(m), Manifest: m})
	tr := keyTrust(t, key)
	tr.Policy = s.policy(t, "any", "keyring: keys/charts.gpg")
	res := tr.Verify(context.Background(), img)
	if res.Passed || len(res.Signatures) != 1 || res.Signatures[0].Status != StatusUnknownSigner || res.Signatures[0].Reason != "the rule has no key signer" {
		t.Errorf("legacy .sig, keyring signer: %+v", res)
	}
}

// countingBlobs counts the fetches of each blob.
type countingBlobs struct {
	memBlobs
	n map[digest.Digest]int
}

func (c countingBlobs) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	c.n[d.Digest]++
	return c.memBlobs.Fetch(ctx, d)
}

// TestKeyringsReadTheChartOnce: a keyring signer of the rule and the keyring pinned at the site
// both check the chart; its layers (up to 100 MiB) are fetched once. With neither, never.
func TestKeyringsReadTheChartOnce(t *testing.T) {
	s := newKeyringSite(t)
	prov := s.signer.sign(t, chartTgz, chartFile)
	img := chartImage(t, chartTgz, prov)
	blobs := countingBlobs{img.Fetch.(memBlobs), map[digest.Digest]int{}}
	img.Fetch = blobs
	ring, err := LoadKeyring(s.path("charts.gpg"))
	if err != nil {
		t.Fatal(err)
	}
	tr := &Trust{Policy: s.policy(t, "any", "keyring: keys/charts.gpg"), Keyring: ring}
	res := tr.Verify(context.Background(), img)
	if !res.Passed || len(res.Signatures) != 1 || !res.Signatures[0].Valid || res.Provenance == nil || !res.Provenance.Valid {
		t.Fatalf("signed chart, both keyrings: %+v", res)
	}
	for _, b := range [][]byte{chartConfig, chartTgz, prov} {
		if n := blobs.n[digest.FromBytes(b)]; n != 1 {
			t.Errorf("blob %.40q fetched %d times, want once", b, n)
		}
	}

	// Neither a keyring signer nor a keyring pinned: the chart is not read at all.
	key := sigtest.NewKey(t)
	writeTestKey(t, s.path("release.pub"))
	img = chartImage(t, chartTgz, prov)
	cosignSign(t, &img, key)
	blobs = countingBlobs{img.Fetch.(memBlobs), map[digest.Digest]int{}}
	img.Fetch = blobs
	tr = keyTrust(t, key)
	tr.Policy = s.policy(t, "any", "key: keys/release.pub")
	if res := tr.Verify(context.Background(), img); !res.Passed {
		t.Fatalf("cosign-signed chart, key signer: %+v", res)
	}
	for _, b := range [][]byte{chartConfig, chartTgz, prov} {
		if n := blobs.n[digest.FromBytes(b)]; n != 0 {
			t.Errorf("no keyring: blob %.40q fetched %d times, want never", b, n)
		}
	}
}
