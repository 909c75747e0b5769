package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"iter"
	"path/filepath"

	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/opencontainers/go-digest"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
	"google.golang.org/protobuf/encoding/protojson"

	"airlock.dev/airlock/archive"
)

// signsSubject reports whether a verified simple-signing payload names c's subject digest; when it
// does not, it marks c invalid.
func signsSubject(c *Check, payload []byte) bool {
	var ss simpleSigningPayload
	if err := json.Unmarshal(payload, &ss); err != nil {
		c.invalid("signed payload is not a cosign simple-signing document")
		return false
	}
	if ss.Critical.Image.DockerManifestDigest != c.Subject.String() {
		c.invalid(fmt.Sprintf("the signature is valid but signs %s, not %s", ss.Critical.Image.DockerManifestDigest, c.Subject))
		return false
	}
	return true
}

// legacyNoTlog is why a legacy key-based signature or attestation does not satisfy requireTlog.
const legacyNoTlog = "the policy requires a transparency log entry for this signer (requireTlog: true), and a key-based legacy cosign %s is checked without one: sign with cosign v3 (a Sigstore bundle) and the transparency log, or drop requireTlog"

// validByKey marks c, a legacy what (".sig", ".att") that the key of s verified, valid by s, or
// rejected when s has requireTlog (legacyNoTlog).
func (c *Check) validByKey(s Signer, what string) {
	if s.RequireTlog {
		c.Status, c.Reason = StatusRejected, s.Name+": "+fmt.Sprintf(legacyNoTlog, what)
		return
	}
	c.valid(s.Name, false)
}

// checkLegacySig verifies a cosign simple-signing signature: with each key signer, or, when the
// layer carries a Fulcio certificate, with each keyless signer (checkLegacyKeylessSig).
func (t *Trust) checkLegacySig(c *Check, payload []byte, annotations map[string]string, rule *Rule) {
	c.PredicateType = archive.CosignSignPredicateType
	sig, err := base64.StdEncoding.DecodeString(annotations[SignatureAnnotation])
	if err != nil || len(sig) == 0 {
		c.invalid("no signature annotation on the layer")
		return
	}
	if annotations[CertificateAnnotation] != "" {
		t.checkLegacyKeylessSig(c, payload, sig, annotations, rule)
		return
	}
	var a attempts
	for s, k := range t.keySigners(rule, &a) {
		if err := k.verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload)); err != nil {
			// A legacy signature names no key: one that no key verifies is another signer's, or altered.
			a.add(s.Name, notSigner("does not verify with this key (another signer's, or altered): %v", err))
			continue
		}
		if signsSubject(c, payload) {
			c.validByKey(s, ".sig")
		}
		return
	}
	a.fail(c, "the rule has no key signer")
}

// keySigners yields each key signer of rule with its trusted key. A key signer whose key is not
// among the trusted keys is recorded in a and skipped; keyless and keyring signers are skipped.
func (t *Trust) keySigners(rule *Rule, a *attempts) iter.Seq2[Signer, *Key] {
	return func(yield func(Signer, *Key) bool) {
		for _, s := range rule.Signers {
			if s.Keyless() || s.IsKeyring() {
				continue
			}
			k := t.key(filepath.Base(s.Key))
			if k == nil {
				a.add(s.Name, notSigner("not among the trusted keys"))
				continue
			}
			if !yield(s, k) {
				return
			}
		}
	}
}

// checkLegacyAtt verifies a cosign legacy DSSE attestation with each key signer: the envelope's
// signature (go-securesystemslib's envelope verifier, through sigstore's DSSE wrapper), an in-toto
// statement (in-toto's own type and its Validate), and the statement's subject. Its predicate type
// comes from the verified statement.
func (t *Trust) checkLegacyAtt(c *Check, blob []byte, rule *Rule) {
	var env dsse.Envelope
	if err := json.Unmarshal(blob, &env); err != nil || len(env.Signatures) == 0 {
		c.invalid("not a DSSE envelope")
		return
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		c.invalid("DSSE payload is not base64")
		return
	}
	var st intoto.Statement
	stErr := protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(payload, &st)
	if stErr == nil {
		stErr = st.Validate()
	}
	c.PredicateType = st.GetPredicateType() // unverified until a signer verifies it
	var a attempts
	for s, k := range t.keySigners(rule, &a) {
		if sigdsse.WrapVerifier(k.verifier).VerifySignature(bytes.NewReader(blob), nil) != nil {
			a.add(s.Name, notSigner("the DSSE signature does not verify with this key (another signer's, or altered)"))
			continue
		}
		switch {
		case env.PayloadType != inTotoPayloadType:
			c.invalid("DSSE payload type " + env.PayloadType + " is not an in-toto statement")
		case stErr != nil:
			c.invalid("the signed DSSE payload is not an in-toto statement with a predicate type")
		case !statementNames(&st, c.Subject):
			c.invalid(fmt.Sprintf("the attestation is valid but its subject is not %s", c.Subject))
		default:
			c.validByKey(s, ".att")
		}
		return
	}
	a.fail(c, "the rule has no key signer (legacy attestations are verified with keys only)")
}

// statementNames reports whether one of st's subjects has digest d.
func statementNames(st *intoto.Statement, d digest.Digest) bool {
	for _, sub := range st.GetSubject() {
		if v, ok := sub.GetDigest()[d.Algorithm().String()]; ok && v == d.Encoded() {
			return true
		}
	}
	return false
}
