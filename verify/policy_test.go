package verify

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/verify/internal/sigtest"
)

const polHeader = "apiVersion: airlock.dev/v1alpha1\nkind: Policy\n"

func TestLoadPolicy(t *testing.T) {
	pol, err := LoadPolicy("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{
		Path: "testdata/policy.yaml",
		Rules: []Rule{
			{
				Name:  "team images",
				Line:  5,
				Match: []string{"registry.example.com/team/*", "registry.example.com/base/**"},
				Signers: []Signer{
					{Name: "release.pub", Key: filepath.Join(dir, "keys/release.pub")},
					{
						Name:    "https://token.actions.githubusercontent.com / https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main",
						Issuer:  "https://token.actions.githubusercontent.com",
						Subject: "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main",
					},
				},
				Require:      Requirement{Count: 1},
				Attestations: []string{"https://slsa.dev/provenance/v0.2", "https://spdx.dev/Document"},
			},
			{
				Name:  "platform",
				Line:  17,
				Match: []string{"registry.example.com:5000/platform/**"},
				Signers: []Signer{
					{Name: "platform.pub", Key: filepath.Join(dir, "keys/platform.pub")},
					{
						Name:          `^https://token\.actions\.githubusercontent\.com$ / ^https://github\.com/acme/security/`,
						IssuerRegExp:  `^https://token\.actions\.githubusercontent\.com$`,
						SubjectRegExp: `^https://github\.com/acme/security/`,
					},
				},
				Require: Requirement{All: true, Count: 2},
			},
			{
				Line:  26,
				Match: []string{"**"},
				Signers: []Signer{
					{Name: "a.pub", Key: filepath.Join(dir, "keys/a.pub")},
					{Name: "b.pub", Key: filepath.Join(dir, "keys/b.pub")},
					{Name: "c.pub", Key: filepath.Join(dir, "keys/c.pub")},
				},
				Require: Requirement{Count: 2},
			},
		},
	}
	if !reflect.DeepEqual(pol, want) {
		t.Errorf("LoadPolicy:\n got %+v\nwant %+v", pol, want)
	}
	if !pol.Rules[1].Signers[1].Keyless() || pol.Rules[0].Signers[0].Keyless() {
		t.Error("Keyless() wrong for a key or a keyless signer")
	}

	for repo, wantRule := range map[string]string{
		"registry.example.com/team/app":                "team images",
		"registry.example.com/base/debian/slim":        "team images",
		"registry.example.com:5000/platform/ingress":   "platform",
		"registry.example.com/team/app/nested":         "", // * is one segment: falls through to **
		"registry.site:5000/mirror/team/app":           "",
		"registry.example.com:5000/platform/a/b/c/d/e": "platform",
	} {
		r := pol.RuleFor(repo)
		if r == nil {
			t.Errorf("RuleFor(%q) = nil", repo)
			continue
		}
		if r.Name != wantRule {
			t.Errorf("RuleFor(%q) = rule %q (line %d), want %q", repo, r.Name, r.Line, wantRule)
		}
	}
}

