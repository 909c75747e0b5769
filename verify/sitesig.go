package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
	"google.golang.org/protobuf/encoding/protojson"
)

// The payload of a cosign legacy signature ("simple signing"), in the field order cosign writes it
// (sigstore/pkg/signature/payload Cosign.MarshalJSON): containers/image reads it strictly (exactly
// these fields; optional may be null).
type simpleSigningPayload struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]string `json:"optional"`
}

// SimpleSigningPayload returns, byte for byte, the payload `cosign sign --key` signs for repo@d: repo
// is the repository without a tag (cosign's docker-reference), so one signature serves every tag of
// the digest. The same repo and digest always give the same bytes.
func SimpleSigningPayload(repo string, d digest.Digest) []byte {
	var p simpleSigningPayload
	p.Critical.Identity.DockerReference = repo
	p.Critical.Image.DockerManifestDigest = d.String()
	p.Critical.Type = "cosign container image signature"
	b, _ := json.Marshal(p) // strings only: it cannot fail
	return b
}

// SignPayload signs b as cosign signs a legacy signature payload: ECDSA over its SHA-256, ASN.1 DER,
// base64 (the value of the dev.cosignproject.cosign/signature annotation). SHA-256 whatever the curve:
// cosign v3 hashes a P-384 or P-521 key's legacy signatures with the curve's hash, but containers/image
// verifies SHA-256 only, and cosign verify --key, policy-controller and Kyverno assume it unless told
// otherwise; cosign v2 signed with it. airlock verifies either (keyVerifier).
func (k *SigningKey) SignPayload(b []byte) (string, error) {
	sum := sha256.Sum256(b)
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, sum[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// SignedPayload reports whether sig (base64, as SignPayload returns it) is this key's signature of b:
// over SHA-256, or, as cosign v3 signs with a P-384 or P-521 key, over the curve's hash.
func (k *SigningKey) SignedPayload(b []byte, sig string) bool {
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(raw) == 0 {
		return false
	}
	return k.verifier.VerifySignature(bytes.NewReader(raw), bytes.NewReader(b)) == nil
}

// SignStatement wraps the in-toto statement in a DSSE envelope signed with k, as `cosign attest --key`
// writes one into a legacy .att layer (payload type application/vnd.in-toto+json). It returns the
// envelope JSON. Its signature is over SHA-256 whatever the curve, as SignPayload's.
func (k *SigningKey) SignStatement(statement []byte) ([]byte, error) {
	sv, err := signature.LoadECDSASignerVerifier(k.priv, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return sigdsse.WrapSigner(sv, inTotoPayloadType).SignMessage(bytes.NewReader(statement))
}

// SignedStatement returns the statement of a DSSE envelope that k signed (over SHA-256, or the curve's
// hash as in SignStatementBundle's and cosign v3's), or nil when k did not sign it (or it is no
// envelope).
func (k *SigningKey) SignedStatement(envelope []byte) []byte {
	if sigdsse.WrapVerifier(k.verifier).VerifySignature(bytes.NewReader(envelope), nil) != nil {
		return nil
	}
	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
	}
	if json.Unmarshal(envelope, &env) != nil || env.PayloadType != inTotoPayloadType {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil
	}
	return b
}

// SignStatementBundle signs the in-toto statement as `cosign attest --key --new-bundle-format` does
// (cosign v3): a Sigstore bundle v0.3 holding a DSSE envelope over it, signed over SHA-256
// (sha256Keypair), the key hint and no transparency log entry (the site has no log). It returns the bundle
// JSON. Engines that find a bundle among an image's referrers read bundles only (Kyverno, cosign v3),
// so the site writes one beside its legacy signatures.
func (k *SigningKey) SignStatementBundle(statement []byte) ([]byte, error) {
	pb, err := sign.Bundle(&sign.DSSEData{Data: statement, PayloadType: inTotoPayloadType}, sha256Keypair{keypair{k}}, sign.BundleOptions{})
	if err != nil {
		return nil, fmt.Errorf("sign a bundle with %s: %w", k.Name, err)
	}
	return protojson.Marshal(pb)
}

// sha256Keypair signs over SHA-256 whatever the key's curve: what every engine that reads the site's
// bundle assumes of a key by default (cosign verify, Kyverno, policy-controller), as for the site's
// legacy signatures. cosign v3 signs a P-384 key's bundles over SHA-384, which its own verify then
// refuses without --signature-digest-algorithm.
type sha256Keypair struct{ keypair }

func (p sha256Keypair) GetHashAlgorithm() protocommon.HashAlgorithm {
	return protocommon.HashAlgorithm_SHA2_256
}

func (p sha256Keypair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	sum := sha256.Sum256(data)
	sig, err := ecdsa.SignASN1(rand.Reader, p.k.priv, sum[:])
	return sig, sum[:], err
}

// SignedBundleStatement returns the statement of a Sigstore bundle whose DSSE envelope k signed, or
// nil when k did not sign it (or it is no such bundle).
func (k *SigningKey) SignedBundleStatement(bundle []byte) []byte {
	var b struct {
		DSSEEnvelope json.RawMessage `json:"dsseEnvelope"`
	}
	if json.Unmarshal(bundle, &b) != nil || len(b.DSSEEnvelope) == 0 {
		return nil
	}
	return k.SignedStatement(b.DSSEEnvelope)
}
