package verify

// This file reads the policy file: which signers must have signed which repositories, and which
// attestations they must carry. The file is decoded node by node so that every validation error
// names the file, the line and the field, for example "policy.yaml:9: rules[0].signers[1].keyless.isuer:
// unknown field; known fields: issuer, issuerRegExp, subject, subjectRegExp".

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"airlock.dev/airlock/internal/yamlfile"
)

// Policy file header values.
const (
	policyAPIVersion = "airlock.dev/v1alpha1"
	policyKind       = "Policy"
)

// Policy is a parsed policy file.
type Policy struct {
	Path  string // the file as given to LoadPolicy or ParsePolicy
	Rules []Rule // in file order; the first rule that matches a repository applies
}

// Rule says who must have signed the images it matches and which attestations they must carry.
type Rule struct {
	Name         string   // as written, "" when not given
	Line         int      // line of the rule in the policy file
	Match        []string // repository patterns, see MatchRepository
	Signers      []Signer
	Require      Requirement
	Attestations []string // full predicate type URIs (aliases expanded)
	// RequireSignedReferrers lists referrer kinds (ReferrerKindsSignable) every referrer of which,
	// attached to the image, must carry a valid signature by a signer of the rule.
	RequireSignedReferrers []string
}

// ReferrerKindsSignable are the referrer kinds requireSignedReferrers accepts: the artifacts that are
// not signatures or attestations themselves (those are signed by nature).
var ReferrerKindsSignable = []string{"sbom", "other"}

// Signer is a key or a keyless identity.
type Signer struct {
	Name          string // display name: the key file's base name, or "issuer / subject"
	Key           string // absolute path of a PEM public key; "" for keyless
	Issuer        string // exact OIDC issuer; "" when IssuerRegExp is used (or for a key)
	IssuerRegExp  string // regular expression the whole issuer must match
	Subject       string // exact certificate subject (SAN); "" when SubjectRegExp is used
	SubjectRegExp string // regular expression the whole subject must match
	// RequireTlog: a signature by this key counts only with a transparency log entry, verified
	// against the trusted root. Keyless signatures always need one.
	RequireTlog bool
}

// Keyless reports whether s is a keyless (Fulcio certificate) identity rather than a public key.
func (s Signer) Keyless() bool { return s.Key == "" }

// Requirement is how many signers must have signed.
type Requirement struct {
	All   bool // every signer of the rule
	Count int  // >= 1; "any" is Count 1. With All, the number of signers of the rule.
}

// Satisfied reports whether n distinct valid signers out of total meet the requirement.
func (r Requirement) Satisfied(n, total int) bool {
	if n <= 0 {
		return false
	}
	if r.All {
		return n >= total
	}
	count := r.Count
	if count < 1 {
		count = 1
	}
	return n >= count
}

// String returns "any", "all" or "at least N".
func (r Requirement) String() string {
	switch {
	case r.All:
		return "all"
	case r.Count <= 1:
		return "any"
	default:
		return "at least " + strconv.Itoa(r.Count)
	}
}

// PredicateTypeAliases maps cosign's --type names to predicate type URIs. It is the table of
// cosign v3 (cmd/cosign/cli/options/predicate.go), so a policy may name an attestation the way it
// was attached with "cosign attest --type".
var PredicateTypeAliases = map[string]string{
	"custom":           "https://cosign.sigstore.dev/attestation/v1",
	"slsaprovenance":   "https://slsa.dev/provenance/v0.2",
	"slsaprovenance02": "https://slsa.dev/provenance/v0.2",
	"slsaprovenance1":  "https://slsa.dev/provenance/v1",
	"spdx":             "https://spdx.dev/Document",
	"spdxjson":         "https://spdx.dev/Document",
	"cyclonedx":        "https://cyclonedx.org/bom",
	"link":             "https://in-toto.io/Link/v1",
	"vuln":             "https://cosign.sigstore.dev/attestation/vuln/v1",
	"openvex":          "https://openvex.dev/ns",
}

// LoadPolicy reads and validates the policy file at path. Key files are not opened.
func LoadPolicy(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	return ParsePolicy(path, data)
}