func TestLoadPolicyInvalidReportsEveryError(t *testing.T) {
	_, err := LoadPolicy("testdata/policy-invalid.yaml")
	if err == nil {
		t.Fatal("LoadPolicy succeeded, want errors")
	}
	for _, want := range []string{
		`testdata/policy-invalid.yaml:5: rules[0].match[0]: pattern "registry.example.com/team/app:1.0" includes a tag`,
		"testdata/policy-invalid.yaml:7: rules[0].signers[0]: has both key and keyless",
		"testdata/policy-invalid.yaml:11: rules[0].signers[1].keyless.issuer: missing",
		`testdata/policy-invalid.yaml:11: rules[0].signers[1].keyless.subjectRegExp: invalid regular expression "(unclosed": missing closing )`,
		`testdata/policy-invalid.yaml:13: rules[0].attestations[0]: unknown predicate type "sbom"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error\n%s\ndoes not contain\n%s", err, want)
		}
	}
	// require: 5 is not compared with the signers while the signers themselves are wrong.
	if strings.Contains(err.Error(), "rules[0].require") {
		t.Errorf("error mentions require although the signers are invalid:\n%s", err)
	}
}

func TestLoadPolicyMissingFile(t *testing.T) {
	_, err := LoadPolicy(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "reading policy") || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadPolicy of a missing file: %v", err)
	}
}

func TestParsePolicyErrors(t *testing.T) {
	const rule = "rules:\n  - match: [a.io/b]\n    signers:\n      - key: k.pub\n"
	// rule is lines 3-6; extra rule fields start on line 7.
	tests := []struct {
		name string
		yaml string
		want string // the whole error must start with this
	}{
		{"bad apiVersion", "apiVersion: airlock.dev/v1\nkind: Policy\n" + rule,
			`policy.yaml:1: apiVersion: must be "airlock.dev/v1alpha1", got "airlock.dev/v1"`},
		{"missing apiVersion", "kind: Policy\n" + rule,
			`policy.yaml:1: apiVersion: missing; expected "airlock.dev/v1alpha1"`},
		{"bad kind", "apiVersion: airlock.dev/v1alpha1\nkind: ImageSet\n" + rule,
			`policy.yaml:2: kind: must be "Policy", got "ImageSet"`},
		{"missing kind", "apiVersion: airlock.dev/v1alpha1\n" + rule,
			`policy.yaml:1: kind: missing; expected "Policy"`},
		{"missing rules", polHeader,
			"policy.yaml:1: rules: missing; list at least one rule"},
		{"empty rules", polHeader + "rules: []\n",
			"policy.yaml:3: rules: must list at least one rule"},
		{"null rules", polHeader + "rules:\n",
			"policy.yaml:3: rules: must list at least one rule"},
		{"rules not a list", polHeader + "rules: {match: [a.io/b]}\n",
			"policy.yaml:3: rules: must be a list of rules, got a mapping"},
		{"unknown top-level field", polHeader + rule + "rule: []\n",
			"policy.yaml:7: rule: unknown field; known fields: apiVersion, kind, rules"},
		{"duplicate top-level field", polHeader + "kind: Policy\n" + rule,
			"policy.yaml:3: kind: field given twice (first on line 2)"},
		{"unknown rule field", polHeader + rule + "    requires: all\n",
			"policy.yaml:7: rules[0].requires: unknown field; known fields: name, match, signers, require, attestations"},
		{"duplicate rule field", polHeader + rule + "    match: [c.io/d]\n",
			"policy.yaml:7: rules[0].match: field given twice (first on line 4)"},
		{"rule without match", polHeader + "rules:\n  - signers: [{key: k.pub}]\n",
			"policy.yaml:4: rules[0].match: missing"},
		{"rule without signers", polHeader + "rules:\n  - match: [a.io/b]\n",
			"policy.yaml:4: rules[0].signers: missing; list at least one signer"},
		{"empty signers", polHeader + "rules:\n  - match: [a.io/b]\n    signers: []\n",
			"policy.yaml:5: rules[0].signers: must list at least one signer"},
		{"empty match", polHeader + "rules:\n  - match: []\n    signers: [{key: k.pub}]\n",
			"policy.yaml:4: rules[0].match: must list at least one pattern"},
		{"match as a string", polHeader + "rules:\n  - match: a.io/b\n    signers: [{key: k.pub}]\n",
			`policy.yaml:4: rules[0].match: must be a list of patterns, got string "a.io/b"; write it as [a.io/b]`},
		{"empty pattern", polHeader + "rules:\n  - match: ['']\n    signers: [{key: k.pub}]\n",
			"policy.yaml:4: rules[0].match[0]: empty pattern"},
		{"pattern with tag", polHeader + "rules:\n  - match:\n      - a.io/b\n      - a.io/b:1.0\n    signers: [{key: k.pub}]\n",
			`policy.yaml:6: rules[0].match[1]: pattern "a.io/b:1.0" includes a tag (":1.0")`},
		{"pattern with digest", polHeader + "rules:\n  - match: ['a.io/b@sha256:abc']\n    signers: [{key: k.pub}]\n",
			`policy.yaml:4: rules[0].match[0]: pattern "a.io/b@sha256:abc" includes a digest`},
		{"pattern without path", polHeader + "rules:\n  - match: ['a.io:5000']\n    signers: [{key: k.pub}]\n",
			`policy.yaml:4: rules[0].match[0]: pattern "a.io:5000" has no path`},
		{"pattern with bad **", polHeader + "rules:\n  - match: ['a.io/b**']\n    signers: [{key: k.pub}]\n",
			`policy.yaml:4: rules[0].match[0]: pattern "a.io/b**": ** must be a whole path segment`},
		{"pattern with empty segment", polHeader + "rules:\n  - match: ['a.io//b']\n    signers: [{key: k.pub}]\n",
			`policy.yaml:4: rules[0].match[0]: pattern "a.io//b" has an empty path segment`},
		{"pattern with scheme", polHeader + "rules:\n  - match: ['https://a.io/b']\n    signers: [{key: k.pub}]\n",
			`policy.yaml:4: rules[0].match[0]: pattern "https://a.io/b" must not include a URL scheme`},
		{"pattern uppercase path", polHeader + "rules:\n  - match: ['a.io/Team/*']\n    signers: [{key: k.pub}]\n",
			`policy.yaml:4: rules[0].match[0]: pattern "a.io/Team/*" would never match`},
		{"pattern not a string", polHeader + "rules:\n  - match: [12]\n    signers: [{key: k.pub}]\n",
			"policy.yaml:4: rules[0].match[0]: must be a string, got integer 12"},
		{"signer with key and keyless", polHeader + rule + "        keyless: {issuer: i, subject: s}\n",
			"policy.yaml:6: rules[0].signers[0]: has both key and keyless"},
		{"signer with neither", polHeader + "rules:\n  - match: [a.io/b]\n    signers:\n      - {}\n",
			"policy.yaml:6: rules[0].signers[0]: needs key (a cosign public key file), keyless (issuer and subject) or keyring (an OpenPGP keyring, for Helm charts' provenance)"},
		{"signer unknown field", polHeader + "rules:\n  - match: [a.io/b]\n    signers:\n      - kye: k.pub\n",
			"policy.yaml:6: rules[0].signers[0].kye: unknown field; known fields: key, keyless"},
		{"signer as a string", polHeader + "rules:\n  - match: [a.io/b]\n    signers: [k.pub]\n",
			`policy.yaml:5: rules[0].signers[0]: must be a mapping with fields key, keyless, keyring, requireTlog, got string "k.pub"`},
		{"empty key path", polHeader + "rules:\n  - match: [a.io/b]\n    signers:\n      - key: ''\n",
			"policy.yaml:6: rules[0].signers[0].key: empty path"},
		{"key not a string", polHeader + "rules:\n  - match: [a.io/b]\n    signers:\n      - key: [k.pub]\n",
			"policy.yaml:6: rules[0].signers[0].key: must be a string, got a list"},
		{"duplicate signer", polHeader + rule + "      - key: ./k.pub\n",
			"policy.yaml:7: rules[0].signers[1]: same signer as rules[0].signers[0] (line 6): k.pub"},
		{"keyless without issuer", polHeader + "rules:\n  - match: [a.io/b]\n    signers:\n      - keyless:\n          subject: s\n",
			"policy.yaml:7: rules[0].signers[0].keyless.issuer: missing; give issuer (exact, e.g. https://token.actions.githubusercontent.com) or issuerRegExp"},
		{"keyless without subject", polHeader + "rules:\n  - match: [a.io/b]\n    signers:\n      - keyless:\n          issuerRegExp: '.*'\n",
			"policy.yaml:7: rules[0].signers[0].keyless.subject: missing; give subject (exact, e.g."},
		{"keyless both issuers", polHeader + "rules:\n  - match: [a.io/b]\n    signers:\n      - keyless:\n          issuer: i\n          issuerRegExp: i.*\n          subject: s\n",
			"policy.yaml:8: rules[0].signers[0].keyless.issuerRegExp: given together with issuer; use one"},
		{"keyless both subjects", polHeader + "rules:\n  - match: [a.io/b]\n    signers:\n      - keyless:\n          issuer: i\n          subjectRegExp: s.*\n          subject: s\n",
			"policy.yaml:8: rules[0].signers[0].keyless.subjectRegExp: given together with subject; use one"},
		{"keyless bad regexp", polHeader + "rules:\n  - match: [a.io/b]\n    signers:\n      - keyless:\n          issuer: i\n          subjectRegExp: 'a[b'\n",
			`policy.yaml:8: rules[0].signers[0].keyless.subjectRegExp: invalid regular expression "a[b": missing closing ]: ` + "`[b`"},
		{"keyless empty regexp", polHeader + "rules:\n  - match: [a.io/b]\n    signers:\n      - keyless:\n          issuerRegExp: ''\n          subject: s\n",
			"policy.yaml:7: rules[0].signers[0].keyless.issuerRegExp: empty regular expression"},
		{"keyless empty issuer", polHeader + "rules:\n  - match: [a.io/b]\n    signers:\n      - keyless:\n          issuer: ''\n          subject: s\n",
			"policy.yaml:7: rules[0].signers[0].keyless.issuer: empty"},
		{"keyless unknown field", polHeader + "rules:\n  - match: [a.io/b]\n    signers:\n      - keyless:\n          issuer: i\n          subject: s\n          isuer: i\n",
			"policy.yaml:9: rules[0].signers[0].keyless.isuer: unknown field; known fields: issuer, issuerRegExp, subject, subjectRegExp"},
		{"keyless duplicate field", polHeader + "rules:\n  - match: [a.io/b]\n    signers:\n      - keyless:\n          issuer: i\n          subject: s\n          issuer: j\n",
			"policy.yaml:9: rules[0].signers[0].keyless.issuer: field given twice (first on line 7)"},
		{"require word", polHeader + rule + "    require: most\n",
			`policy.yaml:7: rules[0].require: must be "any", "all" or a positive number of signers, got string "most"`},
		{"require zero", polHeader + rule + "    require: 0\n",
			`policy.yaml:7: rules[0].require: must be "any", "all" or a positive number of signers, got integer 0`},
		{"require negative", polHeader + rule + "    require: -1\n",
			`policy.yaml:7: rules[0].require: must be "any", "all" or a positive number of signers, got integer -1`},
		{"require float", polHeader + rule + "    require: 1.5\n",
			`policy.yaml:7: rules[0].require: must be "any", "all" or a positive number of signers, got number 1.5`},
		{"require list", polHeader + rule + "    require: [all]\n",
			`policy.yaml:7: rules[0].require: must be "any", "all" or a positive number of signers, got a list`},
		{"require more than signers", polHeader + rule + "      - key: k2.pub\n    require: 3\n",
			"policy.yaml:8: rules[0].require: requires 3 signers but the rule lists only 2"},
		{"unknown predicate alias", polHeader + rule + "    attestations: [slsaprovenance, sbom]\n",
			`policy.yaml:7: rules[0].attestations[1]: unknown predicate type "sbom"; use a full URI such as https://slsa.dev/provenance/v1 or one of the aliases custom, cyclonedx, link, openvex, slsaprovenance, slsaprovenance02, slsaprovenance1, spdx, spdxjson, vuln`},
		{"duplicate predicate type", polHeader + rule + "    attestations:\n      - spdx\n      - spdxjson\n",
			"policy.yaml:9: rules[0].attestations[1]: same predicate type as rules[0].attestations[0] (line 8): https://spdx.dev/Document"},
		{"empty attestations", polHeader + rule + "    attestations: []\n",
			"policy.yaml:7: rules[0].attestations: empty list; leave attestations out to require none"},
		{"attestations not a list", polHeader + rule + "    attestations: spdx\n",
			`policy.yaml:7: rules[0].attestations: must be a list of predicate types, got string "spdx"`},
		{"name not a string", polHeader + rule + "    name: [x]\n",
			"policy.yaml:7: rules[0].name: must be a string, got a list"},
		{"rule not a mapping", polHeader + "rules:\n  - a.io/b\n",
			`policy.yaml:4: rules[0]: must be a mapping with fields name, match, signers, require, attestations, requireSignedReferrers, got string "a.io/b"`},
		{"error in second rule", polHeader + rule + "  - match: [c.io/d]\n    signers: [{key: ''}]\n",
			"policy.yaml:8: rules[1].signers[0].key: empty path"},
		{"root not a mapping", "- rules\n",
			"policy.yaml:1: must be a mapping with fields apiVersion, kind, rules, got a list"},
		{"two documents", polHeader + rule + "---\n" + polHeader + rule,
			"policy.yaml:7: more than one YAML document; a policy file holds exactly one"},
		{"empty file", "",
			"policy.yaml: file is empty; expected a Policy"},
		{"only a comment", "# nothing\n",
			"policy.yaml: file is empty; expected a Policy"},
		{"requireTlog not a boolean", polHeader + rule + "        requireTlog: \"yes\"\n",
			`policy.yaml:7: rules[0].signers[0].requireTlog: must be true or false, got string "yes"`},
		{"requireTlog yes (a string in YAML 1.2)", polHeader + rule + "        requireTlog: yes\n",
			`policy.yaml:7: rules[0].signers[0].requireTlog: must be true or false, got string "yes"`},
		{"requireTlog false on a keyless signer", polHeader + "rules:\n  - match: [a.io/b]\n    signers:\n      - keyless: {issuer: i, subject: s}\n        requireTlog: false\n",
			"policy.yaml:7: rules[0].signers[0].requireTlog: a keyless signature always needs a transparency log entry; false cannot turn that off: leave requireTlog out"},
		{"requireTlog beside the signer", polHeader + rule + "    requireTlog: true\n",
			"policy.yaml:7: rules[0].requireTlog: unknown field; known fields: name, match, signers, require, attestations, requireSignedReferrers"},
		{"requireSignedReferrers a string", polHeader + rule + "    requireSignedReferrers: sbom\n",
			`policy.yaml:7: rules[0].requireSignedReferrers: must be a list of referrer kinds, got string "sbom"; write it as [sbom]`},
		{"requireSignedReferrers empty", polHeader + rule + "    requireSignedReferrers: []\n",
			"policy.yaml:7: rules[0].requireSignedReferrers: empty list; leave requireSignedReferrers out to require none, or list sbom or other"},
		{"requireSignedReferrers null", polHeader + rule + "    requireSignedReferrers:\n",
			"policy.yaml:7: rules[0].requireSignedReferrers: must list at least one referrer kind"},
		{"requireSignedReferrers signature", polHeader + rule + "    requireSignedReferrers: [signature]\n",
			"policy.yaml:7: rules[0].requireSignedReferrers[0]: signatures are signed by nature; list sbom or other (require attestations with attestations:)"},
		{"requireSignedReferrers unknown kind", polHeader + rule + "    requireSignedReferrers: [spdx]\n",
			`policy.yaml:7: rules[0].requireSignedReferrers[0]: unknown referrer kind "spdx"; use sbom or other`},
		{"requireSignedReferrers twice the same", polHeader + rule + "    requireSignedReferrers:\n      - sbom\n      - sbom\n",
			"policy.yaml:9: rules[0].requireSignedReferrers[1]: same kind as rules[0].requireSignedReferrers[0] (line 8): sbom"},
		{"invalid YAML", polHeader + rule + "    require: a: b\n",
			"policy.yaml:7: invalid YAML: mapping values are not allowed in this context"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol, err := ParsePolicy("policy.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("ParsePolicy succeeded (%+v), want error starting %q", pol, tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error:\n  %s\nwant prefix:\n  %s", err, tt.want)
			}
			if pol != nil {
				t.Errorf("ParsePolicy returned a policy with an error: %+v", pol)
			}
		})
	}
}

