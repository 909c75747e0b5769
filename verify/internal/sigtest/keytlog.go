package sigtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"testing"
	"time"

	"github.com/go-openapi/runtime"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/rekor/pkg/generated/models"
	"github.com/sigstore/rekor/pkg/pki"
	"github.com/sigstore/rekor/pkg/types"
	dsseEntry "github.com/sigstore/rekor/pkg/types/dsse"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"
)

// KeyBundleWithTlog is KeyBundle with a Rekor dsse entry of this virtual
// Sigstore (the public key as verifier, integrated time at, an inclusion
// promise): what "cosign sign --key" makes with the transparency log.
func (s *Sigstore) KeyBundleWithTlog(t testing.TB, k *Key, statement []byte, at time.Time) []byte {
	t.Helper()
	sig, err := k.sign(pae(InTotoPayloadType, statement))
	if err != nil {
		t.Fatal(err)
	}
	env := &dsse.Envelope{
		PayloadType: InTotoPayloadType,
		Payload:     base64.StdEncoding.EncodeToString(statement),
		Signatures:  []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}},
	}
	ctx := context.Background()
	proposed, err := types.NewProposedEntry(ctx, dsseEntry.KIND, dsseEntry.New().DefaultVersion(), types.ArtifactProperties{
		ArtifactBytes:  marshal(t, env),
		SignatureBytes: sig,
		PublicKeyBytes: [][]byte{k.PublicPEM},
		PKIFormat:      string(pki.X509),
	})
	if err != nil {
		t.Fatalf("sigtest: rekor entry: %v", err)
	}
	impl, err := types.CreateVersionedEntry(proposed)
	if err != nil {
		t.Fatalf("sigtest: rekor entry: %v", err)
	}
	can, err := types.CanonicalizeEntry(ctx, impl)
	if err != nil {
		t.Fatalf("sigtest: rekor entry: %v", err)
	}
	if _, err := models.UnmarshalProposedEntry(bytes.NewReader(can), runtime.JSONConsumer()); err != nil {
		t.Fatalf("sigtest: rekor entry: %v", err)
	}
	logIDHex, err := s.vs.RekorLogID()
	if err != nil {
		t.Fatal(err)
	}
	logID, err := hex.DecodeString(logIDHex)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := s.vs.GetInclusionProof(can)
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 a Rekor v1 entry is what is built here, as sigstore-go's VirtualSigstore builds it
	entry, err := tlog.NewEntry(can, at.Unix(), 0, logID, nil, proof)
	if err != nil {
		t.Fatalf("sigtest: rekor entry: %v", err)
	}
	tle := entry.TransparencyLogEntry()
	tle.KindVersion = &protorekor.KindVersion{Kind: dsseEntry.KIND, Version: dsseEntry.New().DefaultVersion()}
	set, err := s.vs.RekorSignPayload(tlog.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(can),
		IntegratedTime: tle.IntegratedTime,
		LogIndex:       tle.LogIndex,
		LogID:          logIDHex,
	})
	if err != nil {
		t.Fatal(err)
	}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	b := &protobundle.Bundle{
		MediaType: BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:     &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: k.Hint()}},
			TlogEntries: []*protorekor.TransparencyLogEntry{tle},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload:     statement,
			PayloadType: InTotoPayloadType,
			Signatures:  []*protodsse.Signature{{Sig: sig}},
		}},
	}
	out, err := protojson.Marshal(b)
	if err != nil {
		t.Fatalf("sigtest: marshalling bundle: %v", err)
	}
	return out
}
