package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"path/filepath"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
)

// Key is a cosign public key.
type Key struct {
	// Name is the key file's base name, as policies and reports name it.
	Name string
	// Hint is the key hint cosign writes into bundles: base64 of the sha256 of the DER public key.
	Hint     string
	pub      crypto.PublicKey
	verifier signature.Verifier
}

// ParseKey reads a PEM public key.
func ParseKey(name string, pemBytes []byte) (*Key, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("key %s: not a PEM public key: %w", name, err)
	}
	v, err := keyVerifier(pub)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", name, err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", name, err)
	}
	sum := sha256.Sum256(der)
	return &Key{Name: name, Hint: base64.StdEncoding.EncodeToString(sum[:]), pub: pub, verifier: v}, nil
}

// keyVerifier returns the verifier of pub that takes what cosign signs with its private key. For an
// ECDSA key on P-384 or P-521 that is two hashes: cosign v3 (`cosign sign --key`, `cosign attest
// --key`, bundles and legacy signatures alike) hashes with the curve's hash (SHA-384, SHA-512), as
// sigstore's default algorithm for the key has it and as airlock signs its bundles; cosign v2 signed
// with SHA-256, which is also all that containers/image verifies and what cosign verify --key,
// policy-controller and Kyverno assume unless told otherwise, and what airlock signs legacy
// signatures with. Both are taken, the curve's hash first (sigstore-go takes both the same way for a
// certificate's key). Any other key verifies with SHA-256, as it always has here.
func keyVerifier(pub crypto.PublicKey) (signature.Verifier, error) {
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	if _, ok := pub.(*ecdsa.PublicKey); !ok {
		return v, nil
	}
	alg, err := signature.GetDefaultAlgorithmDetails(pub)
	if err != nil || alg.GetHashType() == crypto.SHA256 {
		return v, nil // P-256, or a curve sigstore has no default for
	}
	def, err := signature.LoadVerifier(pub, alg.GetHashType())
	if err != nil {
		return nil, err
	}
	return eitherVerifier{def, v}, nil
}

// eitherVerifier verifies a signature that one of its verifiers (one key, each with its hash) takes.
type eitherVerifier []signature.Verifier

func (e eitherVerifier) PublicKey(opts ...signature.PublicKeyOption) (crypto.PublicKey, error) {
	return e[0].PublicKey(opts...)
}

func (e eitherVerifier) VerifySignature(sig, message io.Reader, opts ...signature.VerifyOption) error {
	sb, err := io.ReadAll(sig)
	if err != nil {
		return err
	}
	var mb []byte
	if message != nil { // nil when a digest option gives what was signed
		if mb, err = io.ReadAll(message); err != nil {
			return err
		}
	}
	for _, v := range e {
		var m io.Reader
		if message != nil {
			m = bytes.NewReader(mb)
		}
		if err = v.VerifySignature(bytes.NewReader(sb), m, opts...); err == nil {
			return nil
		}
	}
	return err
}

// Trust is the material verification runs against: keys, an optional Sigstore trusted root (for
// keyless signatures and transparency log entries) and an optional policy.
type Trust struct {
	Keys        []*Key
	TrustedRoot *root.TrustedRoot
	Policy      *Policy
	// Keyring, pinned at the site, is what Helm charts' provenance files must be signed by
	// (Trust.Verify); nil: their provenance is not checked.
	Keyring *Keyring
	// Source says where the trust material came from, for reports; Origin says it for machines.
	Source string
	Origin Origin
}

// key returns the key named name (a base name).
func (t *Trust) key(name string) *Key {
	for _, k := range t.Keys {
		if k.Name == name {
			return k
		}
	}
	return nil
}

// TrustFromArchive reads the keys, trusted root and policy stored in an archive's catalog.
func TrustFromArchive(ctx context.Context, r *archive.Reader, cat *archive.Catalog) (*Trust, error) {
	t := &Trust{Source: "archive " + r.Path}
	for _, f := range cat.Trust.Keys {
		b, err := r.ReadFile(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("archive key %s: %w", f.Name, err)
		}
		k, err := ParseKey(f.Name, b)
		if err != nil {
			return nil, err
		}
		t.Keys = append(t.Keys, k)
	}
	if f := cat.Trust.TrustedRoot; f != nil {
		b, err := r.ReadFile(ctx, *f)
		if err != nil {
			return nil, fmt.Errorf("archive trusted root: %w", err)
		}
		if t.TrustedRoot, err = root.NewTrustedRootFromJSON(b); err != nil {
			return nil, fmt.Errorf("archive trusted root %s: %w", f.Name, err)
		}
	}
	if f := cat.Trust.Policy; f != nil {
		b, err := r.ReadFile(ctx, *f)
		if err != nil {
			return nil, fmt.Errorf("archive policy: %w", err)
		}
		// Key paths in the policy resolve, by base name, to the keys stored beside it. The archive
		// carries no keyring: a keyring signer of its policy is kept unread, and vouches for nothing.
		if t.Policy, err = parsePolicy(filepath.Join(string(filepath.Separator)+"archive", f.Name), b, nil); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// TrustFromFiles reads keys, a trusted root and a policy from disk (the ImageSet's trust section, or
// --key and --policy).
func TrustFromFiles(keys []string, trustedRoot, policy string) (*Trust, error) {
	t := &Trust{Source: "files"}
	var err error
	if t.Keys, err = LoadKeys(keys); err != nil {
		return nil, err
	}
	if trustedRoot != "" {
		if t.TrustedRoot, err = root.NewTrustedRootFromPath(trustedRoot); err != nil {
			return nil, fmt.Errorf("trusted root %s: %w", trustedRoot, err)
		}
	}
	if policy != "" {
		if t.Policy, err = LoadPolicy(policy); err != nil {
			return nil, err
		}
		// Keys a policy names are trusted too.
		for _, r := range t.Policy.Rules {
			for _, s := range r.Signers {
				if s.Key == "" || t.key(filepath.Base(s.Key)) != nil {
					continue
				}
				k, err := LoadKeys([]string{s.Key})
				if err != nil {
					return nil, fmt.Errorf("%s:%d: signer %w", policy, r.Line, err)
				}
				t.Keys = append(t.Keys, k...)
			}
		}
	}
	return t, nil
}

// TrustFromImageSet reads the trust material an ImageSet names.
func TrustFromImageSet(set *config.ImageSet) (*Trust, error) {
	t, err := TrustFromFiles(set.Trust.Keys, set.Trust.TrustedRoot, set.Policy)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", set.Path, err)
	}
	t.Source = "ImageSet " + set.Path
	if len(t.Keys) > 0 {
		t.Source += ": keys " + keyList(t.Keys)
	}
	t.setOrigin(Origin{Kind: "imageset"}, set.Path)
	return t, nil
}

// PEM returns the key as a PEM public key, as cosign writes cosign.pub.
func (k *Key) PEM() ([]byte, error) { return cryptoutils.MarshalPublicKeyToPEM(k.pub) }
