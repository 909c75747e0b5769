package verify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"

	"airlock.dev/airlock/archive"
)

// writeCurveKeyPair writes a fresh ECDSA key pair on curve to dir: NAME.key (unencrypted PKCS#8, which
// LoadSigningKey reads like an encrypted cosign key) and NAME.pub.
func writeCurveKeyPair(t *testing.T, dir, name string, curve elliptic.Curve) (keyPath, pubPath string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	keyPath, pubPath = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubPath, pubPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return keyPath, pubPath
}

// TestSigningCurves: with a P-256, P-384 or P-521 key, what airlock signs airlock verifies (archive
// catalog bundles, the site's legacy signatures, legacy attestations and bundles), and airlock
// verifies what cosign signs with such a key: cosign v3 (`cosign sign --key`, `cosign attest --key`)
// hashes with the curve's hash (SHA-384, SHA-512), in bundles and legacy signatures alike; cosign
// v2, and the verifiers' default (cosign verify --key, containers/image, policy-controller, Kyverno),
// SHA-256. Another key's signature on the same curve is still refused. What airlock signs keeps to
// cosign: bundles with the curve's hash (as cosign v3 signs them), legacy signatures and attestations
// with SHA-256 (what every legacy verifier checks by default; containers/image checks nothing else).
func TestSigningCurves(t *testing.T) {
	for _, tc := range []struct {
		name  string
		curve elliptic.Curve
		hash  crypto.Hash
	}{{"P-256", elliptic.P256(), crypto.SHA256}, {"P-384", elliptic.P384(), crypto.SHA384}, {"P-521", elliptic.P521(), crypto.SHA512}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			keyPath, pubPath := writeCurveKeyPair(t, dir, "signer", tc.curve)
			otherPath, _ := writeCurveKeyPair(t, dir, "other", tc.curve)
			k, err := LoadSigningKey(keyPath, nil)
			if err != nil {
				t.Fatal(err)
			}
			other, err := LoadSigningKey(otherPath, nil)
			if err != nil {
				t.Fatal(err)
			}
			keys, err := LoadKeys([]string{pubPath})
			if err != nil {
				t.Fatal(err)
			}
			pub := keys[0]
			verifierWith := func(h crypto.Hash) signature.Verifier {
				v, err := signature.LoadVerifier(pub.pub, h)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}

			// Archive signing (airlock save --sign-key, airlock sign): a bundle hashed as cosign v3
			// hashes it, which airlock's verification accepts.
			cat := digest.FromString("catalog")
			b, err := k.SignDigest(cat)
			if err != nil {
				t.Fatal(err)
			}
			if got := CheckCatalogSignatures([]archive.CatalogSignature{{Bundle: b}}, cat, keys); !got[0].Valid {
				t.Errorf("airlock's own catalog signature refused: %s", got[0].Reason)
			}
			var bundle struct {
				DSSEEnvelope json.RawMessage `json:"dsseEnvelope"`
			}
			if err := json.Unmarshal(b, &bundle); err != nil {
				t.Fatal(err)
			}
			if err := sigdsse.WrapVerifier(verifierWith(tc.hash)).VerifySignature(bytes.NewReader(bundle.DSSEEnvelope), nil); err != nil {
				t.Errorf("the catalog bundle is not signed over %v, as cosign v3 signs it: %v", tc.hash, err)
			}
			ob, err := other.SignDigest(cat)
			if err != nil {
				t.Fatal(err)
			}
			if got := CheckCatalogSignatures([]archive.CatalogSignature{{Bundle: ob}}, cat, keys); got[0].Valid {
				t.Error("another key's catalog signature taken as the pinned key's")
			}

			// The site's signatures: each recognized as its own.
			d := digest.FromString("image")
			payload := SimpleSigningPayload("site/team/app", d)
			sig, err := k.SignPayload(payload)
			if err != nil {
				t.Fatal(err)
			}
			if !k.SignedPayload(payload, sig) {
				t.Error("the site's own legacy signature not recognized")
			}
			raw, _ := base64.StdEncoding.DecodeString(sig)
			if err := verifierWith(crypto.SHA256).VerifySignature(bytes.NewReader(raw), bytes.NewReader(payload)); err != nil {
				t.Errorf("the legacy signature is not over SHA-256, which containers/image and cosign verify check: %v", err)
			}
			st := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"site/team/app","digest":{"sha256":"` + d.Encoded() + `"}}],"predicateType":"https://airlock.dev/import/v1","predicate":{}}`)
			env, err := k.SignStatement(st)
			if err != nil {
				t.Fatal(err)
			}
			if got := k.SignedStatement(env); !bytes.Equal(got, st) {
				t.Errorf("the site's own legacy attestation read back as %q", got)
			}
			if err := sigdsse.WrapVerifier(verifierWith(crypto.SHA256)).VerifySignature(bytes.NewReader(env), nil); err != nil {
				t.Errorf("the legacy attestation is not over SHA-256: %v", err)
			}
			sb, err := k.SignStatementBundle(st)
			if err != nil {
				t.Fatal(err)
			}
			if got := k.SignedBundleStatement(sb); !bytes.Equal(got, st) {
				t.Errorf("the site's own bundle read back as %q", got)
			}
			var bundleEnv struct {
				DSSEEnvelope json.RawMessage `json:"dsseEnvelope"`
			}
			json.Unmarshal(sb, &bundleEnv)
			if err := sigdsse.WrapVerifier(verifierWith(crypto.SHA256)).VerifySignature(bytes.NewReader(bundleEnv.DSSEEnvelope), nil); err != nil {
				t.Errorf("the site bundle is not over SHA-256, which Kyverno and cosign verify assume of a key: %v", err)
			}
			osb, _ := other.SignStatementBundle(st)
			osig, _ := other.SignPayload(payload)
			oenv, _ := other.SignStatement(st)
			if k.SignedBundleStatement(osb) != nil || k.SignedPayload(payload, osig) || k.SignedStatement(oenv) != nil {
				t.Error("another key's site signature taken as the site's")
			}

			// What cosign signs with the key, hashed either way, airlock verifies with the public key.
			trust := &Trust{Keys: keys}
			rule := &Rule{Signers: []Signer{{Name: pub.Name, Key: pubPath}}}
			for _, h := range []crypto.Hash{tc.hash, crypto.SHA256} {
				for name, key := range map[string]*SigningKey{"signer": k, "other": other} {
					want := name == "signer"
					sv, err := signature.LoadECDSASignerVerifier(key.priv, h)
					if err != nil {
						t.Fatal(err)
					}
					rawSig, err := sv.SignMessage(bytes.NewReader(payload))
					if err != nil {
						t.Fatal(err)
					}
					c := &Check{Subject: d}
					trust.checkLegacySig(c, payload, map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(rawSig)}, rule)
					if c.Valid != want {
						t.Errorf("%s's legacy signature over %v: valid %v, want %v (%s)", name, h, c.Valid, want, c.Reason)
					}
					if k.SignedPayload(payload, base64.StdEncoding.EncodeToString(rawSig)) != want {
						t.Errorf("%s's legacy signature over %v: SignedPayload, want %v", name, h, want)
					}
					att, err := sigdsse.WrapSigner(sv, inTotoPayloadType).SignMessage(bytes.NewReader(st))
					if err != nil {
						t.Fatal(err)
					}
					c = &Check{Subject: d}
					trust.checkLegacyAtt(c, att, rule)
					if c.Valid != want {
						t.Errorf("%s's legacy attestation over %v: valid %v, want %v (%s)", name, h, c.Valid, want, c.Reason)
					}
					if got := k.SignedStatement(att); (got != nil) != want {
						t.Errorf("%s's legacy attestation over %v: SignedStatement %q, want it %v", name, h, got, want)
					}
				}
			}
		})
	}
}