func TestParsePolicyReportsEveryError(t *testing.T) {
	yaml := "apiVersion: v1\nkind: Policy\nrules:\n  - match: [a.io/b:1]\n    signers: [{key: ''}]\n  - match: [c.io/d]\n    signerz: []\n"
	_, err := ParsePolicy("policy.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("ParsePolicy succeeded, want errors")
	}
	for _, want := range []string{
		"policy.yaml:1: apiVersion: ",
		"policy.yaml:4: rules[0].match[0]: ",
		"policy.yaml:5: rules[0].signers[0].key: empty path",
		"policy.yaml:6: rules[1].signers: missing",
		"policy.yaml:7: rules[1].signerz: unknown field",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error\n%s\ndoes not contain\n%s", err, want)
		}
	}
}

func TestParsePolicyDefaultsAndPaths(t *testing.T) {
	yaml := polHeader + `rules:
  - match: [a.io/b]
    signers:
      - key: /etc/airlock/k.pub
      - key: ../keys/other.pub
      - key: k.pub
    attestations: [vuln, "https://example.com/predicate/v1"]
  - match: [a.io/c]
    signers: [{key: k.pub}]
    require: "all"
  - match: [a.io/d]
    signers: [{key: k.pub}]
    require: 1
`
	dir := t.TempDir()
	pol, err := ParsePolicy(filepath.Join(dir, "conf", "policy.yaml"), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	r := pol.Rules[0]
	if r.Require != (Requirement{Count: 1}) || r.Require.String() != "any" {
		t.Errorf("default Require = %+v (%s), want any", r.Require, r.Require)
	}
	wantKeys := []string{"/etc/airlock/k.pub", filepath.Join(dir, "keys/other.pub"), filepath.Join(dir, "conf/k.pub")}
	for i, s := range r.Signers {
		if s.Key != wantKeys[i] {
			t.Errorf("Signers[%d].Key = %q, want %q", i, s.Key, wantKeys[i])
		}
	}
	wantAtt := []string{"https://cosign.sigstore.dev/attestation/vuln/v1", "https://example.com/predicate/v1"}
	if !reflect.DeepEqual(r.Attestations, wantAtt) {
		t.Errorf("Attestations = %q, want %q", r.Attestations, wantAtt)
	}
	if got := pol.Rules[1].Require; got != (Requirement{All: true, Count: 1}) {
		t.Errorf("require all with one signer = %+v", got)
	}
	if got := pol.Rules[2].Require; got != (Requirement{Count: 1}) {
		t.Errorf("require 1 = %+v, want Count 1", got)
	}
	if pol.Rules[2].Line != 13 {
		t.Errorf("Rules[2].Line = %d, want 13", pol.Rules[2].Line)
	}
}

func TestParsePolicyTlogAndSignedReferrers(t *testing.T) {
	yaml := polHeader + `rules:
  - match: [a.io/b]
    signers:
      - key: /k/tlog.pub
        requireTlog: true
      - key: /k/offline.pub
        requireTlog: false
      - key: /k/default.pub
      - keyless: {issuer: i, subject: s}
        requireTlog: true
    requireSignedReferrers: [sbom, other]
  - match: [a.io/c]
    signers: [{key: /k/tlog.pub}]
`
	pol, err := ParsePolicy("policy.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	var got []bool
	for _, s := range pol.Rules[0].Signers {
		got = append(got, s.RequireTlog)
	}
	if want := []bool{true, false, false, false}; !reflect.DeepEqual(got, want) {
		t.Errorf("RequireTlog = %v, want %v (keyless signers always need the log, whatever the field)", got, want)
	}
	if got := pol.Rules[0].RequireSignedReferrers; !reflect.DeepEqual(got, []string{"sbom", "other"}) {
		t.Errorf("RequireSignedReferrers = %q", got)
	}
	if got := pol.Rules[1].RequireSignedReferrers; got != nil {
		t.Errorf("default RequireSignedReferrers = %q, want none", got)
	}
	if _, err := ParsePolicy("policy.yaml", []byte(polHeader+"rules:\n  - match: [a.io/b]\n    signers:\n      - key: k.pub\n      - key: k.pub\n        requireTlog: true\n")); err == nil ||
		!strings.Contains(err.Error(), "policy.yaml:7: rules[0].signers[1]: same signer as rules[0].signers[0] (line 6)") {
		t.Errorf("the same key twice, once with requireTlog: %v", err)
	}
}

// TestPredicateTypeAliases checks behaviour: a policy naming a cosign --type alias accepts an
// attestation whose statement carries the full predicate type URI, and rejects one of another type.
// The table is cosign v3's (cmd/cosign/cli/options/predicate.go).
func TestPredicateTypeAliases(t *testing.T) {
	cosign := map[string]string{
		"slsaprovenance":   "https://slsa.dev/provenance/v0.2",
		"slsaprovenance02": "https://slsa.dev/provenance/v0.2",
		"slsaprovenance1":  "https://slsa.dev/provenance/v1",
		"spdx":             "https://spdx.dev/Document",
		"spdxjson":         "https://spdx.dev/Document",
		"cyclonedx":        "https://cyclonedx.org/bom",
		"link":             "https://in-toto.io/Link/v1",
		"vuln":             "https://cosign.sigstore.dev/attestation/vuln/v1",
		"openvex":          "https://openvex.dev/ns",
		"custom":           "https://cosign.sigstore.dev/attestation/v1",
	}
	if len(PredicateTypeAliases) != len(cosign) {
		t.Errorf("%d aliases, cosign has %d: test every alias", len(PredicateTypeAliases), len(cosign))
	}
	key := sigtest.NewKey(t)
	const another = "https://example.com/another-predicate/v1"
	for alias, uri := range cosign {
		yaml := polHeader + "rules:\n  - match: ['**']\n    signers: [{key: /keys/release.pub}]\n    attestations: [" + alias + "]\n"
		pol, err := ParsePolicy("policy.yaml", []byte(yaml))
		if err != nil {
			t.Errorf("alias %s: %v", alias, err)
			continue
		}
		for _, pt := range []string{uri, another} {
			f := newFixture()
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, signStmt(indexDigest)), archive.CosignSignPredicateType)
			f.bundle(t, indexDigest, sigtest.KeyBundle(t, key, sigtest.Statement(indexDigest, pt, nil)), pt)
			tr := keyTrust(t, key)
			tr.Policy = pol
			res := tr.Verify(context.Background(), f.img)
			if wantPass := pt == uri; res.Passed != wantPass {
				t.Errorf("policy attestations: [%s], attestation of %s: passed %v, want %v; failures %q", alias, pt, res.Passed, wantPass, res.Failures)
			} else if !wantPass && !slices.Contains(res.Failures, "attestation "+uri+": none found") {
				t.Errorf("policy attestations: [%s], attestation of %s: failures %q, want %q", alias, pt, res.Failures, "attestation "+uri+": none found")
			}
		}
	}
}

