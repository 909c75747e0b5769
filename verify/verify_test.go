package verify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/root"

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

func signStmt(d digest.Digest) []byte { return sigtest.Statement(d, CosignSignPredicateType, nil) }

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
	keyPolicy := func(atts ...string) *Policy {
		return &Policy{Path: "policy.yaml", Rules: []Rule{{Name: "keys", Match: []string{"**"}, Require: Requirement{Count: 1}, Attestations: atts,
			Signers: []Signer{{Name: "release.pub", Key: "/keys/release.pub"}}}}}
	}

	cases := []struct {
		name   string
		setup  func(t *testing.T, f *fixture) *Trust
		pass   bool
		reason string // a failure or check reason must contain this
	}{
		{"key bundle on the index", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), CosignSignPredicateType)
			return keyTrust(t, key)
		}, true, ""},
		{"wrong key", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, other, signStmt(indexDigest)), CosignSignPredicateType)
			return keyTrust(t, key)
		}, false, "signed by a different key"},
		{"signature over another digest", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(digest.FromString("some other image"))), CosignSignPredicateType)
			return keyTrust(t, key)
		}, false, "digest"},
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
			f.bundle(t, indexDigest, b, CosignSignPredicateType)
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
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), CosignSignPredicateType)
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, sigtest.Statement(indexDigest, slsa, nil)), slsa)
			tr := keyTrust(t, key)
			tr.Policy = keyPolicy(slsa, spdx)
			return tr
		}, false, "attestation " + spdx + ": none found"},
		{"required attestations present (bundle and legacy .att)", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), CosignSignPredicateType)
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, sigtest.Statement(indexDigest, slsa, nil)), slsa)
			m, _, layer := sigtest.LegacyAttManifest(t, sigtest.LegacyAttestation(t, key, sigtest.Statement(indexDigest, spdx, nil)), spdx)
			f.attach(indexDigest, m, layer)
			tr := keyTrust(t, key)
			tr.Policy = keyPolicy(slsa, spdx)
			return tr
		}, true, ""},
		{"signature on one platform only", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, amd64, sigtest.KeyBundle(t, key, signStmt(amd64)), CosignSignPredicateType)
			return keyTrust(t, key)
		}, false, "valid signatures over the image from: none"},
		{"signatures on every platform", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, amd64, sigtest.KeyBundle(t, key, signStmt(amd64)), CosignSignPredicateType)
			f.bundle(t, arm64, sigtest.KeyBundle(t, key, signStmt(arm64)), CosignSignPredicateType)
			return keyTrust(t, key)
		}, true, ""},
		{"keyless, identity allowed", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, ss.KeylessBundle(t, "release@example.com", issuer, signStmt(indexDigest), time.Now()), CosignSignPredicateType)
			return &Trust{TrustedRoot: trustedRoot, Policy: keylessPolicy("release@example.com")}
		}, true, ""},
		{"keyless, identity not allowed by the policy", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, ss.KeylessBundle(t, "mallory@example.com", issuer, signStmt(indexDigest), time.Now()), CosignSignPredicateType)
			return &Trust{TrustedRoot: trustedRoot, Policy: keylessPolicy("release@example.com")}
		}, false, "no matching CertificateIdentity"},
		{"keyless, certificate not valid at the signing time", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, ss.KeylessBundle(t, "release@example.com", issuer, signStmt(indexDigest), time.Now().Add(sigtest.LeafValidity+time.Hour)), CosignSignPredicateType)
			return &Trust{TrustedRoot: trustedRoot, Policy: keylessPolicy("release@example.com")}
		}, false, "outside certificate validity"},
		{"keyless, transparency log the trusted root does not know", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, ss.KeylessBundle(t, "release@example.com", issuer, signStmt(indexDigest), time.Now()), CosignSignPredicateType)
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
		{"keyless legacy .sig, rule with key signers only", func(t *testing.T, f *fixture) *Trust {
			f.legacyKeyless(t, indexDigest, ss, "release@example.com", indexDigest, time.Now())
			tr := keyTrust(t, key)
			tr.TrustedRoot = trustedRoot
			return tr
		}, false, "the rule has no keyless signer"},
		{"no policy rule matches", func(t *testing.T, f *fixture) *Trust {
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), CosignSignPredicateType)
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