// ParsePolicy validates data read from path. The path is used in error messages and to resolve
// relative key paths; the key files are not opened. Every problem found is reported, each as
// "FILE:LINE: FIELD: MESSAGE", joined with errors.Join when there are several.
func ParsePolicy(path string, data []byte) (*Policy, error) {
	yp, err := yamlfile.NewParser(path)
	if err != nil {
		return nil, err
	}
	root, err := yamlfile.Decode(path, data, "a Policy with apiVersion, kind and rules", "a policy file")
	if err != nil {
		return nil, err
	}
	p := &policyParser{yp}
	pol := p.policy(root)
	if err := p.Err(); err != nil {
		return nil, err
	}
	pol.Path = path
	return pol, nil
}

// RuleFor returns the first rule whose patterns match repository (host/path, without tag or
// digest), or nil when no rule does.
func (p *Policy) RuleFor(repository string) *Rule {
	if p == nil {
		return nil
	}
	for i := range p.Rules {
		for _, pattern := range p.Rules[i].Match {
			if MatchRepository(pattern, repository) {
				return &p.Rules[i]
			}
		}
	}
	return nil
}

// MatchRepository reports whether pattern matches repository (host/path, without tag or digest).
// Both are split at '/': a "*" in a segment stands for any characters within that segment (so "*"
// alone is exactly one segment), and a "**" segment stands for any number of segments, none
// included. Other characters match themselves; the host (first segment) is compared ignoring case.
// "**" alone matches every repository.
func MatchRepository(pattern, repository string) bool {
	if pattern == "" || repository == "" {
		return false
	}
	return polMatchSegments(polSplit(pattern), polSplit(repository))
}

// polSplit splits a pattern or repository into segments, lowercasing the host.
func polSplit(s string) []string {
	segs := strings.Split(s, "/")
	segs[0] = strings.ToLower(segs[0])
	return segs
}

func polMatchSegments(pat, repo []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			for len(rest) > 0 && rest[0] == "**" {
				rest = rest[1:]
			}
			if len(rest) == 0 {
				return true
			}
			for i := 0; i <= len(repo); i++ {
				if polMatchSegments(rest, repo[i:]) {
					return true
				}
			}
			return false
		}
		if len(repo) == 0 || !polMatchSegment(pat[0], repo[0]) {
			return false
		}
		pat, repo = pat[1:], repo[1:]
	}
	return len(repo) == 0
}

