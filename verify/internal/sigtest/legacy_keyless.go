package sigtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/rekor/pkg/types"
	hashedrekord "github.com/sigstore/rekor/pkg/types/hashedrekord/v0.0.1"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// Annotations cosign v2 writes on a keyless legacy .sig layer, besides
// SignatureAnnotation.
const (
	// CertificateAnnotation holds the PEM Fulcio leaf certificate.
	CertificateAnnotation = "dev.sigstore.cosign/certificate"
	// ChainAnnotation holds the PEM intermediates and root.
	ChainAnnotation = "dev.sigstore.cosign/chain"
	// BundleAnnotation holds the Rekor bundle JSON (cosign's bundle.RekorBundle).
	BundleAnnotation = "dev.sigstore.cosign/bundle"
)

// rekorBundle is cosign's pkg/cosign/bundle.RekorBundle, as it marshals into
// the bundle annotation: the SET as base64 (a []byte), the body as a base64
// string.
type rekorBundle struct {
	SignedEntryTimestamp []byte
	Payload              struct {
		Body           any    `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	}
}

// legacyLogIndex is the log index of the Rekor entries LegacyKeylessSignature
// makes; any value will do, there is no inclusion proof.
const legacyLogIndex = 4242

// LegacyKeylessSignature returns what cosign v2 "cosign sign" (keyless, the
// default) writes into a .sig layer for image digest d: the simple-signing
// payload and the layer annotations: the base64 signature over the payload,
// the Fulcio leaf (with an embedded SCT from the CT log) issued to identity
// by issuer, its chain (intermediate and root), and the Rekor bundle of a
// hashedrekord v0.0.1 entry with integrated time at and a signed entry
// timestamp (no inclusion proof, as cosign v2 stored none).
//
// As with KeylessBundle, the leaf is issued now, valid for LeafValidity; an
// at outside that window gives a signature that must fail verification.
func (s *Sigstore) LegacyKeylessSignature(t testing.TB, identity, issuer string, repo string, d digest.Digest, at time.Time) (payload []byte, annotations map[string]string) {
	t.Helper()
	leafKey := newECKey(t)
	leaf := s.leafCert(t, identity, issuer, &leafKey.PublicKey, time.Now().Add(-time.Second))

	var ss simpleSigning
	ss.Critical.Identity.DockerReference = repo
	ss.Critical.Image.DockerManifestDigest = d.String()
	ss.Critical.Type = "cosign container image signature"
	payload = marshal(t, ss)
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, leafKey, sum[:])
	if err != nil {
		t.Fatalf("sigtest: signing payload: %v", err)
	}

	leafPEM, err := cryptoutils.MarshalCertificateToPEM(leaf)
	if err != nil {
		t.Fatal(err)
	}
	chainPEM, err := cryptoutils.MarshalCertificatesToPEM([]*x509.Certificate{s.fulcioInter, s.fulcioRoot})
	if err != nil {
		t.Fatal(err)
	}

	// The hashedrekord v0.0.1 entry Rekor stores for cosign: sha256 of the
	// payload, the signature, and the PEM leaf as the "public key".
	ctx := context.Background()
	pe, err := hashedrekord.V001Entry{}.CreateFromArtifactProperties(ctx, types.ArtifactProperties{
		ArtifactHash:   "sha256:" + hex.EncodeToString(sum[:]),
		SignatureBytes: sig,
		PublicKeyBytes: [][]byte{leafPEM},
		PKIFormat:      "x509",
	})
	if err != nil {
		t.Fatalf("sigtest: hashedrekord entry: %v", err)
	}
	var entry hashedrekord.V001Entry
	if err := entry.Unmarshal(pe); err != nil {
		t.Fatalf("sigtest: hashedrekord entry: %v", err)
	}
	body, err := entry.Canonicalize(ctx)
	if err != nil {
		t.Fatalf("sigtest: canonicalizing hashedrekord entry: %v", err)
	}

	logID, err := s.vs.RekorLogID()
	if err != nil {
		t.Fatal(err)
	}
	var b rekorBundle
	b.Payload.Body = base64.StdEncoding.EncodeToString(body)
	b.Payload.IntegratedTime = at.Unix()
	b.Payload.LogIndex = legacyLogIndex
	b.Payload.LogID = logID
	if b.SignedEntryTimestamp, err = s.vs.RekorSignPayload(tlog.RekorPayload{
		Body:           b.Payload.Body,
		IntegratedTime: b.Payload.IntegratedTime,
		LogIndex:       b.Payload.LogIndex,
		LogID:          b.Payload.LogID,
	}); err != nil {
		t.Fatalf("sigtest: signing entry timestamp: %v", err)
	}

	return payload, map[string]string{
		SignatureAnnotation:   base64.StdEncoding.EncodeToString(sig),
		CertificateAnnotation: string(leafPEM),
		ChainAnnotation:       string(chainPEM),
		BundleAnnotation:      string(marshal(t, b)),
	}
}

// LegacySigManifestWithAnnotations is LegacySigManifest with the layer
// annotations given whole (as LegacyKeylessSignature returns them).
func LegacySigManifestWithAnnotations(t testing.TB, payload []byte, annotations map[string]string) (manifest, config, layer []byte) {
	t.Helper()
	return legacyManifest(t, payload, SimpleSigningMediaType, annotations)
}
