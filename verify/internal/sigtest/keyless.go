package sigtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	ctx509util "github.com/google/certificate-transparency-go/x509util"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"
)

// LeafValidity is how long a keyless leaf certificate is valid, as Fulcio
// issues them.
const LeafValidity = 10 * time.Minute

// trustWindow is how far back and forward from NewSigstore's time the trust
// material (CA, TSA, logs) is valid.
const trustWindow = 365 * 24 * time.Hour

var (
	oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
)

// Sigstore is a virtual Sigstore (Fulcio CA, Rekor, CT log, TSA) for keyless
// signing, offline.
//
// Rekor is sigstore-go's pkg/testing/ca VirtualSigstore (its entries, signed
// entry timestamps and inclusion proofs). The Fulcio CA, the CT log and the
// TSA are this package's own: VirtualSigstore's leaf certificates carry no
// embedded SCT (so verify.WithSignedCertificateTimestamps could never pass),
// its CT log key is unexported, and its TSA always stamps time.Now() with a
// 10-minute leaf. The trust material here is valid for a year either side of
// NewSigstore.
type Sigstore struct {
	vs *ca.VirtualSigstore

	start, end time.Time

	fulcioRoot, fulcioInter *x509.Certificate
	fulcioInterKey          *ecdsa.PrivateKey

	ctKey *ecdsa.PrivateKey

	tsaRoot, tsaInter, tsaLeaf *x509.Certificate
	tsaLeafKey                 *ecdsa.PrivateKey
}

// NewSigstore creates a fresh virtual Sigstore with its own keys.
func NewSigstore(t testing.TB) *Sigstore {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatalf("sigtest: virtual sigstore: %v", err)
	}
	now := time.Now().Truncate(time.Second)
	s := &Sigstore{vs: vs, start: now.Add(-trustWindow), end: now.Add(trustWindow)}

	var rootKey, tsaRootKey, tsaInterKey *ecdsa.PrivateKey
	s.fulcioRoot, rootKey = s.caCert(t, "sigstore", nil, nil, nil)
	s.fulcioInter, s.fulcioInterKey = s.caCert(t, "sigstore-intermediate", s.fulcioRoot, rootKey,
		[]x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning})
	s.tsaRoot, tsaRootKey = s.caCert(t, "sigstore-tsa", nil, nil, nil)
	s.tsaInter, tsaInterKey = s.caCert(t, "sigstore-tsa-intermediate", s.tsaRoot, tsaRootKey,
		[]x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping})

	s.tsaLeafKey = newECKey(t)
	ekuTimestamping, err := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
	if err != nil {
		t.Fatal(err)
	}
	s.tsaLeaf = createCert(t, &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: "sigstore-tsa-leaf", Organization: []string{"sigstore.dev"}},
		NotBefore:    s.start,
		NotAfter:     s.end,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// RFC 3161 wants the timestamping EKU and wants it critical.
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: true, Value: ekuTimestamping}},
	}, s.tsaInter, &s.tsaLeafKey.PublicKey, tsaInterKey)

	s.ctKey = newECKey(t)
	return s
}

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("sigtest: generating key: %v", err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func createCert(t testing.TB, tmpl, parent *x509.Certificate, pub any, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatalf("sigtest: creating certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// caCert makes a CA certificate valid for the trust window; a root when
// parent is nil.
func (s *Sigstore) caCert(t testing.TB, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, eku []x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := newECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"sigstore.dev"}},
		NotBefore:             s.start,
		NotAfter:              s.end,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	return createCert(t, tmpl, parent, &key.PublicKey, parentKey), key
}

func logID(pub crypto.PublicKey) ([32]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(der), nil
}

// trustedRoot assembles the trust material.
func (s *Sigstore) trustedRoot(t testing.TB) *root.TrustedRoot {
	t.Helper()
	fulcio := &root.FulcioCertificateAuthority{
		Root:                s.fulcioRoot,
		Intermediates:       []*x509.Certificate{s.fulcioInter},
		ValidityPeriodStart: s.start,
		ValidityPeriodEnd:   s.end,
		URI:                 "https://fulcio.sigtest.invalid",
	}
	tsa := &root.SigstoreTimestampingAuthority{
		Root:                s.tsaRoot,
		Intermediates:       []*x509.Certificate{s.tsaInter},
		Leaf:                s.tsaLeaf,
		ValidityPeriodStart: s.start,
		ValidityPeriodEnd:   s.end,
		URI:                 "https://tsa.sigtest.invalid",
	}
	tlogs := func(pub crypto.PublicKey, baseURL string) map[string]*root.TransparencyLog {
		id, err := logID(pub)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]*root.TransparencyLog{hex.EncodeToString(id[:]): {
			BaseURL:             baseURL,
			ID:                  id[:],
			ValidityPeriodStart: s.start,
			HashFunc:            crypto.SHA256,
			PublicKey:           pub,
			SignatureHashFunc:   crypto.SHA256,
		}}
	}
	var rekorPub crypto.PublicKey
	for _, l := range s.vs.RekorLogs() {
		rekorPub = l.PublicKey
	}
	// The Rekor checkpoints VirtualSigstore signs name the origin "rekor.localhost".
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{fulcio},
		tlogs(s.ctKey.Public(), "https://ctfe.sigtest.invalid"),
		[]root.TimestampingAuthority{tsa},
		tlogs(rekorPub, "https://rekor.localhost"))
	if err != nil {
		t.Fatalf("sigtest: trusted root: %v", err)
	}
	return tr
}

