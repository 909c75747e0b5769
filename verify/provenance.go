package verify

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"helm.sh/helm/v4/pkg/provenance"
	"oras.land/oras-go/v2/content"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/vocab"
)

// This file checks a Helm chart's provenance file (NAME-VERSION.tgz.prov: an OpenPGP clearsigned
// message whose signed text gives the sha256 of NAME-VERSION.tgz) against an OpenPGP keyring
// pinned at the site (verify --keyring), with Helm's own pkg/provenance (Signatory.Verify), as
// `helm verify` and `helm install --verify` check it. See docs/helm-charts.md section 5.

// Keyring is an OpenPGP keyring pinned at the site: the keys whose signatures make a Helm chart's
// provenance valid.
type Keyring struct {
	// Name is the file it was read from, as reports name it.
	Name string
	ring openpgp.EntityList
}

// KeyringKey names one key of a keyring in reports.
type KeyringKey struct {
	Fingerprint string `json:"fingerprint"`
	Identity    string `json:"identity"`
}

// KeyringRef names the keyring of a trust in reports (Origin.Keyring).
type KeyringRef struct {
	File string       `json:"file"`
	Keys []KeyringKey `json:"keys"`
}

// Provenance is the outcome of checking a Helm chart's provenance against the keyring.
type Provenance struct {
	// Chart is the file name the provenance must sign, NAME-VERSION.tgz from the chart's config.
	Chart string `json:"chart"`
	// Layer is the provenance layer's digest, when the artifact has one.
	Layer digest.Digest `json:"layer,omitempty"`
	// Signer is the identity of the key that signed (NAME (COMMENT) <EMAIL>), Key its fingerprint.
	Signer string `json:"signer,omitempty"`
	Key    string `json:"key,omitempty"`
	Valid  bool   `json:"valid"`
	Reason string `json:"reason,omitempty"`
}

// LoadKeyring reads an OpenPGP keyring file, binary (gpg --export) or armored (gpg --export --armor,
// several blocks concatenated allowed).
func LoadKeyring(path string) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return ParseKeyring(path, b)
}

// ParseKeyring reads the keyring b; name says where it came from, for messages.
func ParseKeyring(name string, b []byte) (*Keyring, error) {
	ring, err := readKeyring(b)
	if err != nil {
		return nil, fmt.Errorf("keyring %s is unreadable: %v: give an OpenPGP public keyring, exported with gpg --export KEYID > %s (or gpg --export --armor KEYID)", name, err, filepath.Base(name))
	}
	return &Keyring{Name: name, ring: ring}, nil
}

func readKeyring(b []byte) (openpgp.EntityList, error) {
	if len(b) >= 12 && string(b[8:12]) == "KBXf" {
		return nil, errors.New("a GnuPG keybox (pubring.kbx), not a keyring")
	}
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN PGP")) {
		return readArmoredKeyring(b)
	}
	ring, err := openpgp.ReadKeyRing(bytes.NewReader(b))
	if err == nil && len(ring) == 0 {
		err = errors.New("no OpenPGP key in it")
	}
	return ring, err
}

// readArmoredKeyring reads every armored key block of b (keyrings made by concatenating exports,
// which Helm reads too). armor.Decode reads through a bufio.Reader of its input, or the input itself
// when that is one: one reader for all blocks, so that none is lost in another's read-ahead.
func readArmoredKeyring(b []byte) (openpgp.EntityList, error) {
	var ring openpgp.EntityList
	r := bufio.NewReader(bytes.NewReader(b))
	for {
		block, err := armor.Decode(r)
		if errors.Is(err, io.EOF) {
			return ring, nil
		}
		if err != nil {
			return nil, err
		}
		if block.Type != openpgp.PublicKeyType && block.Type != openpgp.PrivateKeyType {
			return nil, fmt.Errorf("an armored %q block, not a key block", block.Type)
		}
		keys, err := openpgp.ReadKeyRing(block.Body)
		if err == nil && len(keys) == 0 {
			err = errors.New("an armored key block with no key in it")
		}
		if err != nil {
			return nil, err
		}
		ring = append(ring, keys...)
	}
}

// Keys lists the keyring's keys, for reports.
func (k *Keyring) Keys() []KeyringKey {
	out := make([]KeyringKey, len(k.ring))
	for i, e := range k.ring {
		out[i] = KeyringKey{Fingerprint: fingerprint(e), Identity: identity(e)}
	}
	return out
}

