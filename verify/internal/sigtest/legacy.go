package sigtest

import (
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	// SimpleSigningMediaType is the layer media type of a legacy cosign signature.
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// DSSEMediaType is the layer media type of a legacy cosign attestation.
	DSSEMediaType = "application/vnd.dsse.envelope.v1+json"
	// SignatureAnnotation holds the base64 signature on a legacy .sig layer.
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
	// PredicateTypeAnnotation holds the predicate type on a legacy .att layer.
	PredicateTypeAnnotation = "predicateType"
)

type simpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// LegacySignature returns the simple-signing payload and the base64 signature
// annotation value for image digest d signed with k.
func LegacySignature(t testing.TB, k *Key, repo string, d digest.Digest) (payload []byte, sigB64 string) {
	t.Helper()
	var ss simpleSigning
	ss.Critical.Identity.DockerReference = repo
	ss.Critical.Image.DockerManifestDigest = d.String()
	ss.Critical.Type = "cosign container image signature"
	payload = marshal(t, ss)
	sig, err := k.sign(payload)
	if err != nil {
		t.Fatalf("sigtest: signing payload: %v", err)
	}
	return payload, base64.StdEncoding.EncodeToString(sig)
}

// LegacySigManifest builds the .sig manifest (OCI image config, one
// simple-signing layer carrying the signature annotation); returns manifest,
// config and layer bytes.
func LegacySigManifest(t testing.TB, payload []byte, sigB64 string) (manifest, config, layer []byte) {
	t.Helper()
	return legacyManifest(t, payload, SimpleSigningMediaType, map[string]string{SignatureAnnotation: sigB64})
}

type dsseSignature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

type dsseEnvelope struct {
	PayloadType string          `json:"payloadType"`
	Payload     string          `json:"payload"`
	Signatures  []dsseSignature `json:"signatures"`
}

// pae is the DSSE pre-authentication encoding.
func pae(payloadType string, payload []byte) []byte {
	return fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(payload), payload)
}

// LegacyAttestation returns the DSSE envelope JSON of statement signed by k,
// as cosign attest writes it into a .att layer.
func LegacyAttestation(t testing.TB, k *Key, statement []byte) []byte {
	t.Helper()
	return LegacyEnvelope(t, k, InTotoPayloadType, statement)
}

// LegacyEnvelope returns the DSSE envelope JSON of payload with payloadType,
// signed by k.
func LegacyEnvelope(t testing.TB, k *Key, payloadType string, statement []byte) []byte {
	t.Helper()
	sig, err := k.sign(pae(payloadType, statement))
	if err != nil {
		t.Fatalf("sigtest: signing envelope: %v", err)
	}
	return marshal(t, dsseEnvelope{
		PayloadType: payloadType,
		Payload:     base64.StdEncoding.EncodeToString(statement),
		Signatures:  []dsseSignature{{KeyID: "", Sig: base64.StdEncoding.EncodeToString(sig)}},
	})
}

// LegacyAttManifest builds the .att manifest (OCI image config, one DSSE
// layer carrying the predicateType annotation); returns manifest, config and
// layer bytes.
func LegacyAttManifest(t testing.TB, envelope []byte, predicateType string) (manifest, config, layer []byte) {
	t.Helper()
	return legacyManifest(t, envelope, DSSEMediaType, map[string]string{PredicateTypeAnnotation: predicateType})
}

// imageConfig is the config go-containerregistry writes for cosign's
// single-layer signature images.
type imageConfig struct {
	Architecture string `json:"architecture"`
	Created      string `json:"created"`
	History      []struct {
		Created string `json:"created"`
	} `json:"history"`
	OS     string `json:"os"`
	RootFS struct {
		Type    string          `json:"type"`
		DiffIDs []digest.Digest `json:"diff_ids"`
	} `json:"rootfs"`
	Config struct{} `json:"config"`
}

func legacyManifest(t testing.TB, blob []byte, mediaType string, annotations map[string]string) (manifest, config, layer []byte) {
	t.Helper()
	layer = append([]byte(nil), blob...)
	ld := digest.FromBytes(layer)
	var cfg imageConfig
	cfg.Created = "0001-01-01T00:00:00Z"
	cfg.History = []struct {
		Created string `json:"created"`
	}{{Created: "0001-01-01T00:00:00Z"}}
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = []digest.Digest{ld}
	config = marshal(t, cfg)
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageConfig,
			Digest:    digest.FromBytes(config),
			Size:      int64(len(config)),
		},
		Layers: []ocispec.Descriptor{{
			MediaType:   mediaType,
			Digest:      ld,
			Size:        int64(len(layer)),
			Annotations: annotations,
		}},
	}
	return marshal(t, m), config, layer
}