// TrustedRootJSON exports the trust material as a trusted_root.json that
// sigstore-go's root.NewTrustedRootFromJSON reads back: Fulcio CA chain with
// validity, Rekor log key and log ID, CT log key, TSA chain.
func (s *Sigstore) TrustedRootJSON(t testing.TB) []byte {
	t.Helper()
	b, err := s.trustedRoot(t).MarshalJSON()
	if err != nil {
		t.Fatalf("sigtest: marshalling trusted root: %v", err)
	}
	return b
}

// KeylessBundle signs statement as identity (SAN: an e-mail address, or a URI
// when it contains "://") issued by issuer (OIDC issuer URL) at time at, with
// a Rekor entry (inclusion promise and inclusion proof) and an RFC 3161
// timestamp, and returns the bundle JSON (v0.3).
//
// As with VirtualSigstore and Fulcio, the leaf certificate is issued now,
// when KeylessBundle is called, and is valid for LeafValidity (from one
// second before now). at is the signing time the observers attest: the TSA
// timestamp's genTime and the Rekor integrated time. An at outside the leaf's
// validity gives a bundle that must fail verification; to sign in the past
// with a matching certificate use KeylessBundleIssuedAt.
func (s *Sigstore) KeylessBundle(t testing.TB, identity, issuer string, statement []byte, at time.Time) []byte {
	t.Helper()
	return s.KeylessBundleIssuedAt(t, identity, issuer, statement, time.Now().Add(-time.Second), at)
}

// KeylessBundleIssuedAt is KeylessBundle with the leaf certificate issued at
// issued (valid from issued to issued+LeafValidity) instead of now.
func (s *Sigstore) KeylessBundleIssuedAt(t testing.TB, identity, issuer string, statement []byte, issued, at time.Time) []byte {
	t.Helper()
	leafKey := newECKey(t)
	leaf := s.leafCert(t, identity, issuer, &leafKey.PublicKey, issued)

	// DSSE over the statement, signed by the leaf key.
	sum := sha256.Sum256(pae(InTotoPayloadType, statement))
	sig, err := ecdsa.SignASN1(rand.Reader, leafKey, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	env := &dsse.Envelope{
		PayloadType: InTotoPayloadType,
		Payload:     base64.StdEncoding.EncodeToString(statement),
		Signatures:  []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}},
	}

	tle := s.tlogEntry(t, leaf, env, sig, at)
	tsr := s.timestamp(t, sig, at)

	b := &protobundle.Bundle{
		MediaType: BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_Certificate{
				Certificate: &protocommon.X509Certificate{RawBytes: leaf.Raw},
			},
			TlogEntries: []*protorekor.TransparencyLogEntry{tle},
			TimestampVerificationData: &protobundle.TimestampVerificationData{
				Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: tsr}},
			},
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