// polMatchSegment matches one segment, where '*' is any run of characters.
func polMatchSegment(pat, s string) bool {
	parts := strings.Split(pat, "*")
	if len(parts) == 1 {
		return pat == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, part := range parts[1 : len(parts)-1] {
		i := strings.Index(s, part)
		if i < 0 {
			return false
		}
		s = s[i+len(part):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

// polCheckPattern reports why a match pattern is not usable.
func polCheckPattern(pattern string) error {
	const form = "expected HOST[:PORT]/PATH with * for one path segment and ** for any number, e.g. registry.example.com/team/*, or ** for every repository"
	switch {
	case strings.TrimSpace(pattern) == "":
		return fmt.Errorf("empty pattern; %s", form)
	case strings.ContainsAny(pattern, " \t\r\n"):
		return fmt.Errorf("pattern %q contains whitespace; %s", pattern, form)
	case strings.Contains(pattern, "://"):
		return fmt.Errorf("pattern %q must not include a URL scheme; %s", pattern, form)
	case strings.Contains(pattern, "@"):
		return fmt.Errorf("pattern %q includes a digest; patterns match the repository only, without tag or digest; %s", pattern, form)
	case pattern == "**":
		return nil
	case !strings.Contains(pattern, "/"):
		return fmt.Errorf("pattern %q has no path: repositories are HOST/PATH, so it would match nothing; %s", pattern, form)
	}
	if colon := strings.LastIndexByte(pattern, ':'); colon > strings.LastIndexByte(pattern, '/') {
		return fmt.Errorf("pattern %q includes a tag (%q); patterns match the repository only, without tag or digest; %s",
			pattern, pattern[colon:], form)
	}
	segs := strings.Split(pattern, "/")
	for i, seg := range segs {
		switch {
		case seg == "":
			return fmt.Errorf("pattern %q has an empty path segment; %s", pattern, form)
		case strings.Contains(seg, "**") && seg != "**":
			return fmt.Errorf("pattern %q: ** must be a whole path segment, got %q; %s", pattern, seg, form)
		case i > 0 && strings.ToLower(seg) != seg:
			return fmt.Errorf("pattern %q would never match: repository paths are lowercase", pattern)
		}
	}
	return nil
}

// policyError is the error type of policy validation: "FILE:LINE: FIELD: MESSAGE".
type policyError = yamlfile.Error

// policyParser walks the document, collecting errors.
type policyParser struct {
	*yamlfile.Parser
}

var (
	polTopFields     = []string{"apiVersion", "kind", "rules"}
	polRuleFields    = []string{"name", "match", "signers", "require", "attestations", "requireSignedReferrers"}
	polSignerFields  = []string{"key", "keyless", "requireTlog"}
	polKeylessFields = []string{"issuer", "issuerRegExp", "subject", "subjectRegExp"}
)

func (p *policyParser) policy(root *yaml.Node) *Policy {
	root = yamlfile.Deref(root)
	pol := &Policy{}
	f := p.Fields(root, "", polTopFields)
	if f == nil {
		return pol
	}
	p.Expect(root, f, "apiVersion", policyAPIVersion)
	p.Expect(root, f, "kind", policyKind)
	n, ok := f["rules"]
	if !ok {
		p.Errorf(root, "rules", "missing; list at least one rule with match and signers")
		return pol
	}
	items, ok := p.NonEmptyList(n, "rules", "rule")
	if !ok {
		return pol
	}
	for i, item := range items {
		if r, ok := p.rule(item, fmt.Sprintf("rules[%d]", i)); ok {
			pol.Rules = append(pol.Rules, r)
		}
	}
	return pol
}

func (p *policyParser) rule(n *yaml.Node, field string) (Rule, bool) {
	before := p.NumErrors()
	r := Rule{Line: n.Line, Require: Requirement{Count: 1}}
	f := p.Fields(n, field, polRuleFields)
	if f == nil {
		return r, false
	}
	if nn, ok := f["name"]; ok && !yamlfile.IsNull(nn) {
		r.Name, _ = p.Str(nn, field+".name")
	}
	if mn, ok := f["match"]; !ok {
		p.Errorf(n, field+".match", "missing; list the repositories this rule covers, e.g. match: [registry.example.com/team/*]")
	} else {
		r.Match = p.match(mn, field+".match")
	}
	beforeSigners := p.NumErrors()
	if sn, ok := f["signers"]; !ok {
		p.Errorf(n, field+".signers", "missing; list at least one signer (key: or keyless:)")
	} else {
		r.Signers = p.signers(sn, field+".signers")
	}
	signersOK := p.NumErrors() == beforeSigners
	if rn, ok := f["require"]; ok && !yamlfile.IsNull(rn) {
		r.Require = p.require(rn, field+".require", len(r.Signers), signersOK)
	}
	if an, ok := f["attestations"]; ok && !yamlfile.IsNull(an) {
		r.Attestations = p.attestations(an, field+".attestations")
	}
	if kn, ok := f["requireSignedReferrers"]; ok {
		r.RequireSignedReferrers = p.referrerKinds(kn, field+".requireSignedReferrers")
	}
	return r, p.NumErrors() == before
}

func (p *policyParser) match(n *yaml.Node, field string) []string {
	if yamlfile.IsString(n) {
		p.Errorf(n, field, "must be a list of patterns, got %s; write it as [%s]", yamlfile.Describe(n), n.Value)
		return nil
	}
	items, ok := p.NonEmptyList(n, field, "pattern")
	if !ok {
		return nil
	}
	var out []string
	for i, item := range items {
		itemField := fmt.Sprintf("%s[%d]", field, i)
		s, ok := p.Str(item, itemField)
		if !ok {
			continue
		}
		if err := polCheckPattern(s); err != nil {
			p.Errorf(item, itemField, "%s", err)
			continue
		}
		out = append(out, s)
	}
	return out
}

func (p *policyParser) signers(n *yaml.Node, field string) []Signer {
	items, ok := p.NonEmptyList(n, field, "signer")
	if !ok {
		return nil
	}
	var out []Signer
	seen := make(map[Signer]int) // signer without display name -> index in items
	for i, item := range items {
		itemField := fmt.Sprintf("%s[%d]", field, i)
		s, ok := p.signer(item, itemField)
		if !ok {
			continue
		}
		key := s
		key.Name, key.RequireTlog = "", false
		if j, dup := seen[key]; dup {
			p.Errorf(item, itemField, "same signer as %s[%d] (line %d): %s", field, j, items[j].Line, s.Name)
			continue
		}
		seen[key] = i
		out = append(out, s)
	}
	return out
}

func (p *policyParser) signer(n *yaml.Node, field string) (Signer, bool) {
	before := p.NumErrors()
	f := p.Fields(n, field, polSignerFields)
	if f == nil {
		return Signer{}, false
	}
	kn, hasKey := f["key"]
	ln, hasKeyless := f["keyless"]
	requireTlog := false
	if tn, ok := f["requireTlog"]; ok {
		if tn.Kind != yaml.ScalarNode || tn.Tag != "!!bool" || tn.Decode(&requireTlog) != nil {
			p.Errorf(tn, field+".requireTlog", "must be true or false, got %s", yamlfile.Describe(tn))
		} else if hasKeyless && !hasKey && !requireTlog {
			p.Errorf(tn, field+".requireTlog", "a keyless signature always needs a transparency log entry; false cannot turn that off: leave requireTlog out")
		}
	}
	switch {
	case hasKey && hasKeyless:
		p.Errorf(n, field, "has both key and keyless; a signer is one or the other, list them as two signers")
		return Signer{}, false
	case !hasKey && !hasKeyless:
		p.Errorf(n, field, "needs key (a cosign public key file) or keyless (issuer and subject)")
		return Signer{}, false
	case hasKey:
		path, ok := p.Path(kn, field+".key", "expected a cosign public key file such as keys/release.pub")
		if !ok {
			return Signer{}, false
		}
		if p.NumErrors() != before {
			return Signer{}, false
		}
		return Signer{Name: filepath.Base(path), Key: path, RequireTlog: requireTlog}, true
	}

	field += ".keyless"
	var s Signer
	f = p.Fields(ln, field, polKeylessFields)
	if f == nil {
		return Signer{}, false
	}
	s.Issuer, s.IssuerRegExp = p.identity(ln, f, field, "issuer", "https://token.actions.githubusercontent.com")
	s.Subject, s.SubjectRegExp = p.identity(ln, f, field, "subject", "https://github.com/ORG/REPO/.github/workflows/release.yml@refs/heads/main")
	if p.NumErrors() != before {
		return Signer{}, false
	}
	s.Name = polFirst(s.Issuer, s.IssuerRegExp) + " / " + polFirst(s.Subject, s.SubjectRegExp)
	return s, true
}

// identity reads NAME or NAMERegExp of a keyless signer: exactly one must be given.
func (p *policyParser) identity(n *yaml.Node, f map[string]*yaml.Node, field, name, example string) (exact, re string) {
	en, hasExact := f[name]
	rn, hasRE := f[name+"RegExp"]
	switch {
	case hasExact && hasRE:
		p.Errorf(rn, field+"."+name+"RegExp", "given together with %s; use one: %s for an exact match or %sRegExp for a regular expression", name, name, name)
	case !hasExact && !hasRE:
		p.Errorf(n, field+"."+name, "missing; give %s (exact, e.g. %s) or %sRegExp", name, example, name)
	case hasExact:
		if s, ok := p.Str(en, field+"."+name); ok {
			if strings.TrimSpace(s) == "" {
				p.Errorf(en, field+"."+name, "empty; expected e.g. %s", example)
			}
			exact = s
		}
	default:
		reField := field + "." + name + "RegExp"
		if s, ok := p.Str(rn, reField); ok {
			if strings.TrimSpace(s) == "" {
				p.Errorf(rn, reField, "empty regular expression; to accept any %s write \".*\", but prefer a narrow one", name)
			} else if _, err := regexp.Compile(s); err != nil {
				p.Errorf(rn, reField, "invalid regular expression %q: %s", s, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
			}
			re = s
		}
	}
	return exact, re
}

func polFirst(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// require parses "any", "all" or a positive integer. signers is the number of valid signers of the
// rule, checked against N only when the rest of the rule is valid (signersValid).
func (p *policyParser) require(n *yaml.Node, field string, signers int, signersValid bool) Requirement {
	const want = `must be "any", "all" or a positive number of signers`
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!int") {
		p.Errorf(n, field, "%s, got %s", want, yamlfile.Describe(n))
		return Requirement{Count: 1}
	}
	switch n.Value {
	case "any":
		return Requirement{Count: 1}
	case "all":
		return Requirement{All: true, Count: max(signers, 1)}
	}
	count, err := strconv.Atoi(n.Value)
	if err != nil || count < 1 {
		p.Errorf(n, field, "%s, got %s", want, yamlfile.Describe(n))
		return Requirement{Count: 1}
	}
	if signersValid && count > signers {
		p.Errorf(n, field, "requires %d signers but the rule lists only %d", count, signers)
	}
	return Requirement{Count: count}
}

func (p *policyParser) attestations(n *yaml.Node, field string) []string {
	if n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
		p.Errorf(n, field, "empty list; leave attestations out to require none")
		return nil
	}
	items, ok := p.NonEmptyList(n, field, "predicate type")
	if !ok {
		return nil
	}
	var out []string
	seen := make(map[string]int)
	for i, item := range items {
		itemField := fmt.Sprintf("%s[%d]", field, i)
		s, ok := p.Str(item, itemField)
		if !ok {
			continue
		}
		uri, ok := PredicateTypeAliases[s]
		if !ok {
			if !strings.Contains(s, "://") || strings.ContainsAny(s, " \t\r\n") {
				p.Errorf(item, itemField, "unknown predicate type %q; use a full URI such as https://slsa.dev/provenance/v1 or one of the aliases %s",
					s, strings.Join(polAliasNames(), ", "))
				continue
			}
			uri = s
		}
		if j, dup := seen[uri]; dup {
			p.Errorf(item, itemField, "same predicate type as %s[%d] (line %d): %s", field, j, items[j].Line, uri)
			continue
		}
		seen[uri] = i
		out = append(out, uri)
	}
	return out
}

// referrerKinds parses requireSignedReferrers: a non-empty list of ReferrerKindsSignable.
func (p *policyParser) referrerKinds(n *yaml.Node, field string) []string {
	want := strings.Join(ReferrerKindsSignable, " or ")
	if n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
		p.Errorf(n, field, "empty list; leave requireSignedReferrers out to require none, or list %s", want)
		return nil
	}
	if yamlfile.IsString(n) {
		p.Errorf(n, field, "must be a list of referrer kinds, got %s; write it as [%s]", yamlfile.Describe(n), n.Value)
		return nil
	}
	items, ok := p.NonEmptyList(n, field, "referrer kind")
	if !ok {
		return nil
	}
	var out []string
	seen := make(map[string]int)
	for i, item := range items {
		itemField := fmt.Sprintf("%s[%d]", field, i)
		s, ok := p.Str(item, itemField)
		if !ok {
			continue
		}
		switch {
		case s == "signature" || s == "attestation":
			p.Errorf(item, itemField, "%ss are signed by nature; list %s (require attestations with attestations:)", s, want)
			continue
		case !slices.Contains(ReferrerKindsSignable, s):
			p.Errorf(item, itemField, "unknown referrer kind %q; use %s", s, want)
			continue
		}
		if j, dup := seen[s]; dup {
			p.Errorf(item, itemField, "same kind as %s[%d] (line %d): %s", field, j, items[j].Line, s)
			continue
		}
		seen[s] = i
		out = append(out, s)
	}
	return out
}

func polAliasNames() []string {
	names := make([]string, 0, len(PredicateTypeAliases))
	for name := range PredicateTypeAliases {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