func TestMatchRepository(t *testing.T) {
	tests := []struct {
		pattern, repo string
		want          bool
	}{
		{"registry.example.com/team/app", "registry.example.com/team/app", true},
		{"registry.example.com/team/app", "registry.example.com/team/app2", false},
		{"registry.example.com/team/app", "registry.example.com/team", false},
		{"registry.example.com/team/app", "other.example.com/team/app", false},
		{"REGISTRY.example.com/team/app", "registry.example.com/team/app", true}, // hosts ignore case
		{"registry.example.com/team/app", "registry.example.com/Team/app", false},
		// * is exactly one segment.
		{"registry.example.com/team/*", "registry.example.com/team/app", true},
		{"registry.example.com/team/*", "registry.example.com/team/app/sub", false},
		{"registry.example.com/team/*", "registry.example.com/team", false},
		{"registry.example.com/*/app", "registry.example.com/team/app", true},
		{"registry.example.com/*/app", "registry.example.com/a/b/app", false},
		{"registry.example.com/team/app-*", "registry.example.com/team/app-web", true},
		{"registry.example.com/team/app-*", "registry.example.com/team/api-web", false},
		{"registry.example.com/team/*-web", "registry.example.com/team/app-web", true},
		{"registry.example.com/team/a*b*c", "registry.example.com/team/axxbyyc", true},
		{"registry.example.com/team/a*b*c", "registry.example.com/team/axxcyyb", false},
		{"*.example.com/team/app", "registry.example.com/team/app", true},
		{"*/team/app", "localhost:5000/team/app", true},
		// ** is any number of segments, none included.
		{"registry.example.com/base/**", "registry.example.com/base/debian", true},
		{"registry.example.com/base/**", "registry.example.com/base/debian/slim/x", true},
		{"registry.example.com/base/**", "registry.example.com/base", true},
		{"registry.example.com/base/**", "registry.example.com/based/x", false},
		{"registry.example.com/**/app", "registry.example.com/app", true},
		{"registry.example.com/**/app", "registry.example.com/a/b/c/app", true},
		{"registry.example.com/**/app", "registry.example.com/a/b/c/api", false},
		{"registry.example.com/**/**/app", "registry.example.com/a/app", true},
		{"**/app", "registry.example.com/team/app", true},
		{"**", "registry.example.com/team/app", true},
		{"**", "localhost:5000/x", true},
		// host with port: the port is part of the host segment.
		{"localhost:5000/team/*", "localhost:5000/team/app", true},
		{"localhost:5000/team/*", "localhost/team/app", false},
		{"localhost/team/*", "localhost:5000/team/app", false},
		{"127.0.0.1:5000/**", "127.0.0.1:5000/mirror/team/app", true},
		{"127.0.0.1:*/**", "127.0.0.1:5001/mirror", true},
		{"[::1]:5000/app", "[::1]:5000/app", true},
		// degenerate input.
		{"", "registry.example.com/team/app", false},
		{"**", "", false},
	}
	for _, tt := range tests {
		if got := MatchRepository(tt.pattern, tt.repo); got != tt.want {
			t.Errorf("MatchRepository(%q, %q) = %v, want %v", tt.pattern, tt.repo, got, tt.want)
		}
	}
}

