package verify

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// FuzzParsePolicy checks that ParsePolicy never panics, that every rule it accepts can be
// enforced (patterns, signers and a requirement the signers can meet), and that every error it
// reports names the file.
func FuzzParsePolicy(f *testing.F) {
	files, err := filepath.Glob("testdata/policy*.yaml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed policies in testdata: %v", err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(polHeader + "rules:\n  - match: ['**']\n    signers: [{key: a.pub}]\n"))
	f.Add([]byte(polHeader + "rules:\n  - match: [a.io/x/*]\n    signers:\n      - keyless: {issuerRegExp: '.*', subject: me}\n    require: all\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pol, err := ParsePolicy("p.yaml", data)
		if err != nil {
			if pol != nil {
				t.Errorf("ParsePolicy returned both a policy and an error: %v", err)
			}
			checkPolicyErrors(t, err)
			return
		}
		if pol.Path != "p.yaml" {
			t.Errorf("Path = %q, want p.yaml", pol.Path)
		}
		if len(pol.Rules) == 0 {
			t.Fatalf("ParsePolicy succeeded with no rules")
		}
		for i, r := range pol.Rules {
			if len(r.Match) == 0 || len(r.Signers) == 0 {
				t.Errorf("rules[%d]: %d patterns and %d signers, want at least one of each", i, len(r.Match), len(r.Signers))
			}
			if r.Require.Count < 1 && !r.Require.All {
				t.Errorf("rules[%d]: requirement %+v is neither all nor a count >= 1", i, r.Require)
			}
			if !r.Require.All && r.Require.Count > len(r.Signers) {
				t.Errorf("rules[%d]: requires %d signers of %d: never satisfiable", i, r.Require.Count, len(r.Signers))
			}
			if !r.Require.Satisfied(len(r.Signers), len(r.Signers)) {
				t.Errorf("rules[%d]: requirement %s is not met even when every signer signed", i, r.Require)
			}
			for _, p := range r.Match {
				if err := polCheckPattern(p); err != nil {
					t.Errorf("rules[%d]: accepted pattern %q: %v", i, p, err)
				}
			}
			for j, s := range r.Signers {
				checkSigner(t, i, j, s)
			}
		}
	})
}

// checkSigner checks that s is either a key with an absolute path or a keyless identity with
// exactly one of exact value and regular expression, for both issuer and subject.
func checkSigner(t *testing.T, rule, i int, s Signer) {
	t.Helper()
	if s.Name == "" {
		t.Errorf("rules[%d].signers[%d] has no display name: %+v", rule, i, s)
	}
	if !s.Keyless() {
		if !filepath.IsAbs(s.Key) || s.Issuer+s.IssuerRegExp+s.Subject+s.SubjectRegExp != "" {
			t.Errorf("rules[%d].signers[%d]: key signer %+v: want an absolute key path and no identity", rule, i, s)
		}
		return
	}
	for _, id := range [][2]string{{s.Issuer, s.IssuerRegExp}, {s.Subject, s.SubjectRegExp}} {
		exact, re := id[0], id[1]
		if (exact == "") == (re == "") {
			t.Errorf("rules[%d].signers[%d]: keyless signer %+v: want exactly one of value and regular expression", rule, i, s)
		}
		if re != "" {
			if _, err := regexp.Compile(re); err != nil {
				t.Errorf("rules[%d].signers[%d]: accepted regular expression %q: %v", rule, i, re, err)
			}
		}
	}
}

// checkPolicyErrors checks that err, and each error joined into it, names p.yaml.
func checkPolicyErrors(t *testing.T, err error) {
	t.Helper()
	if !strings.HasPrefix(err.Error(), "p.yaml") {
		t.Errorf("error does not start with the file name: %q", err)
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			checkPolicyErrors(t, e)
		}
		return
	}
	var pe *policyError
	if !errors.As(err, &pe) || pe.File != "p.yaml" {
		t.Errorf("error %q (%T) is not a policy error for p.yaml", err, err)
	}
}
