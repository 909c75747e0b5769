package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"helm.sh/helm/v4/pkg/provenance"

	"airlock.dev/airlock/config"
	"airlock.dev/airlock/vocab"
)

// pgpKey is an OpenPGP key made for a test, with its public keyring in both encodings.
type pgpKey struct {
	entity  *openpgp.Entity
	binary  []byte // gpg --export
	armored []byte // gpg --export --armor
}

// pgpKeys holds the keys made so far, by name and email: an RSA key takes about 0.1 s to make,
// and every mutant of make test's mutation gate runs these tests again. Tests only read a key.
var pgpKeys sync.Map

func newPGPKey(t *testing.T, name, email string) *pgpKey {
	t.Helper()
	if k, ok := pgpKeys.Load(name + " <" + email + ">"); ok {
		return k.(*pgpKey)
	}
	e, err := openpgp.NewEntity(name, "test", email, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := &pgpKey{entity: e}
	var bin, arm bytes.Buffer
	if err := e.Serialize(&bin); err != nil {
		t.Fatal(err)
	}
	k.binary = bin.Bytes()
	w, err := armor.Encode(&arm, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(k.binary); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	k.armored = append(arm.Bytes(), '\n')
	pgpKeys.Store(name+" <"+email+">", k)
	return k
}

func (k *pgpKey) fingerprint() string { return fmt.Sprintf("%X", k.entity.PrimaryKey.Fingerprint) }

// sign is helm package --sign: the .prov of tgz, named filename, made by Helm's Signatory.ClearSign.
func (k *pgpKey) sign(t *testing.T, tgz []byte, filename string) []byte {
	t.Helper()
	prov, err := (&provenance.Signatory{Entity: k.entity}).ClearSign(tgz, filename, []byte("apiVersion: v2\nname: app\nversion: 1.4.2\n"))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(prov)
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

const chartFile = "app-1.4.2.tgz"

var chartTgz = []byte("the chart app 1.4.2, packaged")

func TestVerifyProvenance(t *testing.T) {
	signer := newPGPKey(t, "Chart Signer", "charts@example.com")
	other := newPGPKey(t, "Someone Else", "else@example.com")
	prov := signer.sign(t, chartTgz, chartFile)

	for name, ring := range map[string][]byte{"binary": signer.binary, "armored": signer.armored, "two keys": append(append([]byte{}, other.armored...), signer.armored...)} {
		got, err := verifyProvenance(ring, chartTgz, prov, chartFile)
		if err != nil || got != "Chart Signer (test) <charts@example.com>" {
			t.Errorf("%s keyring: signer %q, %v; want Chart Signer (test) <charts@example.com>", name, got, err)
		}
	}

	tampered := append(append([]byte{}, chartTgz...), '!')
	altered := bytes.Replace(prov, []byte("name: app"), []byte("name: evil"), 1)
	if bytes.Equal(altered, prov) {
		t.Fatal("the .prov names no chart to alter")
	}
	for name, tc := range map[string]struct {
		ring, tgz, prov []byte
		file            string
		want            []string
	}{
		"another keyring": {other.binary, chartTgz, prov, chartFile, []string{
			"chart app-1.4.2.tgz: provenance not signed by a key in the keyring given: it is signed by key " + signer.fingerprint() +
				", the keyring holds " + other.fingerprint() + " (Someone Else (test) <else@example.com>); if the site trusts that signer, add its public key to the keyring (gpg --export KEYID >> given), else do not deploy the chart"}},
		"tampered tgz": {signer.binary, tampered, prov, chartFile, []string{
			"chart app-1.4.2.tgz: sum mismatch: the provenance signs " + sha(chartTgz) + ", the chart's .tgz is " + sha(tampered) + ": the chart is not the one that was signed; get it again from its publisher"}},
		"altered prov": {signer.binary, chartTgz, altered, chartFile, []string{
			"chart app-1.4.2.tgz: the provenance signature by key " + signer.fingerprint() + " does not verify (", "): the .prov was altered after it was signed"}},
		"another chart's prov": {signer.binary, chartTgz, prov, "db-1.0.0.tgz", []string{
			"chart db-1.0.0.tgz: the provenance signs no file named db-1.0.0.tgz (it names app-1.4.2.tgz): it is another chart's .prov"}},
		"not clearsigned": {signer.binary, chartTgz, []byte("files:\n  app-1.4.2.tgz: sha256:00\n"), chartFile, []string{
			"chart app-1.4.2.tgz: its provenance file is not an OpenPGP clearsigned message (no signature block): it is damaged"}},
		"unreadable keyring": {[]byte("not a keyring"), chartTgz, prov, chartFile, []string{
			"keyring given is unreadable: ", ": give an OpenPGP public keyring, exported with gpg --export KEYID > given (or gpg --export --armor KEYID)"}},
		"empty keyring":               {nil, chartTgz, prov, chartFile, []string{"keyring given is unreadable: no OpenPGP key in it: "}},
		"keybox":                      {append(make([]byte, 8), []byte("KBXf....")...), chartTgz, prov, chartFile, []string{"keyring given is unreadable: a GnuPG keybox (pubring.kbx), not a keyring: "}},
		"keybox, its first 12 bytes":  {append(make([]byte, 8), []byte("KBXf")...), chartTgz, prov, chartFile, []string{"keyring given is unreadable: a GnuPG keybox (pubring.kbx), not a keyring: "}},
		"armored signature, not keys": {[]byte("-----BEGIN PGP SIGNATURE-----\n\nwsBcBAABCAAQBQJ=\n=AAAA\n-----END PGP SIGNATURE-----\n"), chartTgz, prov, chartFile, []string{"keyring given is unreadable: "}},
	} {
		got, err := verifyProvenance(tc.ring, tc.tgz, tc.prov, tc.file)
		if err == nil || got != "" {
			t.Errorf("%s: signer %q, err nil; want refused", name, got)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s:\n got  %v\n want %q in it", name, err, w)
			}
		}
	}
}

// TestReadKeyring: an armored keyring may hold several blocks (exports concatenated); a block that
// is not a key is refused; every key is listed with its identity.
func TestReadKeyring(t *testing.T) {
	a, b := newPGPKey(t, "A", "a@example.com"), newPGPKey(t, "B", "b@example.com")
	dir := t.TempDir()
	path := filepath.Join(dir, "charts.asc")
	if err := os.WriteFile(path, append(append([]byte{}, a.armored...), b.armored...), 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := LoadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []KeyringKey{{a.fingerprint(), "A (test) <a@example.com>"}, {b.fingerprint(), "B (test) <b@example.com>"}}
	if got := k.Keys(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] || k.Name != path {
		t.Errorf("keys %+v of %s, want %+v", got, k.Name, want)
	}
	if _, err := LoadKeyring(filepath.Join(dir, "missing.gpg")); err == nil || !strings.HasPrefix(err.Error(), "keyring: open ") {
		t.Errorf("missing keyring: %v", err)
	}
	var msg bytes.Buffer
	w, _ := armor.Encode(&msg, "PGP MESSAGE", nil)
	_, _ = w.Write([]byte("x"))
	_ = w.Close()
	if _, err := ParseKeyring("m.asc", append(append([]byte{}, a.armored...), msg.Bytes()...)); err == nil || !strings.Contains(err.Error(), `an armored "PGP MESSAGE" block, not a key block`) {
		t.Errorf("a message block in the keyring: %v", err)
	}
	var empty bytes.Buffer
	w, _ = armor.Encode(&empty, openpgp.PublicKeyType, nil)
	_ = w.Close()
	if _, err := ParseKeyring("e.asc", empty.Bytes()); err == nil || !strings.Contains(err.Error(), "an armored key block with no key in it") {
		t.Errorf("an empty key block: %v", err)
	}
	if got := identity(&openpgp.Entity{PrimaryKey: a.entity.PrimaryKey, Identities: map[string]*openpgp.Identity{}}); got != a.fingerprint() {
		t.Errorf("identity of a key without a user ID: %q, want its fingerprint", got)
	}
}

// chartArtifact is a chart as helm push stores it: config, content layer, and prov when given.
func chartArtifact(t *testing.T, cfg, tgz, prov []byte) ([]byte, memBlobs) {
	t.Helper()
	blobs := memBlobs{}
	desc := func(mt string, b []byte) ocispec.Descriptor {
		blobs[digest.FromBytes(b)] = b
		return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: desc(vocab.HelmConfigMediaType, cfg), Layers: []ocispec.Descriptor{desc(vocab.HelmContentMediaType, tgz)}}
	if prov != nil {
		m.Layers = append(m.Layers, desc(vocab.HelmProvMediaType, prov))
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b, blobs
}

var chartConfig = []byte(`{"name":"app","version":"1.4.2","apiVersion":"v2"}`)

func TestSiteKeyring(t *testing.T) {
	ctx := context.Background()
	signer := newPGPKey(t, "Chart Signer", "charts@example.com")
	other := newPGPKey(t, "Someone Else", "else@example.com")
	ring, err := ParseKeyring("charts.gpg", signer.binary)
	if err != nil {
		t.Fatal(err)
	}
	otherRing, err := ParseKeyring("other.gpg", other.binary)
	if err != nil {
		t.Fatal(err)
	}
	prov := signer.sign(t, chartTgz, chartFile)
	provDigest := digest.FromBytes(prov)
	check := func(tr *Trust, manifest []byte, blobs memBlobs) Result {
		res := Result{Source: "oci://charts.example.com/app:1.4.2", Passed: true}
		tr.siteKeyring(&res, readImageChart(ctx, Image{Manifest: manifest, Fetch: blobs}))
		return res
	}

	m, blobs := chartArtifact(t, chartConfig, chartTgz, prov)
	res := check(&Trust{Keyring: ring}, m, blobs)
	want := Provenance{Chart: chartFile, Layer: provDigest, Signer: "Chart Signer (test) <charts@example.com>", Key: signer.fingerprint(), Valid: true}
	if res.Provenance == nil || *res.Provenance != want || !res.Passed || len(res.Failures) != 0 {
		t.Errorf("signed chart: %+v, provenance %+v; want passed, %+v", res, res.Provenance, want)
	}

	// Without a keyring, or for anything but a chart, nothing changes.
	for name, tc := range map[string]struct {
		tr       *Trust
		manifest []byte
	}{
		"no keyring": {&Trust{}, m}, "nil trust": {nil, m},
		"an image": {&Trust{Keyring: ring}, bytes.Replace(m, []byte(vocab.HelmConfigMediaType), []byte(ocispec.MediaTypeImageConfig), 1)},
		"not json": {&Trust{Keyring: ring}, []byte("{")},
	} {
		if res := check(tc.tr, tc.manifest, blobs); res.Provenance != nil || !res.Passed || len(res.Failures) != 0 {
			t.Errorf("%s: %+v, want it left alone", name, res)
		}
	}

	two, twoBlobs := chartArtifact(t, chartConfig, chartTgz, prov)
	var tm ocispec.Manifest
	_ = json.Unmarshal(two, &tm)
	tm.Layers = append(tm.Layers, tm.Layers...)
	twoProv, _ := json.Marshal(ocispec.Manifest{Versioned: tm.Versioned, Config: tm.Config, Layers: tm.Layers[1:]})
	twoContent, _ := json.Marshal(ocispec.Manifest{Versioned: tm.Versioned, Config: tm.Config, Layers: tm.Layers[:3]})
	noContent, _ := json.Marshal(ocispec.Manifest{Versioned: tm.Versioned, Config: tm.Config, Layers: tm.Layers[1:2]})
	tampered := []byte("another chart, under the same name")
	noProv, noProvBlobs := chartArtifact(t, chartConfig, chartTgz, nil)
	swapped, swappedBlobs := chartArtifact(t, chartConfig, tampered, prov)
	nameless, namelessBlobs := chartArtifact(t, []byte(`{"version":"1.4.2"}`), chartTgz, prov)
	missingProv := memBlobs{}
	for d, b := range blobs {
		if d != provDigest {
			missingProv[d] = b
		}
	}
	for name, tc := range map[string]struct {
		tr       *Trust
		manifest []byte
		blobs    memBlobs
		want     string
		layer    digest.Digest
	}{
		"no provenance": {&Trust{Keyring: ring}, noProv, noProvBlobs,
			"chart app-1.4.2.tgz has no provenance: its artifact carries no provenance layer (application/vnd.cncf.helm.chart.provenance.v1.prov), so nothing signed by the keyring charts.gpg vouches for it; have its publisher sign it (helm package --sign, the .prov published beside the .tgz) and save it again, or verify without --keyring", ""},
		"another keyring": {&Trust{Keyring: otherRing}, m, blobs,
			"chart app-1.4.2.tgz: provenance not signed by a key in the keyring other.gpg: it is signed by key " + signer.fingerprint(), provDigest},
		"tampered content": {&Trust{Keyring: ring}, swapped, swappedBlobs,
			"chart app-1.4.2.tgz: sum mismatch: the provenance signs " + sha(chartTgz) + ", the chart's .tgz is " + sha(tampered), provDigest},
		"no name": {&Trust{Keyring: ring}, nameless, namelessBlobs,
			"chart config " + digest.FromBytes([]byte(`{"version":"1.4.2"}`)).String() + " names no chart (name and version): not a Helm chart artifact", ""},
		"two provenance layers": {&Trust{Keyring: ring}, twoProv, twoBlobs, "chart app-1.4.2.tgz: more than one provenance layer", ""},
		"two content layers":    {&Trust{Keyring: ring}, twoContent, twoBlobs, "chart app-1.4.2.tgz: more than one chart content layer", ""},
		"no content layer":      {&Trust{Keyring: ring}, noContent, twoBlobs, "chart app-1.4.2.tgz: no chart content layer (application/vnd.cncf.helm.chart.content.v1.tar+gzip)", ""},
		"prov unreadable":       {&Trust{Keyring: ring}, m, missingProv, "chart app-1.4.2.tgz: provenance read layer " + provDigest.String(), provDigest},
		"content unreadable":    {&Trust{Keyring: ring}, m, memBlobs{digest.FromBytes(chartConfig): chartConfig}, "chart app-1.4.2.tgz: read content layer " + digest.FromBytes(chartTgz).String(), ""},
		"config unreadable":     {&Trust{Keyring: ring}, m, memBlobs{}, "chart config: read layer " + digest.FromBytes(chartConfig).String(), ""},
	} {
		res := check(tc.tr, tc.manifest, tc.blobs)
		p := res.Provenance
		if res.Passed || len(res.Failures) != 1 || !strings.HasPrefix(res.Failures[0], tc.want) || p == nil || p.Valid || p.Reason != res.Failures[0] || p.Signer != "" || p.Key != "" {
			t.Errorf("%s: %+v, provenance %+v;\n want failed with %q", name, res, p, tc.want)
			continue
		}
		if tc.layer != "" && p.Layer != tc.layer {
			t.Errorf("%s: layer %s, want %s", name, p.Layer, tc.layer)
		}
	}
	if res := check(&Trust{Keyring: ring}, noProv, noProvBlobs); res.Provenance.Chart != chartFile || res.Provenance.Layer != "" {
		t.Errorf("no provenance: %+v, want the chart named and no layer", res.Provenance)
	}
}

// TestAnchorsKeyring: a keyring pinned at the site (a flag, or keyring in the site trust file,
// relative to it) is loaded into the trust for an archive and for an image set, and reported; an
// unreadable one is an error.
func TestAnchorsKeyring(t *testing.T) {
	dir := t.TempDir()
	signer := newPGPKey(t, "Chart Signer", "charts@example.com")
	ringPath := filepath.Join(dir, "keys", "charts.gpg")
	if err := os.MkdirAll(filepath.Dir(ringPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ringPath, signer.binary, 0o644); err != nil {
		t.Fatal(err)
	}
	keyPath, pubPath := writeKeyPair(t, dir, "transfer", "")
	_, releasePub := writeKeyPair(t, dir, "release", "")
	trustFile := filepath.Join(dir, "trust.yaml")
	if err := os.WriteFile(trustFile, []byte("apiVersion: airlock.dev/v1alpha1\nkind: SiteTrust\narchiveKeys: [transfer.pub]\nkeyring: keys/charts.gpg\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := Anchors{}.WithFile(trustFile)
	if err != nil || a.Keyring != ringPath {
		t.Fatalf("site trust file keyring: %q, %v; want %s", a.Keyring, err, ringPath)
	}
	if a, _ := (Anchors{Keyring: "flag.gpg"}).WithFile(trustFile); a.Keyring != "flag.gpg" {
		t.Errorf("--keyring and the file's keyring: %q, want the flag's", a.Keyring)
	}

	signerKey, err := LoadSigningKey(keyPath, password(""))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := forArchive(t, newArchive(t, signerKey), Anchors{ArchiveKeys: []string{pubPath}, Keyring: ringPath})
	if err != nil {
		t.Fatal(err)
	}
	wantRef := KeyringRef{File: ringPath, Keys: []KeyringKey{{signer.fingerprint(), "Chart Signer (test) <charts@example.com>"}}}
	checkTrust := func(what string, tr *Trust) {
		t.Helper()
		if tr.Keyring == nil || tr.Keyring.Name != ringPath || tr.Origin.Keyring == nil || tr.Origin.Keyring.File != wantRef.File ||
			len(tr.Origin.Keyring.Keys) != 1 || tr.Origin.Keyring.Keys[0] != wantRef.Keys[0] ||
			!strings.HasSuffix(tr.Source, "; Helm charts' provenance: keyring "+ringPath+" ("+signer.fingerprint()+" (Chart Signer (test) <charts@example.com>))") {
			t.Errorf("%s: keyring %+v, origin %+v, source %q", what, tr.Keyring, tr.Origin.Keyring, tr.Source)
		}
	}
	checkTrust("archive", tr)
	if tr.Origin.Kind != "archive-signature" {
		t.Errorf("archive: origin %q", tr.Origin.Kind)
	}
	set := &config.ImageSet{Path: filepath.Join(dir, "imageset.yaml"), Trust: config.Trust{Keys: []string{releasePub}}}
	for name, a := range map[string]*Anchors{"image set": {Keyring: ringPath}, "site keys": {Keys: []string{releasePub}, Keyring: ringPath}} {
		tr, err := a.ForImageSet(set)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkTrust(name, tr)
	}
	if tr, err := (&Anchors{Keys: []string{releasePub}}).ForImageSet(set); err != nil || tr.Keyring != nil || tr.Origin.Keyring != nil || strings.Contains(tr.Source, "keyring") {
		t.Errorf("no keyring pinned: %+v, %v", tr, err)
	}
	bad := filepath.Join(dir, "bad.gpg")
	if err := os.WriteFile(bad, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := forArchive(t, newArchive(t, signerKey), Anchors{ArchiveKeys: []string{pubPath}, Keyring: bad}); err == nil || !strings.Contains(err.Error(), "keyring "+bad+" is unreadable") {
		t.Errorf("unreadable keyring, archive: %v", err)
	}
	if _, err := (&Anchors{Keyring: bad}).ForImageSet(set); err == nil || !strings.Contains(err.Error(), "keyring "+bad+" is unreadable") {
		t.Errorf("unreadable keyring, image set: %v", err)
	}
	if _, err := (&Anchors{TrustedRoot: "x.json", Keyring: ringPath}).ForImageSet(set); err == nil || strings.Contains(err.Error(), "keyring") {
		t.Errorf("a trusted root alone: %v, want refused for it", err)
	}
}

// verifyProvenance is Keyring.Verify on a keyring given as bytes, returning the signer's identity.
func verifyProvenance(keyring []byte, tgz, prov []byte, filename string) (signer string, err error) {
	k, err := ParseKeyring("given", keyring)
	if err != nil {
		return "", err
	}
	e, err := k.Verify(tgz, prov, filename)
	if err != nil {
		return "", err
	}
	return identity(e), nil
}
