package verify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/root"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/referrers"
	"airlock.dev/airlock/verify/internal/sigtest"
)

// memBlobs serves blobs from memory.
type memBlobs map[digest.Digest][]byte

func (m memBlobs) Fetch(_ context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	b, ok := m[d.Digest]
	if !ok {
		return nil, io.ErrUnexpectedEOF
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// fixture is an index with two platform manifests and whatever referrers a case attaches.
type fixture struct {
	img   Image
	blobs memBlobs
}

var (
	indexDigest = digest.FromString("the index")
	amd64       = digest.FromString("linux/amd64 manifest")
	arm64       = digest.FromString("linux/arm64 manifest")
)

func newFixture() *fixture {
	f := &fixture{blobs: memBlobs{}}
	f.img = Image{
		Source: "registry.example.com/team/app:1.0", Repository: "registry.example.com/team/app",
		Digest:    indexDigest,
		Platforms: map[digest.Digest]string{amd64: "linux/amd64", arm64: "linux/arm64"},
		Fetch:     f.blobs,
	}
	return f
}

// attach adds a referrer manifest whose layer blobs are given.
func (f *fixture) attach(subject digest.Digest, manifest []byte, layers ...[]byte) {
	for _, l := range layers {
		f.blobs[digest.FromBytes(l)] = l
	}
	f.img.Referrers = append(f.img.Referrers, Referrer{Digest: digest.FromBytes(manifest), Subject: subject, Kind: referrers.Kind(manifest), Manifest: manifest})
}

func (f *fixture) bundle(t *testing.T, subject digest.Digest, b []byte, predicateType string) {
	m, layer := sigtest.Referrer(t, b, predicateType, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: subject, Size: 100})
	f.attach(subject, m, layer)
}

// legacyKeyless attaches to subject a cosign v2 keyless .sig signing d as identity (issuer issuer), at.
func (f *fixture) legacyKeyless(t *testing.T, subject digest.Digest, ss *sigtest.Sigstore, identity string, d digest.Digest, at time.Time) {
	payload, ann := ss.LegacyKeylessSignature(t, identity, issuer, "registry.example.com/team/app", d, at)
	m, _, layer := sigtest.LegacySigManifestWithAnnotations(t, payload, ann)
	f.attach(subject, m, layer)
}

func keyTrust(t *testing.T, keys ...*sigtest.Key) *Trust {
	tr := &Trust{}
	for i, k := range keys {
		pk, err := ParseKey([]string{"release.pub", "other.pub"}[i], k.PublicPEM)
		if err != nil {
			t.Fatal(err)
		}
		tr.Keys = append(tr.Keys, pk)
	}
	return tr
}

// editBundle decodes bundle JSON, lets edit change it, and encodes it again.
func editBundle(t *testing.T, b []byte, edit func(v map[string]any)) []byte {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	edit(v)
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flipSignature flips a bit of the DSSE signature of bundle JSON b.
func flipSignature(t *testing.T, b []byte) []byte {
	return editBundle(t, b, func(v map[string]any) {
		sig := v["dsseEnvelope"].(map[string]any)["signatures"].([]any)[0].(map[string]any)
		raw, _ := base64.StdEncoding.DecodeString(sig["sig"].(string))
		raw[len(raw)-3] ^= 0x01
		sig["sig"] = base64.StdEncoding.EncodeToString(raw)
	})
}

// setHint sets (or, with "", removes) the key hint of bundle JSON b.
func setHint(t *testing.T, b []byte, hint string) []byte {
	return editBundle(t, b, func(v map[string]any) {
		pk := v["verificationMaterial"].(map[string]any)["publicKey"].(map[string]any)
		if hint == "" {
			delete(pk, "hint")
		} else {
			pk["hint"] = hint
		}
	})
}

// flipEnvelopeSig flips a bit of the first signature of a legacy DSSE envelope.
func flipEnvelopeSig(t *testing.T, env []byte) []byte {
	var v map[string]any
	if err := json.Unmarshal(env, &v); err != nil {
		t.Fatal(err)
	}
	sig := v["signatures"].([]any)[0].(map[string]any)
	raw, _ := base64.StdEncoding.DecodeString(sig["sig"].(string))
	raw[len(raw)-3] ^= 0x01
	sig["sig"] = base64.StdEncoding.EncodeToString(raw)
	out, _ := json.Marshal(v)
	return out
}

// legacyAtt attaches to subject a legacy .att manifest holding envelope, its layer annotated with
// predicateType (which is not signed).
func (f *fixture) legacyAtt(t *testing.T, subject digest.Digest, envelope []byte, predicateType string) {
	m, _, layer := sigtest.LegacyAttManifest(t, envelope, predicateType)
	f.attach(subject, m, layer)
}

// sbom attaches an SPDX SBOM artifact to subject and returns its manifest digest.
func (f *fixture) sbom(t *testing.T, subject digest.Digest) digest.Digest {
	doc := []byte(`{"spdxVersion":"SPDX-2.3","name":"app"}`)
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: "application/spdx+json",
		Config:       ocispec.DescriptorEmptyJSON,
		Layers:       []ocispec.Descriptor{{MediaType: "application/spdx+json", Digest: digest.FromBytes(doc), Size: int64(len(doc))}},
		Subject:      &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: subject, Size: 100},
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	f.attach(subject, b, doc)
	if k := f.img.Referrers[len(f.img.Referrers)-1].Kind; k != referrers.KindSBOM {
		t.Fatalf("fixture SBOM is of kind %s", k)
	}
	return digest.FromBytes(b)
}

func signStmt(d digest.Digest) []byte {
	return sigtest.Statement(d, archive.CosignSignPredicateType, nil)
}

const (
	slsa   = "https://slsa.dev/provenance/v0.2"
	spdx   = "https://spdx.dev/Document"
	issuer = "https://issuer.example.com"
)

func keylessPolicy(subject string, atts ...string) *Policy {
	return &Policy{Path: "policy.yaml", Rules: []Rule{{
		Name: "keyless", Match: []string{"**"}, Require: Requirement{Count: 1}, Attestations: atts,
		Signers: []Signer{{Name: issuer + " / " + subject, Issuer: issuer, Subject: subject}},
	}}}
}

// keyPolicy is one rule for every repository: signed by release.pub, with the attestations atts.
func keyPolicy(atts ...string) *Policy {
	return &Policy{Path: "policy.yaml", Rules: []Rule{{Name: "keys", Match: []string{"**"}, Require: Requirement{Count: 1}, Attestations: atts,
		Signers: []Signer{{Name: "release.pub", Key: "/keys/release.pub"}}}}}
}

func TestVerify(t *testing.T) {
	key, other := sigtest.NewKey(t), sigtest.NewKey(t)
	ss := sigtest.NewSigstore(t)
	trustedRoot, err := root.NewTrustedRootFromJSON(ss.TrustedRootJSON(t))
	if err != nil {
		t.Fatal(err)
	}
	strangerRoot, err := root.NewTrustedRootFromJSON(sigtest.NewSigstore(t).TrustedRootJSON(t))
	if err != nil {
		t.Fatal(err)
	}
	// mixedRoot: the trusted root's logs and timestamp authorities, with another Sigstore's Fulcio CAs
	// (ca) or CT logs (ct) in their place.
	mixedRoot := func(t *testing.T, ca, ct bool) *root.TrustedRoot {
		cas, cts := trustedRoot.FulcioCertificateAuthorities(), trustedRoot.CTLogs()
		if ca {
			cas = strangerRoot.FulcioCertificateAuthorities()
		}
		if ct {
			cts = strangerRoot.CTLogs()
		}
		r, err := root.NewTrustedRoot(root.TrustedRootMediaType01, cas, cts, trustedRoot.TimestampingAuthorities(), trustedRoot.RekorLogs())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	cases := []struct {
		name   string
		setup  func(t *testing.T, f *fixture) *Trust
		pass   bool
		reason string // a failure or check reason must contain this
	}{
		{"key bundle on the index", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), archive.CosignSignPredicateType)
			return keyTrust(t, key)
		}, true, ""},
		{"wrong key", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, other, signStmt(indexDigest)), archive.CosignSignPredicateType)
			return keyTrust(t, key)
		}, false, "signed by a different key"},
		// The key hint is not signed: with the trusted key's hint forged in, or no hint at all, only
		// the cryptographic check can tell the other key's signature apart.
		{"wrong key, hint forged to the trusted key's", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, setHint(t, sigtest.KeyBundle(t, other, signStmt(indexDigest)), key.Hint()), archive.CosignSignPredicateType)
			return keyTrust(t, key)
		}, false, "the signature does not verify with this key, whose hint the bundle names: the bundle or its payload was altered"},
		{"wrong key, no hint", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, setHint(t, sigtest.KeyBundle(t, other, signStmt(indexDigest)), ""), archive.CosignSignPredicateType)
			return keyTrust(t, key)
		}, false, "the signature does not verify with this key: signed by another key, or altered (the bundle names no key hint)"},
		{"signature over another digest", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(digest.FromString("some other image"))), archive.CosignSignPredicateType)
			return keyTrust(t, key)
		}, false, "the signature is valid, but it signs another digest, not " + indexDigest.String()},
		{"tampered bundle", func(t *testing.T, f *fixture) *Trust {
			b := sigtest.KeyBundle(t, key, signStmt(indexDigest))
			var v map[string]any
			json.Unmarshal(b, &v)
			env := v["dsseEnvelope"].(map[string]any)
			sig := env["signatures"].([]any)[0].(map[string]any)
			raw, _ := base64.StdEncoding.DecodeString(sig["sig"].(string))
			raw[len(raw)-3] ^= 0x01
			sig["sig"] = base64.StdEncoding.EncodeToString(raw)
			b, _ = json.Marshal(v)
			f.bundle(t, indexDigest, b, archive.CosignSignPredicateType)
			return keyTrust(t, key)
		}, false, "was altered"},
		{"tampered legacy payload", func(t *testing.T, f *fixture) *Trust {
			payload, sig := sigtest.LegacySignature(t, key, "registry.example.com/team/app", indexDigest)
			payload = bytes.Replace(payload, []byte("team/app"), []byte("team/evil"), 1)
			m, _, layer := sigtest.LegacySigManifest(t, payload, sig)
			f.attach(indexDigest, m, layer)
			return keyTrust(t, key)
		}, false, "invalid signature"},
		{"legacy .sig over another digest", func(t *testing.T, f *fixture) *Trust {
			payload, sig := sigtest.LegacySignature(t, key, "registry.example.com/team/app", amd64)
			m, _, layer := sigtest.LegacySigManifest(t, payload, sig)
			f.attach(indexDigest, m, layer)
			return keyTrust(t, key)
		}, false, "signs " + amd64.String()},
		{"legacy .sig valid", func(t *testing.T, f *fixture) *Trust {
			payload, sig := sigtest.LegacySignature(t, key, "registry.example.com/team/app", indexDigest)
			m, _, layer := sigtest.LegacySigManifest(t, payload, sig)
			f.attach(indexDigest, m, layer)
			return keyTrust(t, key)
		}, true, ""},
		{"attestation only, where a signature is required", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, sigtest.Statement(indexDigest, slsa, map[string]any{"buildType": "x"})), slsa)
			return keyTrust(t, key)
		}, false, "an attestation is not a signature"},
		{"required predicate type missing", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), archive.CosignSignPredicateType)
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, sigtest.Statement(indexDigest, slsa, nil)), slsa)
			tr := keyTrust(t, key)
			tr.Policy = keyPolicy(slsa, spdx)
			return tr
		}, false, "attestation " + spdx + ": none found"},
		{"required attestations present (bundle and legacy .att)", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), archive.CosignSignPredicateType)
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, sigtest.Statement(indexDigest, slsa, nil)), slsa)
			m, _, layer := sigtest.LegacyAttManifest(t, sigtest.LegacyAttestation(t, key, sigtest.Statement(indexDigest, spdx, nil)), spdx)
			f.attach(indexDigest, m, layer)
			tr := keyTrust(t, key)
			tr.Policy = keyPolicy(slsa, spdx)
			return tr
		}, true, ""},
		// Security finding: a message signature (cosign sign-blob over the index manifest) by the
		// release key, relabelled as SLSA provenance by the referrer manifest's predicateType
		// annotation, which nobody signed, must not satisfy an attestation requirement.
		{"message signature relabelled as an attestation by the manifest annotation", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), archive.CosignSignPredicateType)
			f.bundle(t, indexDigest, sigtest.MessageBundle(t, key, []byte("the index")), slsa)
			tr := keyTrust(t, key)
			tr.Policy = keyPolicy(slsa)
			return tr
		}, false, "relabelled: the referrer manifest's annotation says predicate type " + slsa + ", but what release.pub signed is a message signature"},
		{"attestation relabelled to another predicate type by the manifest annotation", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), archive.CosignSignPredicateType)
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, sigtest.Statement(indexDigest, spdx, nil)), slsa)
			tr := keyTrust(t, key)
			tr.Policy = keyPolicy(slsa)
			return tr
		}, false, "but what release.pub signed is an in-toto statement of predicate type " + spdx},
		{"message signature over the index, unlabelled, is a signature", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.MessageBundle(t, key, []byte("the index")), "")
			return keyTrust(t, key)
		}, true, ""},
		// A message signature's failures are told apart from the bundle (its digest, then its
		// signature alone), as an envelope's are: not from the words of sigstore-go's error.
		{"message signature over another digest", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.MessageBundle(t, key, []byte("another index")), "")
			return keyTrust(t, key)
		}, false, "the signature is valid, but it signs another digest, not " + indexDigest.String()},
		{"message signature by another key, no hint", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, setHint(t, sigtest.MessageBundle(t, other, []byte("the index")), ""), "")
			return keyTrust(t, key)
		}, false, "the signature does not verify with this key: signed by another key, or altered (the bundle names no key hint)"},
		{"bundle attestation with an invalid signature", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), archive.CosignSignPredicateType)
			f.bundle(t, indexDigest, flipSignature(t, sigtest.KeyBundle(t, key, sigtest.Statement(indexDigest, slsa, nil))), slsa)
			tr := keyTrust(t, key)
			tr.Policy = keyPolicy(slsa)
			return tr
		}, false, "attestation " + slsa + ": none valid"},
		{"bundle attestation of another predicate type", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), archive.CosignSignPredicateType)
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, sigtest.Statement(indexDigest, spdx, nil)), spdx)
			tr := keyTrust(t, key)
			tr.Policy = keyPolicy(slsa)
			return tr
		}, false, "attestation " + slsa + ": none found"},
		{"bundle attestation of another subject", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), archive.CosignSignPredicateType)
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, sigtest.Statement(amd64, slsa, nil)), slsa)
			tr := keyTrust(t, key)
			tr.Policy = keyPolicy(slsa)
			return tr
		}, false, "the signature is valid, but it signs another digest, not " + indexDigest.String()},
		{"legacy .att by another key", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), archive.CosignSignPredicateType)
			f.legacyAtt(t, indexDigest, sigtest.LegacyAttestation(t, other, sigtest.Statement(indexDigest, spdx, nil)), spdx)
			tr := keyTrust(t, key)
			tr.Policy = keyPolicy(spdx)
			return tr
		}, false, "attestation " + spdx + ": none valid"},
		{"legacy .att with an altered signature", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), archive.CosignSignPredicateType)
			f.legacyAtt(t, indexDigest, flipEnvelopeSig(t, sigtest.LegacyAttestation(t, key, sigtest.Statement(indexDigest, spdx, nil))), spdx)
			tr := keyTrust(t, key)
			tr.Policy = keyPolicy(spdx)
			return tr
		}, false, "release.pub: the DSSE signature does not verify with this key"},
		{"legacy .att of another subject", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), archive.CosignSignPredicateType)
			f.legacyAtt(t, indexDigest, sigtest.LegacyAttestation(t, key, sigtest.Statement(amd64, spdx, nil)), spdx)
			tr := keyTrust(t, key)
			tr.Policy = keyPolicy(spdx)
			return tr
		}, false, "the attestation is valid but its subject is not " + indexDigest.String()},
		{"legacy .att of another predicate type, annotated as the required one", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), archive.CosignSignPredicateType)
			f.legacyAtt(t, indexDigest, sigtest.LegacyAttestation(t, key, sigtest.Statement(indexDigest, slsa, nil)), spdx)
			tr := keyTrust(t, key)
			tr.Policy = keyPolicy(spdx)
			return tr
		}, false, "attestation " + spdx + ": none found"},
		{"legacy .att whose payload is not in-toto", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), archive.CosignSignPredicateType)
			f.legacyAtt(t, indexDigest, sigtest.LegacyEnvelope(t, key, "text/plain", sigtest.Statement(indexDigest, spdx, nil)), spdx)
			tr := keyTrust(t, key)
			tr.Policy = keyPolicy(spdx)
			return tr
		}, false, "DSSE payload type text/plain is not an in-toto statement"},
		{"requireTlog: key bundle without a tlog entry", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), archive.CosignSignPredicateType)
			tr := keyTrust(t, key)
			tr.Policy = keyPolicy()
			tr.Policy.Rules[0].Signers[0].RequireTlog = true
			return tr
		}, false, "release.pub: no transparency log entry, and the policy requires one for this signer (requireTlog: true)"},
		{"requireTlog: key bundle with a tlog entry", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, ss.KeyBundleWithTlog(t, key, signStmt(indexDigest), time.Now()), archive.CosignSignPredicateType)
			tr := keyTrust(t, key)
			tr.TrustedRoot = trustedRoot
			tr.Policy = keyPolicy()
			tr.Policy.Rules[0].Signers[0].RequireTlog = true
			return tr
		}, true, ""},
		{"key bundle with a tlog entry of a log the trusted root does not know", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, ss.KeyBundleWithTlog(t, key, signStmt(indexDigest), time.Now()), archive.CosignSignPredicateType)
			tr := keyTrust(t, key)
			tr.TrustedRoot = strangerRoot
			return tr
		}, false, "not enough verified log entries"},
		{"requireTlog: legacy .sig", func(t *testing.T, f *fixture) *Trust {
			payload, sig := sigtest.LegacySignature(t, key, "registry.example.com/team/app", indexDigest)
			m, _, layer := sigtest.LegacySigManifest(t, payload, sig)
			f.attach(indexDigest, m, layer)
			tr := keyTrust(t, key)
			tr.Policy = keyPolicy()
			tr.Policy.Rules[0].Signers[0].RequireTlog = true
			return tr
		}, false, "a key-based legacy cosign .sig is checked without one"},
		{"signature on one platform only", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, amd64, sigtest.KeyBundle(t, key, signStmt(amd64)), archive.CosignSignPredicateType)
			return keyTrust(t, key)
		}, false, "valid signatures over the image from: none"},
		{"signatures on every platform", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, amd64, sigtest.KeyBundle(t, key, signStmt(amd64)), archive.CosignSignPredicateType)
			f.bundle(t, arm64, sigtest.KeyBundle(t, key, signStmt(arm64)), archive.CosignSignPredicateType)
			return keyTrust(t, key)
		}, true, ""},
		{"keyless, identity allowed", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, ss.KeylessBundle(t, "release@example.com", issuer, signStmt(indexDigest), time.Now()), archive.CosignSignPredicateType)
			return &Trust{TrustedRoot: trustedRoot, Policy: keylessPolicy("release@example.com")}
		}, true, ""},
		{"keyless, identity not allowed by the policy", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, ss.KeylessBundle(t, "mallory@example.com", issuer, signStmt(indexDigest), time.Now()), archive.CosignSignPredicateType)
			return &Trust{TrustedRoot: trustedRoot, Policy: keylessPolicy("release@example.com")}
		}, false, "identity not allowed: the certificate is for mallory@example.com"},
		{"keyless, certificate not valid at the signing time", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, ss.KeylessBundle(t, "release@example.com", issuer, signStmt(indexDigest), time.Now().Add(sigtest.LeafValidity+time.Hour)), archive.CosignSignPredicateType)
			return &Trust{TrustedRoot: trustedRoot, Policy: keylessPolicy("release@example.com")}
		}, false, "outside certificate validity"},
		{"keyless, transparency log the trusted root does not know", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, ss.KeylessBundle(t, "release@example.com", issuer, signStmt(indexDigest), time.Now()), archive.CosignSignPredicateType)
			return &Trust{TrustedRoot: strangerRoot, Policy: keylessPolicy("release@example.com")}
		}, false, "not enough verified log entries"},
		{"keyless legacy .sig valid", func(t *testing.T, f *fixture) *Trust {
			f.legacyKeyless(t, indexDigest, ss, "release@example.com", indexDigest, time.Now())
			return &Trust{TrustedRoot: trustedRoot, Policy: keylessPolicy("release@example.com")}
		}, true, ""},
		{"keyless legacy .sig valid on every platform, URI identity by regexp", func(t *testing.T, f *fixture) *Trust {
			wf := "https://github.com/team/app/.github/workflows/release.yml@refs/heads/main"
			f.legacyKeyless(t, amd64, ss, wf, amd64, time.Now())
			f.legacyKeyless(t, arm64, ss, wf, arm64, time.Now())
			p := keylessPolicy("")
			p.Rules[0].Signers[0].SubjectRegExp = `https://github\.com/team/app/\.github/workflows/.*`
			return &Trust{TrustedRoot: trustedRoot, Policy: p}
		}, true, ""},
		{"keyless legacy .sig, identity not allowed by the policy", func(t *testing.T, f *fixture) *Trust {
			f.legacyKeyless(t, indexDigest, ss, "mallory@example.com", indexDigest, time.Now())
			return &Trust{TrustedRoot: trustedRoot, Policy: keylessPolicy("release@example.com")}
		}, false, "identity not allowed: the certificate is for mallory@example.com"},
		{"keyless legacy .sig, signed outside the certificate validity", func(t *testing.T, f *fixture) *Trust {
			f.legacyKeyless(t, indexDigest, ss, "release@example.com", indexDigest, time.Now().Add(sigtest.LeafValidity+time.Hour))
			return &Trust{TrustedRoot: trustedRoot, Policy: keylessPolicy("release@example.com")}
		}, false, "certificate not valid at the transparency log's integrated time"},
		{"keyless legacy .sig, transparency log the trusted root does not know", func(t *testing.T, f *fixture) *Trust {
			f.legacyKeyless(t, indexDigest, ss, "release@example.com", indexDigest, time.Now())
			return &Trust{TrustedRoot: strangerRoot, Policy: keylessPolicy("release@example.com")}
		}, false, "unknown transparency log"},
		{"keyless legacy .sig over another digest", func(t *testing.T, f *fixture) *Trust {
			f.legacyKeyless(t, indexDigest, ss, "release@example.com", amd64, time.Now())
			return &Trust{TrustedRoot: trustedRoot, Policy: keylessPolicy("release@example.com")}
		}, false, "signs " + amd64.String()},
		{"keyless legacy .sig, tampered payload", func(t *testing.T, f *fixture) *Trust {
			payload, ann := ss.LegacyKeylessSignature(t, "release@example.com", issuer, "registry.example.com/team/app", indexDigest, time.Now())
			payload = bytes.Replace(payload, []byte("team/app"), []byte("team/evil"), 1)
			m, _, layer := sigtest.LegacySigManifestWithAnnotations(t, payload, ann)
			f.attach(indexDigest, m, layer)
			return &Trust{TrustedRoot: trustedRoot, Policy: keylessPolicy("release@example.com")}
		}, false, "bad signature: the payload was altered"},
		{"keyless legacy .sig, tampered signature", func(t *testing.T, f *fixture) *Trust {
			payload, ann := ss.LegacyKeylessSignature(t, "release@example.com", issuer, "registry.example.com/team/app", indexDigest, time.Now())
			_, otherAnn := ss.LegacyKeylessSignature(t, "release@example.com", issuer, "registry.example.com/team/app", indexDigest, time.Now())
			ann[sigtest.SignatureAnnotation] = otherAnn[sigtest.SignatureAnnotation] // a valid signature, by another key
			m, _, layer := sigtest.LegacySigManifestWithAnnotations(t, payload, ann)
			f.attach(indexDigest, m, layer)
			return &Trust{TrustedRoot: trustedRoot, Policy: keylessPolicy("release@example.com")}
		}, false, "bad signature: the signature annotation is not the signature the Rekor entry logged"},
		{"keyless legacy .sig, Rekor entry altered", func(t *testing.T, f *fixture) *Trust {
			payload, ann := ss.LegacyKeylessSignature(t, "release@example.com", issuer, "registry.example.com/team/app", indexDigest, time.Now())
			ann[sigtest.BundleAnnotation] = strings.Replace(ann[sigtest.BundleAnnotation], `"logIndex":4242`, `"logIndex":4243`, 1)
			m, _, layer := sigtest.LegacySigManifestWithAnnotations(t, payload, ann)
			f.attach(indexDigest, m, layer)
			return &Trust{TrustedRoot: trustedRoot, Policy: keylessPolicy("release@example.com")}
		}, false, "signed entry timestamp does not verify"},
		{"keyless legacy .sig, certificate of a CA the trusted root does not know", func(t *testing.T, f *fixture) *Trust {
			f.legacyKeyless(t, indexDigest, ss, "release@example.com", indexDigest, time.Now())
			return &Trust{TrustedRoot: mixedRoot(t, true, false), Policy: keylessPolicy("release@example.com")}
		}, false, "the certificate is not issued by a Fulcio CA of the trusted root valid at"},
		{"keyless legacy .sig, SCT of a CT log the trusted root does not know", func(t *testing.T, f *fixture) *Trust {
			f.legacyKeyless(t, indexDigest, ss, "release@example.com", indexDigest, time.Now())
			return &Trust{TrustedRoot: mixedRoot(t, false, true), Policy: keylessPolicy("release@example.com")}
		}, false, "the certificate has no valid SCT from a CT log of the trusted root"},
		{"keyless legacy .sig, rule with key signers only", func(t *testing.T, f *fixture) *Trust {
			f.legacyKeyless(t, indexDigest, ss, "release@example.com", indexDigest, time.Now())
			tr := keyTrust(t, key)
			tr.TrustedRoot = trustedRoot
			return tr
		}, false, "the rule has no keyless signer"},
		{"no policy rule matches", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), archive.CosignSignPredicateType)
			tr := keyTrust(t, key)
			tr.Policy = keyPolicy()
			tr.Policy.Rules[0].Match = []string{"other.example.com/**"}
			return tr
		}, false, "no rule of policy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture()
			tr := c.setup(t, f)
			res := tr.Verify(context.Background(), f.img)
			if res.Passed != c.pass {
				t.Fatalf("passed = %v, want %v; failures %v; checks %+v %+v", res.Passed, c.pass, res.Failures, res.Signatures, res.Attestations)
			}
			if c.reason == "" {
				return
			}
			all := strings.Join(res.Failures, "\n")
			for _, ch := range append(res.Signatures, res.Attestations...) {
				all += "\n" + ch.Reason
			}
			t.Logf("reasons:%s", all)
			if !strings.Contains(all, c.reason) {
				t.Errorf("no reason mentions %q:\n%s", c.reason, all)
			}
		})
	}
}