func TestRuleForFirstMatchWins(t *testing.T) {
	yaml := polHeader + `rules:
  - name: specific
    match: [a.io/team/app]
    signers: [{key: app.pub}]
  - name: team
    match: [a.io/other/x, a.io/team/*]
    signers: [{key: team.pub}]
`
	pol, err := ParsePolicy("policy.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	for repo, want := range map[string]string{"a.io/team/app": "specific", "a.io/team/web": "team", "a.io/other/x": "team", "b.io/team/web": ""} {
		r := pol.RuleFor(repo)
		got := ""
		if r != nil {
			got = r.Name
		}
		if got != want {
			t.Errorf("RuleFor(%q) = %q, want %q", repo, got, want)
		}
	}
	if r := pol.RuleFor("a.io/team/web"); r != &pol.Rules[1] {
		t.Error("RuleFor does not return a pointer into Policy.Rules")
	}
	var nilPolicy *Policy
	if nilPolicy.RuleFor("a.io/team/app") != nil {
		t.Error("nil Policy matched a rule")
	}
}

func TestRequirement(t *testing.T) {
	tests := []struct {
		r        Requirement
		n, total int
		want     bool
	}{
		{Requirement{Count: 1}, 1, 3, true},
		{Requirement{Count: 1}, 0, 3, false},
		{Requirement{Count: 1}, 3, 3, true},
		{Requirement{Count: 2}, 1, 3, false},
		{Requirement{Count: 2}, 2, 3, true},
		{Requirement{Count: 2}, 3, 3, true},
		{Requirement{All: true, Count: 3}, 2, 3, false},
		{Requirement{All: true, Count: 3}, 3, 3, true},
		{Requirement{All: true, Count: 1}, 1, 1, true},
		{Requirement{All: true}, 0, 0, false}, // nothing signed never satisfies
		{Requirement{}, 1, 1, true},           // the zero value behaves as "any"
		{Requirement{}, 0, 1, false},
	}
	for _, tt := range tests {
		if got := tt.r.Satisfied(tt.n, tt.total); got != tt.want {
			t.Errorf("%+v.Satisfied(%d, %d) = %v, want %v", tt.r, tt.n, tt.total, got, tt.want)
		}
	}
	for r, want := range map[Requirement]string{
		{Count: 1}:            "any",
		{}:                    "any",
		{All: true, Count: 3}: "all",
		{Count: 2}:            "at least 2",
	} {
		if got := r.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", r, got, want)
		}
	}
}
