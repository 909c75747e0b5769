package verify

import "testing"

// TestRuleForAnyHost: for an image whose name nobody signed, loaded where its source host is dropped,
// the rule is the first whose patterns match the path under any host, so that relabelling the host
// cannot pick a weaker rule for the repository the image lands in; RuleFor still compares hosts.
func TestRuleForAnyHost(t *testing.T) {
	pol, err := ParsePolicy("policy.yaml", []byte(polHeader+`rules:
  - name: app needs an SBOM
    match: [registry.example.com/team/app]
    signers: [{key: k.pub}]
    attestations: [spdx]
  - name: base
    match: ["*.example.com/base/**"]
    signers: [{key: k.pub}]
  - name: catch-all
    match: ["**"]
    signers: [{key: k.pub}]
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		repo, byHost, anyHost string
	}{
		{"registry.example.com/team/app", "app needs an SBOM", "app needs an SBOM"},
		{"evil.example.org/team/app", "catch-all", "app needs an SBOM"},
		{"evil.example.org/team/app2", "catch-all", "catch-all"},
		{"evil.example.org/team/app/sub", "catch-all", "catch-all"},
		{"other.org/base/debian", "catch-all", "base"},
		{"mirror.example.com/base/debian", "base", "base"},
		{"registry.example.com/team/misc", "catch-all", "catch-all"},
	} {
		if r := pol.RuleFor(tc.repo); r == nil || r.Name != tc.byHost {
			t.Errorf("RuleFor(%s) = %v, want %q", tc.repo, r, tc.byHost)
		}
		if r := pol.RuleForAnyHost(tc.repo); r == nil || r.Name != tc.anyHost {
			t.Errorf("RuleForAnyHost(%s) = %v, want %q", tc.repo, r, tc.anyHost)
		}
	}
	var none *Policy
	if none.RuleForAnyHost("a.io/b") != nil {
		t.Error("a nil policy has a rule")
	}
}