// leafCert issues a Fulcio-style leaf with an embedded SCT from the CT log.
func (s *Sigstore) leafCert(t testing.TB, identity, issuer string, pub *ecdsa.PublicKey, issued time.Time) *x509.Certificate {
	t.Helper()
	issuerV2, err := asn1.MarshalWithParams(issuer, "utf8")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		NotBefore:    issued,
		NotAfter:     issued.Add(LeafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{
			{Id: oidIssuerV1, Value: []byte(issuer)},
			{Id: oidIssuerV2, Value: issuerV2},
		},
	}
	if strings.Contains(identity, "://") {
		u, err := url.Parse(identity)
		if err != nil {
			t.Fatalf("sigtest: identity %q: %v", identity, err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	} else {
		tmpl.EmailAddresses = []string{identity}
	}

	// The precertificate: the final certificate without the SCT list. Go
	// writes ExtraExtensions last and in order, so appending the SCT list
	// below leaves everything else in the TBS byte for byte the same, which
	// is what the SCT verifier rebuilds.
	pre := createCert(t, tmpl, s.fulcioInter, pub, s.fulcioInterKey)
	id, err := logID(s.ctKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	sct := ct.SignedCertificateTimestamp{
		SCTVersion: ct.V1,
		LogID:      ct.LogID{KeyID: id},
		Timestamp:  uint64(issued.UnixMilli()),
	}
	entry := ct.LogEntry{Leaf: ct.MerkleTreeLeaf{
		Version:  ct.V1,
		LeafType: ct.TimestampedEntryLeafType,
		TimestampedEntry: &ct.TimestampedEntry{
			Timestamp: sct.Timestamp,
			EntryType: ct.PrecertLogEntryType,
			PrecertEntry: &ct.PreCert{
				IssuerKeyHash:  sha256.Sum256(s.fulcioInter.RawSubjectPublicKeyInfo),
				TBSCertificate: pre.RawTBSCertificate,
			},
		},
	}}
	input, err := ct.SerializeSCTSignatureInput(sct, entry)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(input)
	sctSig, err := ecdsa.SignASN1(rand.Reader, s.ctKey, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sct.Signature = ct.DigitallySigned{
		Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA},
		Signature: sctSig,
	}
	list, err := ctx509util.MarshalSCTsIntoSCTList([]*ct.SignedCertificateTimestamp{&sct})
	if err != nil {
		t.Fatal(err)
	}
	listBytes, err := cttls.Marshal(*list)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := asn1.Marshal(listBytes)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: asn1.ObjectIdentifier(ctx509.OIDExtensionCTSCT), Value: ext})
	return createCert(t, tmpl, s.fulcioInter, pub, s.fulcioInterKey)
}

// tlogEntry makes a Rekor v1 dsse entry with integrated time at, an
// inclusion promise (SET) and an inclusion proof with checkpoint.
func (s *Sigstore) tlogEntry(t testing.TB, leaf *x509.Certificate, env *dsse.Envelope, sig []byte, at time.Time) *protorekor.TransparencyLogEntry {
	t.Helper()
	entry, err := s.vs.GenerateTlogEntry(leaf, env, sig, at.Unix(), true)
	if err != nil {
		t.Fatalf("sigtest: rekor entry: %v", err)
	}
	tle := entry.TransparencyLogEntry()
	var kv struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(tle.CanonicalizedBody, &kv); err != nil {
		t.Fatal(err)
	}
	tle.KindVersion = &protorekor.KindVersion{Kind: kv.Kind, Version: kv.APIVersion}
	// tlog.NewEntry keeps the SET to itself; sign the same payload again.
	set, err := s.vs.RekorSignPayload(tlog.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(tle.CanonicalizedBody),
		IntegratedTime: tle.IntegratedTime,
		LogIndex:       tle.LogIndex,
		LogID:          hex.EncodeToString(tle.LogId.KeyId),
	})
	if err != nil {
		t.Fatal(err)
	}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	return tle
}

// timestamp is an RFC 3161 response over sig with genTime at.
func (s *Sigstore) timestamp(t testing.TB, sig []byte, at time.Time) []byte {
	t.Helper()
	sum := sha256.Sum256(sig)
	ts := timestamp.Timestamp{
		HashAlgorithm: crypto.SHA256,
		HashedMessage: sum[:],
		Time:          at,
		Policy:        asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 2},
	}
	resp, err := ts.CreateResponseWithOpts(s.tsaLeaf, s.tsaLeafKey, crypto.SHA256)
	if err != nil {
		t.Fatalf("sigtest: timestamp: %v", err)
	}
	return resp
}