func fingerprint(e *openpgp.Entity) string { return fmt.Sprintf("%X", e.PrimaryKey.Fingerprint) }

// identity is the entity's primary user ID, or its fingerprint when it has none.
func identity(e *openpgp.Entity) string {
	if id := e.PrimaryIdentity(); id != nil {
		return id.Name
	}
	return fingerprint(e)
}

// Verify checks prov, a Helm provenance file, with Helm's Signatory.Verify against k: its signature
// must verify with a key of k, and the sha256 it gives for filename (NAME-VERSION.tgz) must be tgz's.
// It returns the key that signed; an error says which chart, why, and what to do.
func (k *Keyring) Verify(tgz, prov []byte, filename string) (*openpgp.Entity, error) {
	v, err := (&provenance.Signatory{KeyRing: k.ring}).Verify(tgz, prov, filename)
	if err != nil {
		msg := "chart " + filename + ": " + k.why(tgz, prov, filename, err)
		if errors.Is(err, pgperrors.ErrUnknownIssuer) {
			return nil, notSigner("%s", msg) // another signer's: no key of k made it
		}
		return nil, errors.New(msg)
	}
	return v.SignedBy, nil
}

// why says why Helm's Verify refused prov (its error err), and what to do.
func (k *Keyring) why(tgz, prov []byte, filename string, err error) string {
	block, _ := clearsign.Decode(prov)
	if block == nil {
		return "its provenance file is not an OpenPGP clearsigned message (no signature block): it is damaged; get the chart's .prov again from its publisher"
	}
	issuer := signatureIssuer(prov)
	if errors.Is(err, pgperrors.ErrUnknownIssuer) {
		return fmt.Sprintf("provenance not signed by a key in the keyring %s: it is signed by key %s, the keyring holds %s; if the site trusts that signer, add its public key to the keyring (gpg --export KEYID >> %s), else do not deploy the chart", k.Name, issuer, k.describe(), filepath.Base(k.Name))
	}
	if _, sigErr := openpgp.CheckDetachedSignature(k.ring, bytes.NewReader(block.Bytes), block.ArmoredSignature.Body, &packet.Config{DefaultHash: crypto.SHA512}); sigErr != nil {
		return fmt.Sprintf("the provenance signature by key %s does not verify (%v): the .prov was altered after it was signed; get the chart and its .prov again from its publisher", issuer, sigErr)
	}
	var sums provenance.SumCollection
	if perr := provenance.ParseMessageBlock(block.Plaintext, nil, &sums); perr != nil {
		return fmt.Sprintf("the provenance's signed text gives no sums (%v)", perr)
	}
	want, ok := sums.Files[filename]
	if !ok {
		return fmt.Sprintf("the provenance signs no file named %s (it names %s): it is another chart's .prov", filename, strings.Join(slices.Sorted(maps.Keys(sums.Files)), ", "))
	}
	sum := sha256.Sum256(tgz)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != want {
		return fmt.Sprintf("sum mismatch: the provenance signs %s, the chart's .tgz is %s: the chart is not the one that was signed; get it again from its publisher", want, got)
	}
	return err.Error()
}

// signatureIssuer names the key that made the signature of the clearsigned prov, as the signature
// says (its issuer fingerprint or key ID), unverified.
func signatureIssuer(prov []byte) string {
	block, _ := clearsign.Decode(prov)
	if block == nil || block.ArmoredSignature == nil {
		return "(unknown)"
	}
	p, err := packet.NewReader(block.ArmoredSignature.Body).Next()
	sig, ok := p.(*packet.Signature)
	switch {
	case err != nil || !ok:
		return "(unreadable)"
	case len(sig.IssuerFingerprint) > 0:
		return fmt.Sprintf("%X", sig.IssuerFingerprint)
	case sig.IssuerKeyId != nil:
		return fmt.Sprintf("%016X", *sig.IssuerKeyId)
	}
	return "(not named)"
}

// describe lists the keyring's keys in one line.
func (k *Keyring) describe() string {
	parts := make([]string, 0, len(k.ring))
	for _, key := range k.Keys() {
		parts = append(parts, key.Fingerprint+" ("+key.Identity+")")
	}
	return strings.Join(parts, ", ")
}