// Signatures on referrers (a signature on an SBOM) are verified and reported in Result.Referrers;
// an invalid one fails the image, an unknown signer does not, and a rule can require signed SBOMs.
func TestReferrerSignatures(t *testing.T) {
	key, other := sigtest.NewKey(t), sigtest.NewKey(t)
	signed := func(t *testing.T, f *fixture) { // the image itself is signed
		f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), archive.CosignSignPredicateType)
	}
	requireSigned := func(t *testing.T) *Trust {
		tr := keyTrust(t, key)
		tr.Policy = keyPolicy()
		tr.Policy.Rules[0].RequireSignedReferrers = []string{"sbom"}
		return tr
	}
	cases := []struct {
		name   string
		setup  func(t *testing.T, f *fixture) *Trust
		pass   bool
		status string // of the one check on the SBOM; "" for none
		reason string // a failure must contain it; "" for none
	}{
		{"signed SBOM", func(t *testing.T, f *fixture) *Trust {
			signed(t, f)
			s := f.sbom(t, amd64)
			f.bundle(t, s, sigtest.KeyBundle(t, key, signStmt(s)), archive.CosignSignPredicateType)
			return keyTrust(t, key)
		}, true, StatusValid, ""},
		{"tampered signature bundle on an SBOM", func(t *testing.T, f *fixture) *Trust {
			signed(t, f)
			s := f.sbom(t, indexDigest)
			f.bundle(t, s, flipSignature(t, sigtest.KeyBundle(t, key, signStmt(s))), archive.CosignSignPredicateType)
			return keyTrust(t, key)
		}, false, StatusInvalid, "invalid signature on sbom %.12s (referrer "},
		{"signature on an SBOM over another digest", func(t *testing.T, f *fixture) *Trust {
			signed(t, f)
			s := f.sbom(t, indexDigest)
			f.bundle(t, s, sigtest.KeyBundle(t, key, signStmt(indexDigest)), archive.CosignSignPredicateType)
			return keyTrust(t, key)
		}, false, StatusInvalid, "it signs another digest, not sha256:%s"},
		{"SBOM signed by an unknown key", func(t *testing.T, f *fixture) *Trust {
			signed(t, f)
			s := f.sbom(t, indexDigest)
			f.bundle(t, s, sigtest.KeyBundle(t, other, signStmt(s)), archive.CosignSignPredicateType)
			return keyTrust(t, key)
		}, true, StatusUnknownSigner, ""},
		{"unsigned SBOM", func(t *testing.T, f *fixture) *Trust {
			signed(t, f)
			f.sbom(t, indexDigest)
			return keyTrust(t, key)
		}, true, "", ""},
		{"unsigned SBOM, signed SBOMs required", func(t *testing.T, f *fixture) *Trust {
			signed(t, f)
			f.sbom(t, arm64)
			return requireSigned(t)
		}, false, "", "sbom %.12s (on linux/arm64): the rule requires signed sbom referrers, and it has no valid signature by [release.pub]; none found"},
		{"SBOM signed by an unknown key, signed SBOMs required", func(t *testing.T, f *fixture) *Trust {
			signed(t, f)
			s := f.sbom(t, indexDigest)
			f.bundle(t, s, sigtest.KeyBundle(t, other, signStmt(s)), archive.CosignSignPredicateType)
			return requireSigned(t)
		}, false, StatusUnknownSigner, "no valid signature by [release.pub]; found only: unknown-signer"},
		{"signed SBOM, signed SBOMs required", func(t *testing.T, f *fixture) *Trust {
			signed(t, f)
			s := f.sbom(t, indexDigest)
			f.bundle(t, s, sigtest.KeyBundle(t, key, signStmt(s)), archive.CosignSignPredicateType)
			return requireSigned(t)
		}, true, StatusValid, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture()
			tr := c.setup(t, f)
			res := tr.Verify(context.Background(), f.img)
			var sbom Referrer
			for _, r := range f.img.Referrers {
				if r.Kind == referrers.KindSBOM {
					sbom = r
				}
			}
			if res.Passed != c.pass {
				t.Fatalf("passed = %v, want %v; failures %q; referrer checks %+v", res.Passed, c.pass, res.Failures, res.Referrers)
			}
			if len(res.Signatures) != 1 || !res.Signatures[0].Valid {
				t.Errorf("image signatures = %+v, want the one valid (a signature on the SBOM is not one)", res.Signatures)
			}
			if c.status == "" {
				if len(res.Referrers) != 0 {
					t.Errorf("referrer checks = %+v, want none", res.Referrers)
				}
			} else {
				if len(res.Referrers) != 1 {
					t.Fatalf("referrer checks = %+v, want one", res.Referrers)
				}
				ch := res.Referrers[0]
				if ch.Status != c.status || ch.Valid != (c.status == StatusValid) || ch.Subject != sbom.Digest ||
					ch.SubjectKind != referrers.KindSBOM || ch.Covers != "sbom "+sbom.Digest.Encoded()[:12] {
					t.Errorf("referrer check = %+v, want status %s on sbom %s", ch, c.status, sbom.Digest)
				}
				if c.status == StatusValid && ch.Signer != "release.pub" {
					t.Errorf("signer = %q, want release.pub", ch.Signer)
				}
			}
			if c.reason == "" {
				return
			}
			want := c.reason
			if strings.Contains(want, "%") {
				want = fmt.Sprintf(want, sbom.Digest.Encoded())
			}
			if all := strings.Join(res.Failures, "\n"); !strings.Contains(all, want) {
				t.Errorf("no failure mentions %q:\n%s", want, all)
			}
		})
	}
}

// A valid check says whether it had a transparency log entry.
func TestCheckReportsTlog(t *testing.T) {
	key := sigtest.NewKey(t)
	ss := sigtest.NewSigstore(t)
	trustedRoot, err := root.NewTrustedRootFromJSON(ss.TrustedRootJSON(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, withTlog := range []bool{false, true} {
		f := newFixture()
		b := sigtest.KeyBundle(t, key, signStmt(indexDigest))
		if withTlog {
			b = ss.KeyBundleWithTlog(t, key, signStmt(indexDigest), time.Now())
		}
		f.bundle(t, indexDigest, b, archive.CosignSignPredicateType)
		tr := keyTrust(t, key)
		tr.TrustedRoot = trustedRoot
		res := tr.Verify(context.Background(), f.img)
		if !res.Passed || len(res.Signatures) != 1 || res.Signatures[0].Tlog != withTlog || res.Signatures[0].Status != StatusValid {
			t.Errorf("with tlog %v: passed %v, checks %+v, want one valid check with tlog %v", withTlog, res.Passed, res.Signatures, withTlog)
		}
	}
}
