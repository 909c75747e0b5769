package verify

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"

	"github.com/opencontainers/go-digest"
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
// base64 (the value of the dev.cosignproject.cosign/signature annotation).
func (k *SigningKey) SignPayload(b []byte) (string, error) {
	sum := sha256.Sum256(b)
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, sum[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// SignedPayload reports whether sig (base64, as SignPayload returns it) is this key's signature of b.
func (k *SigningKey) SignedPayload(b []byte, sig string) bool {
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	sum := sha256.Sum256(b)
	return ecdsa.VerifyASN1(&k.priv.PublicKey, sum[:], raw)
}
