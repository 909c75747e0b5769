package verify

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
)

// evaluate applies the rule: enough distinct signers with valid signatures over the image (the index,
// or every platform manifest), each required attestation type verified, no invalid signature or
// attestation anywhere in the image's graph, and a valid signature on each referrer of a kind the
// rule requires signed. keyrings says why each keyring signer of the rule that is not satisfied is not
// (checkKeyrings): part of the failure when the rule is not met.
func evaluate(img Image, rule *Rule, res *Result, keyrings []string) []string {
	var failures []string
	sigs, atts := res.Signatures, res.Attestations
	signers := coveringSigners(img, sigs, "")
	if !rule.Require.Satisfied(len(signers), len(rule.Signers)) {
		var msg string
		switch {
		case len(sigs) == 0 && len(atts) > 0:
			msg = "no signature found, only attestations (an attestation is not a signature)"
		case len(sigs) == 0:
			msg = "no signature found"
		default:
			names := slices.Sorted(maps.Keys(signers))
			if len(names) == 0 {
				names = []string{"none"}
			}
			msg = fmt.Sprintf("signatures: %s of %s required; valid signatures over the image from: %s",
				rule.Require, signerNames(rule), strings.Join(names, ", "))
		}
		for _, why := range keyrings {
			msg += "; " + why
		}
		failures = append(failures, msg)
	}
	for _, pt := range rule.Attestations {
		if len(coveringSigners(img, atts, pt)) == 0 {
			msg := "attestation " + pt + ": none found"
			for _, c := range atts {
				if c.PredicateType == pt {
					msg = "attestation " + pt + ": none valid"
				}
			}
			failures = append(failures, msg)
		}
	}
	for _, list := range [][]Check{sigs, atts, res.Referrers} {
		for _, c := range list {
			if c.Status != StatusInvalid {
				continue
			}
			what := "attestation"
			if c.isSignature() {
				what = "signature"
			}
			failures = append(failures, fmt.Sprintf("invalid %s on %s (referrer %s): %s", what, c.Covers, shortDigest(c.Referrer), c.Reason))
		}
	}
	failures = append(failures, unsignedReferrers(img, rule, res.Referrers)...)
	return failures
}

// unsignedReferrers names each referrer of a kind in rule.RequireSignedReferrers that carries no
// valid signature by a signer of the rule.
func unsignedReferrers(img Image, rule *Rule, checks []Check) []string {
	var failures []string
	seen := map[digest.Digest]bool{}
	for _, kind := range rule.RequireSignedReferrers {
		for _, r := range img.Referrers {
			if r.Kind != kind || seen[r.Digest] {
				continue
			}
			seen[r.Digest] = true
			var found []string
			signed := false
			for _, c := range checks {
				if c.Subject != r.Digest || !c.isSignature() {
					continue
				}
				signed = signed || c.Valid
				found = append(found, c.Status)
			}
			if signed {
				continue
			}
			msg := "none found"
			if len(found) > 0 {
				msg = "found only: " + strings.Join(found, ", ")
			}
			failures = append(failures, fmt.Sprintf("%s %s (on %s): the rule requires signed %s referrers, and it has no valid signature by %s; %s",
				kind, shortDigest(r.Digest), referrerParent(img, r), kind, signerNames(rule), msg))
		}
	}
	return failures
}

// referrerParent names what r is attached to: the index, the image, a platform or another referrer.
func referrerParent(img Image, r Referrer) string {
	if p, ok := covers(img, r.Subject); ok {
		return p
	}
	return shortDigest(r.Subject)
}

// coveringSigners returns the signers whose valid checks (of predicate type pt, if set) cover the
// image: the root digest, or every platform manifest.
func coveringSigners(img Image, checks []Check, pt string) map[string]bool {
	root := map[string]bool{}
	platforms := map[string]map[digest.Digest]bool{} // signer -> the platform manifests it covers
	for _, c := range checks {
		switch {
		case !c.Valid || (pt != "" && c.PredicateType != pt):
		case c.Subject == img.Digest:
			root[c.Signer] = true
		case platforms[c.Signer] == nil:
			platforms[c.Signer] = map[digest.Digest]bool{c.Subject: true}
		default:
			platforms[c.Signer][c.Subject] = true
		}
	}
	for s, covered := range platforms {
		if len(img.Platforms) > 0 && len(covered) == len(img.Platforms) {
			root[s] = true
		}
	}
	return root
}

func signerNames(r *Rule) string {
	names := make([]string, len(r.Signers))
	for i, s := range r.Signers {
		names[i] = s.Name
	}
	return "[" + strings.Join(names, ", ") + "]"
}