// siteKeyring checks the provenance of a Helm chart artifact (chart, the image read as one) against
// the keyring pinned at the site, and records it in res: res.Provenance, and a failure when the chart
// has no provenance or it does not verify. Without a keyring pinned, or for an image that is not a
// Helm chart, res is left as it is.
func (t *Trust) siteKeyring(res *Result, chart *imageChart) {
	if t == nil || t.Keyring == nil || chart.notChart != "" {
		return
	}
	p := t.Keyring.checkChart(chart)
	res.Provenance = p
	if !p.Valid {
		res.Failures = append(res.Failures, p.Reason)
		res.Passed = false
	}
}

// checkChart checks the chart artifact read as chart: its provenance layer must sign its content layer.
func (k *Keyring) checkChart(chart *imageChart) *Provenance {
	p := &Provenance{}
	fail := func(format string, args ...any) *Provenance {
		p.Reason = fmt.Sprintf(format, args...)
		return p
	}
	c := chart.files
	if c != nil {
		p.Chart, p.Layer = c.name, c.layer
	}
	switch {
	case chart.err != nil:
		return fail("%v", chart.err)
	case c.layer == "":
		return fail("chart %s has no provenance: its artifact carries no provenance layer (%s), so nothing signed by the keyring %s vouches for it; have its publisher sign it (helm package --sign, the .prov published beside the .tgz) and save it again, or verify without --keyring", p.Chart, vocab.HelmProvMediaType, k.Name)
	}
	e, err := k.Verify(c.tgz, c.prov, c.name)
	if err != nil {
		return fail("%v", err)
	}
	p.Valid, p.Signer, p.Key = true, identity(e), fingerprint(e)
	return p
}

// chartFiles is what a chart artifact's provenance is checked on.
type chartFiles struct {
	name  string        // NAME-VERSION.tgz, from the chart's config
	layer digest.Digest // the provenance layer; "" when there is none
	// tgz is the content layer's content and prov the provenance layer's, both read only when
	// there is a provenance layer (else there is nothing to check).
	tgz, prov []byte
}

// readChart reads the chart artifact m through fetch. The error says why it cannot be checked; with
// an error, the chartFiles returned (if any) names the chart and its provenance layer.
func readChart(ctx context.Context, m ocispec.Manifest, fetch content.Fetcher) (*chartFiles, error) {
	cfg, err := readBlob(ctx, fetch, m.Config)
	if err != nil {
		return nil, fmt.Errorf("chart config: %w", err)
	}
	var meta struct{ Name, Version string }
	if err := json.Unmarshal(cfg, &meta); err != nil || meta.Name == "" || meta.Version == "" {
		return nil, fmt.Errorf("chart config %s names no chart (name and version): not a Helm chart artifact", m.Config.Digest)
	}
	c := &chartFiles{name: meta.Name + "-" + meta.Version + ".tgz"}
	chart, prov, err := vocab.HelmChartLayers(m)
	if err != nil {
		return c, fmt.Errorf("chart %s: %w", c.name, err)
	}
	if prov == nil {
		return c, nil
	}
	c.layer = prov.Digest
	if c.tgz, err = archive.ReadVerified(ctx, fetch, *chart, vocab.MaxChartSize); err != nil {
		return c, fmt.Errorf("chart %s: read content layer %s: %w", c.name, chart.Digest, err)
	}
	if c.prov, err = readBlob(ctx, fetch, *prov); err != nil {
		return c, fmt.Errorf("chart %s: provenance %w", c.name, err)
	}
	return c, nil
}

// withKeyring loads the keyring the anchors pin (a.Keyring) into t, and says so in t's source and
// origin. t nil (nothing to verify images against) stays nil.
func (a *Anchors) withKeyring(t *Trust) (*Trust, error) {
	if a.Keyring == "" || t == nil {
		return t, nil
	}
	k, err := LoadKeyring(a.Keyring)
	if err != nil {
		return nil, err
	}
	t.Keyring = k
	t.Source += "; Helm charts' provenance: keyring " + a.Keyring + " (" + k.describe() + ")"
	t.Origin.Keyring = &KeyringRef{File: a.Keyring, Keys: k.Keys()}
	return t, nil
}
