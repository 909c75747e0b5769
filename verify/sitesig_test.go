package verify

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/opencontainers/go-digest"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
)

// TestSimpleSigningPayload: byte for byte the payload cosign signs for repo@d (containers/image reads
// it strictly: these fields, in this order, optional null).
func TestSimpleSigningPayload(t *testing.T) {
	d := digest.FromString("image")
	want := `{"critical":{"identity":{"docker-reference":"site:5000/mirror/team/app"},"image":{"docker-manifest-digest":"` + d.String() + `"},"type":"cosign container image signature"},"optional":null}`
	if got := string(SimpleSigningPayload("site:5000/mirror/team/app", d)); got != want {
		t.Errorf("payload\n%s\nwant\n%s", got, want)
	}
}

// TestSiteSignatures: what the site key signs (a payload, a statement) it recognizes as its own, and
// nothing else: another key's, an altered payload or statement, a signature that is not base64, an
// envelope that is not one, or one of another payload type.
func TestSiteSignatures(t *testing.T) {
	site, other := siteAndOther(t)
	payload := SimpleSigningPayload("site/team/app", digest.FromString("x"))
	sig, err := site.SignPayload(payload)
	if err != nil {
		t.Fatal(err)
	}
	if !site.SignedPayload(payload, sig) {
		t.Error("the site's own signature not recognized")
	}
	otherSig, _ := other.SignPayload(payload)
	altered := bytes.Replace(payload, []byte("site/"), []byte("evil/"), 1)
	for what, ok := range map[string]bool{
		"another key's": site.SignedPayload(payload, otherSig),
		"altered":       site.SignedPayload(altered, sig),
		"not base64":    site.SignedPayload(payload, "%%%"),
		"empty":         site.SignedPayload(payload, ""),
		"truncated sig": site.SignedPayload(payload, sig[:len(sig)/2]),
	} {
		if ok {
			t.Errorf("%s signature taken as the site's", what)
		}
	}

	st := []byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://airlock.dev/import/v1"}`)
	env, err := site.SignStatement(st)
	if err != nil {
		t.Fatal(err)
	}
	if got := site.SignedStatement(env); !bytes.Equal(got, st) {
		t.Errorf("own statement read back as %q", got)
	}
	var e struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
		Signatures  []struct {
			Sig string `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(env, &e); err != nil || e.PayloadType != "application/vnd.in-toto+json" || len(e.Signatures) != 1 {
		t.Fatalf("envelope %s: %v", env, err)
	}
	otherEnv, _ := other.SignStatement(st)
	alteredEnv := bytes.Replace(env, []byte(e.Payload), []byte(base64.StdEncoding.EncodeToString([]byte(`{"_type":"x"}`))), 1)
	sv, err := signature.LoadECDSASignerVerifier(site.priv, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	retyped, err := sigdsse.WrapSigner(sv, "application/json").SignMessage(bytes.NewReader(st)) // signed, but not in-toto
	if err != nil {
		t.Fatal(err)
	}
	for what, env := range map[string][]byte{"another key's": otherEnv, "altered": alteredEnv, "another payload type": retyped, "not an envelope": []byte("{}"), "not JSON": []byte("x")} {
		if got := site.SignedStatement(env); got != nil {
			t.Errorf("%s envelope read as the site's: %q", what, got)
		}
	}
}

// TestSiteBundles: the site's bundle over a statement is a valid Sigstore bundle (sigstore-go reads
// it) that the site key recognizes as its own, returning the statement; another key's bundle, an
// altered one and what is no bundle are not taken.
func TestSiteBundles(t *testing.T) {
	site, other := siteAndOther(t)
	st := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"site/team/app","digest":{"sha256":"` + digest.FromString("x").Encoded() + `"}}],"predicateType":"https://airlock.dev/import/v1","predicate":{}}`)
	b, err := site.SignStatementBundle(st)
	if err != nil {
		t.Fatal(err)
	}
	var pb sgbundle.Bundle
	if err := pb.UnmarshalJSON(b); err != nil {
		t.Fatalf("the site bundle is not a Sigstore bundle: %v\n%s", err, b)
	}
	if got := site.SignedBundleStatement(b); !bytes.Equal(got, st) {
		t.Errorf("the site's own bundle: statement %q, want %q", got, st)
	}
	ob, _ := other.SignStatementBundle(st)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	env, _ := m["dsseEnvelope"].(map[string]any)
	if env["payloadType"] != "application/vnd.in-toto+json" {
		t.Fatalf("the bundle has no in-toto DSSE envelope:\n%s", b)
	}
	env["payloadType"] = "application/json" // what PAE signs: the signature no longer holds
	altered, _ := json.Marshal(m)
	for what, bundle := range map[string][]byte{"another key's": ob, "altered": altered, "not a bundle": []byte(`{"x":1}`), "not JSON": []byte("{")} {
		if site.SignedBundleStatement(bundle) != nil {
			t.Errorf("%s bundle taken as the site's", what)
		}
	}
}

// siteAndOther loads two new signing keys: the site's and another.
func siteAndOther(t *testing.T) (site, other *SigningKey) {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []struct {
		name string
		key  **SigningKey
	}{{"site", &site}, {"other", &other}} {
		path, _ := writeKeyPair(t, dir, k.name, "")
		var err error
		if *k.key, err = LoadSigningKey(path, password("")); err != nil {
			t.Fatal(err)
		}
	}
	return site, other
}
