package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/types/known/structpb"

	"airlock.dev/airlock/archive"
	"github.com/opencontainers/go-digest"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
)

// PEM block types of cosign private keys: encrypted with scrypt and secretbox, as `cosign
// generate-key-pair` writes them (older cosign releases wrote the COSIGN form).
const (
	sigstorePrivateKeyPEM = "ENCRYPTED SIGSTORE PRIVATE KEY"
	cosignPrivateKeyPEM   = "ENCRYPTED COSIGN PRIVATE KEY"
)

// SigningKey is a private key that signs archive catalogs.
type SigningKey struct {
	// Name is the key file's base name; Hint the key hint written into bundles (as Key.Hint).
	Name, Hint string
	priv       *ecdsa.PrivateKey
	pubPEM     []byte
	alg        signature.AlgorithmDetails // the curve's Sigstore algorithm and hash
	verifier   signature.Verifier         // the public key's, as ParseKey loads it
}

// Password supplies the password of an encrypted private key, asked only when one is needed.
type Password func() ([]byte, error)

// LoadSigningKey reads a cosign private key (PEM): an encrypted cosign key, decrypted with the
// password, or an unencrypted PKCS#8 or SEC 1 ECDSA key.
func LoadSigningKey(path string, password Password) (*SigningKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("signing key %s: not a PEM file; give a cosign private key (cosign generate-key-pair writes cosign.key)", path)
	}
	var priv crypto.PrivateKey
	switch block.Type {
	case sigstorePrivateKeyPEM, cosignPrivateKeyPEM:
		if password == nil {
			return nil, fmt.Errorf("signing key %s is encrypted and no password was given: set COSIGN_PASSWORD", path)
		}
		pw, err := password()
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", path, err)
		}
		der, err := encrypted.Decrypt(block.Bytes, pw)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: cannot decrypt it: wrong password (COSIGN_PASSWORD), or the file is damaged", path)
		}
		if priv, err = x509.ParsePKCS8PrivateKey(der); err != nil {
			return nil, fmt.Errorf("signing key %s: %w", path, err)
		}
	case "PRIVATE KEY", "EC PRIVATE KEY":
		if priv, err = cryptoutils.UnmarshalPEMToPrivateKey(b, nil); err != nil {
			return nil, fmt.Errorf("signing key %s: %w", path, err)
		}
	default:
		return nil, fmt.Errorf("signing key %s: a %q PEM block is not a private key; give the cosign private key (cosign.key), not the public one", path, block.Type)
	}
	ec, ok := priv.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s: a %T; archives are signed with ECDSA keys (cosign generate-key-pair makes one)", path, priv)
	}
	alg, err := signature.GetDefaultAlgorithmDetails(ec.Public())
	if err != nil {
		return nil, fmt.Errorf("signing key %s: an ECDSA key on an unsupported curve (P-256, P-384 and P-521 are)", path)
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(ec.Public())
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	pub, err := ParseKey(filepath.Base(path), pubPEM)
	if err != nil {
		return nil, err
	}
	return &SigningKey{Name: pub.Name, Hint: pub.Hint, priv: ec, pubPEM: pubPEM, alg: alg, verifier: pub.verifier}, nil
}

// keypair adapts a SigningKey to sigstore-go's sign.Keypair, the way cosign's own adapter does
// (cosign v3 internal/key/svkeypair.go): it hashes with the curve's hash (SHA-256, SHA-384 for P-384,
// SHA-512 for P-521), sigstore's default for the key, as `cosign sign --key` and `cosign attest --key`
// sign bundles. ParseKey's verifier takes that hash.
type keypair struct{ k *SigningKey }

func (p keypair) GetHashAlgorithm() protocommon.HashAlgorithm { return p.k.alg.GetProtoHashType() }
func (p keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return p.k.alg.GetSignatureAlgorithm()
}
func (p keypair) GetHint() []byte                  { return []byte(p.k.Hint) }
func (p keypair) GetKeyAlgorithm() string          { return "ECDSA" }
func (p keypair) GetPublicKey() crypto.PublicKey   { return p.k.priv.Public() }
func (p keypair) GetPublicKeyPem() (string, error) { return string(p.k.pubPEM), nil }
func (p keypair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	h := p.k.alg.GetHashType().New()
	h.Write(data)
	sum := h.Sum(nil)
	sig, err := ecdsa.SignASN1(rand.Reader, p.k.priv, sum)
	return sig, sum, err
}

// SignDigest signs the manifest d the way `cosign sign --key` (cosign v3) does: a Sigstore bundle
// holding a DSSE envelope over an in-toto statement with the cosign sign predicate type, the key hint
// and no transparency log entry (nothing is uploaded; airlock signs offline). It returns the bundle
// JSON.
func (k *SigningKey) SignDigest(d digest.Digest) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	// The in-toto v1 statement cosign v3 signs for an image: the subject's digest and the cosign
	// sign predicate type with an empty predicate.
	st, err := protojson.Marshal(&intoto.Statement{
		Type:          intoto.StatementTypeUri,
		Subject:       []*intoto.ResourceDescriptor{{Digest: map[string]string{d.Algorithm().String(): d.Encoded()}}},
		PredicateType: archive.CosignSignPredicateType,
		Predicate:     &structpb.Struct{},
	})
	if err != nil {
		return nil, err
	}
	pb, err := sign.Bundle(&sign.DSSEData{Data: st, PayloadType: inTotoPayloadType}, keypair{k}, sign.BundleOptions{})
	if err != nil {
		return nil, fmt.Errorf("sign %s with %s: %w", d, k.Name, err)
	}
	return protojson.Marshal(pb)
}
