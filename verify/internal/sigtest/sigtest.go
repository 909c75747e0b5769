// Package sigtest builds signing fixtures for airlock's verification tests:
// cosign-style keys, in-toto statements, Sigstore bundles (key-based and
// keyless), the OCI referrer manifests cosign v3 pushes, and the legacy
// cosign ".sig" and ".att" manifests. Everything is made in process and
// offline.
package sigtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"google.golang.org/protobuf/encoding/protojson"
)

const (
	// BundleMediaType is the media type of a Sigstore bundle v0.3 (JSON).
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// InTotoPayloadType is the DSSE payload type of an in-toto statement.
	InTotoPayloadType = "application/vnd.in-toto+json"
	// StatementTypeV1 is the _type of an in-toto v1 statement.
	StatementTypeV1 = "https://in-toto.io/Statement/v1"
	// CosignSignPredicateType is the predicate type cosign v3 uses for a plain
	// signature in the new bundle format.
	CosignSignPredicateType = "https://sigstore.dev/cosign/sign/v1"
)

// Key is an ECDSA P-256 key pair as cosign makes them.
type Key struct {
	Private   *ecdsa.PrivateKey
	PublicPEM []byte
}

// NewKey generates a fresh ECDSA P-256 key pair.
func NewKey(t testing.TB) *Key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("sigtest: generating key: %v", err)
	}
	pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		t.Fatalf("sigtest: encoding public key: %v", err)
	}
	return &Key{Private: priv, PublicPEM: pemBytes}
}

// Hint is the key hint cosign writes into a bundle's
// verificationMaterial.publicKey.hint: base64(sha256(PKIX DER of the key)).
func (k *Key) Hint() string {
	der, err := x509.MarshalPKIXPublicKey(k.Private.Public())
	if err != nil {
		panic(err) // a P-256 key always marshals
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// sign returns the ASN.1 ECDSA signature over sha256(msg).
func (k *Key) sign(msg []byte) ([]byte, error) {
	sum := sha256.Sum256(msg)
	return ecdsa.SignASN1(rand.Reader, k.Private, sum[:])
}

type statementSubject struct {
	Name   string            `json:"name,omitempty"`
	Digest map[string]string `json:"digest"`
}

type statement struct {
	Type          string             `json:"_type"`
	Subject       []statementSubject `json:"subject"`
	PredicateType string             `json:"predicateType"`
	Predicate     any                `json:"predicate"`
}

// Statement returns an in-toto v1 statement JSON for subject digest d with
// predicateType and predicate (nil -> {}).
func Statement(d digest.Digest, predicateType string, predicate any) []byte {
	if predicate == nil {
		predicate = map[string]any{}
	}
	b, err := json.Marshal(statement{
		Type:          StatementTypeV1,
		Subject:       []statementSubject{{Digest: map[string]string{d.Algorithm().String(): d.Encoded()}}},
		PredicateType: predicateType,
		Predicate:     predicate,
	})
	if err != nil {
		panic("sigtest: marshalling statement: " + err.Error())
	}
	return b
}

// keypair adapts a Key to sigstore-go's sign.Keypair, the way cosign's
// SignerVerifierKeypair does.
type keypair struct{ k *Key }

func (p keypair) GetHashAlgorithm() protocommon.HashAlgorithm {
	return protocommon.HashAlgorithm_SHA2_256
}
func (p keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256
}
func (p keypair) GetHint() []byte                { return []byte(p.k.Hint()) }
func (p keypair) GetKeyAlgorithm() string        { return "ECDSA" }
func (p keypair) GetPublicKey() crypto.PublicKey { return p.k.Private.Public() }
func (p keypair) GetPublicKeyPem() (string, error) {
	return string(p.k.PublicPEM), nil
}
func (p keypair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	sum := sha256.Sum256(data)
	sig, err := ecdsa.SignASN1(rand.Reader, p.k.Private, sum[:])
	return sig, sum[:], err
}

// KeyBundle returns a cosign-v3-style bundle JSON: DSSE over statement,
// signed by k, no tlog, with the public key hint.
func KeyBundle(t testing.TB, k *Key, statement []byte) []byte {
	t.Helper()
	pb, err := sign.Bundle(&sign.DSSEData{Data: statement, PayloadType: InTotoPayloadType}, keypair{k}, sign.BundleOptions{})
	if err != nil {
		t.Fatalf("sigtest: signing bundle: %v", err)
	}
	b, err := protojson.Marshal(pb)
	if err != nil {
		t.Fatalf("sigtest: marshalling bundle: %v", err)
	}
	return b
}

// emptyJSON is the OCI empty descriptor's content.
var emptyJSON = []byte("{}")

// Referrer wraps a bundle into the referrer manifest JSON cosign v3 pushes
// (artifactType and single layer of the bundle media type, empty config,
// "dev.sigstore.bundle.content" and "dev.sigstore.bundle.predicateType"
// annotations, subject). It returns the manifest bytes and the layer blob
// bytes (the bundle itself). The config blob is the empty JSON "{}" of
// ocispec.DescriptorEmptyJSON.
func Referrer(t testing.TB, bundle []byte, predicateType string, subject ocispec.Descriptor) (manifest []byte, layer []byte) {
	t.Helper()
	layer = bytes.Clone(bundle)
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: BundleMediaType,
		Config: ocispec.Descriptor{
			MediaType:    ocispec.MediaTypeEmptyJSON,
			ArtifactType: BundleMediaType, // cosign v3 sets it on the config descriptor too
			Digest:       digest.FromBytes(emptyJSON),
			Size:         int64(len(emptyJSON)),
		},
		Layers: []ocispec.Descriptor{{
			MediaType: BundleMediaType,
			Digest:    digest.FromBytes(layer),
			Size:      int64(len(layer)),
		}},
		Subject: &ocispec.Descriptor{
			MediaType: subject.MediaType,
			Digest:    subject.Digest,
			Size:      subject.Size,
		},
		Annotations: map[string]string{
			ocispec.AnnotationCreated:           time.Now().UTC().Format(time.RFC3339),
			"dev.sigstore.bundle.content":       "dsse-envelope",
			"dev.sigstore.bundle.predicateType": predicateType,
		},
	}
	return marshal(t, m), layer
}

func marshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("sigtest: marshalling %T: %v", v, err)
	}
	return b
}

// MessageBundle returns a bundle JSON holding a message signature over data
// (no DSSE envelope, no in-toto statement), signed by k, no tlog, with the
// key hint: what "cosign sign-blob --bundle" makes. Its message digest is
// sha256(data), so it verifies against the artifact digest of data.
func MessageBundle(t testing.TB, k *Key, data []byte) []byte {
	t.Helper()
	pb, err := sign.Bundle(&sign.PlainData{Data: data}, keypair{k}, sign.BundleOptions{})
	if err != nil {
		t.Fatalf("sigtest: signing message bundle: %v", err)
	}
	b, err := protojson.Marshal(pb)
	if err != nil {
		t.Fatalf("sigtest: marshalling bundle: %v", err)
	}
	return b
}
