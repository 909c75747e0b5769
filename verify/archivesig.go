package verify

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore-go/pkg/bundle"

	"airlock.dev/airlock/archive"
)

// ArchiveSignature is the outcome of checking one signature of an archive's catalog against the keys
// the site pinned for archives.
type ArchiveSignature struct {
	// Digest is the signature's referrer manifest.
	Digest digest.Digest `json:"digest"`
	// KeyHint is the key hint the bundle carries (any signer may write any hint: it only names).
	KeyHint string `json:"keyHint,omitempty"`
	// Signer is the pinned key that verified it.
	Signer string `json:"signer,omitempty"`
	Valid  bool   `json:"valid"`
	Reason string `json:"reason,omitempty"`
}

// BundleKeyHint returns the key hint a Sigstore bundle names, or "" (keyless, or not a bundle).
func BundleKeyHint(b []byte) string {
	var bd bundle.Bundle
	if err := bd.UnmarshalJSON(b); err != nil {
		return ""
	}
	return bd.GetVerificationMaterial().GetPublicKey().GetHint()
}

// CheckCatalogSignatures verifies each signature of the catalog catDigest with sigstore-go against
// each pinned key: it must be a cosign signature (not an attestation) whose in-toto subject is the
// catalog's digest. A signature is valid when one key verifies it.
func CheckCatalogSignatures(sigs []archive.CatalogSignature, catDigest digest.Digest, keys []*Key) []ArchiveSignature {
	out := make([]ArchiveSignature, 0, len(sigs))
	for _, s := range sigs {
		out = append(out, checkCatalogSignature(s, catDigest, keys))
	}
	return out
}

func checkCatalogSignature(s archive.CatalogSignature, catDigest digest.Digest, keys []*Key) ArchiveSignature {
	res := ArchiveSignature{Digest: s.Manifest.Digest, KeyHint: BundleKeyHint(s.Bundle)}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(s.Bundle); err != nil {
		res.Reason = "not a Sigstore bundle: " + err.Error()
		return res
	}
	artifact, err := hexDigest(catDigest)
	if err != nil {
		res.Reason = err.Error()
		return res
	}
	hinted := false
	var reasons []string
	for _, k := range keys {
		hinted = hinted || k.Hint == res.KeyHint
		// One key per Trust: keys pinned from different directories may share a base name.
		t := &Trust{Keys: []*Key{k}}
		vr, err := t.verifyBundle(&b, Signer{Name: k.Name, Key: k.Name}, artifact)
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("%s: %v", k.Name, err))
			continue
		}
		if pt := vr.Statement.GetPredicateType(); vr.Statement == nil || pt != archive.CosignSignPredicateType {
			reasons = append(reasons, fmt.Sprintf("%s: a valid bundle, but with predicate type %q, not a signature (%s)", k.Name, pt, archive.CosignSignPredicateType))
			continue
		}
		res.Valid, res.Signer = true, k.Name
		return res
	}
	switch {
	case !hinted && res.KeyHint != "":
		res.Reason = fmt.Sprintf("unknown signer: key hint %s is none of the pinned archive keys (%s)", res.KeyHint, keyList(keys))
	default:
		res.Reason = strings.Join(reasons, "; ")
	}
	return res
}

func hexDigest(d digest.Digest) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return hex.DecodeString(d.Encoded())
}

// keyList names keys with their hints, for messages.
func keyList(keys []*Key) string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.Name + " (hint " + k.Hint + ")"
	}
	return strings.Join(names, ", ")
}
