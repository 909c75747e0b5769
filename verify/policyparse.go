package verify

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"airlock.dev/airlock/internal/yamlfile"
)

// policyError is the error type of policy validation: "FILE:LINE: FIELD: MESSAGE".
type policyError = yamlfile.Error

// policyParser walks the document, collecting errors.
type policyParser struct {
	*yamlfile.Parser
	// readFile reads a keyring signer's keyring; nil leaves keyrings unread (see parsePolicy).
	readFile func(string) ([]byte, error)
}

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
		p.Errorf(n, field+".signers", "missing; list at least one signer (key:, keyless: or keyring:)")
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
	items, ok := p.list(n, field, "pattern")
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

// list reads a non-empty list of whats; a single string is refused with how to write it as a list.
func (p *policyParser) list(n *yaml.Node, field, what string) ([]*yaml.Node, bool) {
	if yamlfile.IsString(n) {
		p.Errorf(n, field, "must be a list of %ss, got %s; write it as [%s]", what, yamlfile.Describe(n), n.Value)
		return nil, false
	}
	return p.NonEmptyList(n, field, what)
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
		key.Name, key.RequireTlog, key.ring = "", false, nil
		if j, dup := seen[key]; dup {
			p.Errorf(item, itemField, "same signer as %s[%d] (line %d): %s", field, j, items[j].Line, s.Name)
			continue
		}
		seen[key] = i
		out = append(out, s)
	}
	return out
}

// polSignerForms are the fields a signer gives exactly one of.
var polSignerForms = []string{"key", "keyless", "keyring"}

func (p *policyParser) signer(n *yaml.Node, field string) (Signer, bool) {
	before := p.NumErrors()
	f := p.Fields(n, field, polSignerFields)
	if f == nil {
		return Signer{}, false
	}
	var forms []string
	for _, form := range polSignerForms {
		if _, ok := f[form]; ok {
			forms = append(forms, form)
		}
	}
	requireTlog := p.requireTlog(f, field, forms)
	switch {
	case len(forms) > 2:
		p.Errorf(n, field, "has key, keyless and keyring; a signer is one of them, list them as separate signers")
		return Signer{}, false
	case len(forms) == 2:
		p.Errorf(n, field, "has both %s and %s; a signer is one or the other, list them as two signers", forms[0], forms[1])
		return Signer{}, false
	case len(forms) == 0:
		p.Errorf(n, field, "needs key (a cosign public key file), keyless (issuer and subject) or keyring (an OpenPGP keyring, for Helm charts' provenance)")
		return Signer{}, false
	}
	var s Signer
	switch forms[0] {
	case "key":
		path, _ := p.Path(f["key"], field+".key", "expected a cosign public key file such as keys/release.pub")
		s = Signer{Name: filepath.Base(path), Key: path, RequireTlog: requireTlog}
	case "keyring":
		s = p.keyringSigner(f["keyring"], field+".keyring")
	default:
		s = p.keylessSigner(f["keyless"], field+".keyless")
	}
	if p.NumErrors() != before {
		return Signer{}, false
	}
	return s, true
}

// requireTlog reads the requireTlog of a signer of the given forms (its fields f): false when absent.
// It counts for a key signer only: a keyless signature always needs the log.
func (p *policyParser) requireTlog(f map[string]*yaml.Node, field string, forms []string) bool {
	tn, ok := f["requireTlog"]
	if !ok {
		return false
	}
	requireTlog := false
	only := func(form string) bool { return len(forms) == 1 && forms[0] == form }
	switch {
	case tn.Kind != yaml.ScalarNode || tn.Tag != "!!bool" || tn.Decode(&requireTlog) != nil:
		p.Errorf(tn, field+".requireTlog", "must be true or false, got %s", yamlfile.Describe(tn))
	case only("keyless") && !requireTlog:
		p.Errorf(tn, field+".requireTlog", "a keyless signature always needs a transparency log entry; false cannot turn that off: leave requireTlog out")
	case only("keyring"):
		p.Errorf(tn, field+".requireTlog", "a keyring signer is satisfied by a Helm chart's provenance (.prov), which has no transparency log entry: leave requireTlog out")
	}
	return requireTlog
}

// keyringSigner reads the path of a keyring signer, and the keyring there (unless p.readFile is nil).
func (p *policyParser) keyringSigner(n *yaml.Node, field string) Signer {
	path, ok := p.Path(n, field, "expected an OpenPGP keyring file such as keys/charts.gpg (gpg --export KEYID > charts.gpg)")
	s := Signer{Name: filepath.Base(path), Keyring: path}
	if !ok || p.readFile == nil {
		return s
	}
	b, err := p.readFile(path)
	if err != nil {
		p.Errorf(n, field, "cannot read the keyring: %v", err)
		return s
	}
	if s.ring, err = ParseKeyring(path, b); err != nil {
		p.Errorf(n, field, "%v", err)
	}
	return s
}

// keylessSigner reads the identity of a keyless signer.
func (p *policyParser) keylessSigner(n *yaml.Node, field string) Signer {
	var s Signer
	f := p.Fields(n, field, polKeylessFields)
	if f == nil {
		return s
	}
	s.Issuer, s.IssuerRegExp = p.identity(n, f, field, "issuer", "https://token.actions.githubusercontent.com")
	s.Subject, s.SubjectRegExp = p.identity(n, f, field, "subject", "https://github.com/ORG/REPO/.github/workflows/release.yml@refs/heads/main")
	s.Name = polFirst(s.Issuer, s.IssuerRegExp) + " / " + polFirst(s.Subject, s.SubjectRegExp)
	return s
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
	return p.distinct(items, field, "predicate type", func(item *yaml.Node, itemField, s string) (string, bool) {
		if uri, ok := PredicateTypeAliases[s]; ok {
			return uri, true
		}
		if !strings.Contains(s, "://") || strings.ContainsAny(s, " \t\r\n") {
			p.Errorf(item, itemField, "unknown predicate type %q; use a full URI such as https://slsa.dev/provenance/v1 or one of the aliases %s",
				s, strings.Join(slices.Sorted(maps.Keys(PredicateTypeAliases)), ", "))
			return "", false
		}
		return s, true
	})
}

// distinct reads a list of strings, each turned into its value by value (which reports its own errors
// and returns false to leave the item out), and refuses a value given twice.
func (p *policyParser) distinct(items []*yaml.Node, field, what string, value func(item *yaml.Node, itemField, s string) (string, bool)) []string {
	var out []string
	seen := make(map[string]int)
	for i, item := range items {
		itemField := fmt.Sprintf("%s[%d]", field, i)
		s, ok := p.Str(item, itemField)
		if !ok {
			continue
		}
		v, ok := value(item, itemField, s)
		if !ok {
			continue
		}
		if j, dup := seen[v]; dup {
			p.Errorf(item, itemField, "same %s as %s[%d] (line %d): %s", what, field, j, items[j].Line, v)
			continue
		}
		seen[v] = i
		out = append(out, v)
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
	items, ok := p.list(n, field, "referrer kind")
	if !ok {
		return nil
	}
	return p.distinct(items, field, "kind", func(item *yaml.Node, itemField, s string) (string, bool) {
		switch {
		case s == "signature" || s == "attestation":
			p.Errorf(item, itemField, "%ss are signed by nature; list %s (require attestations with attestations:)", s, want)
			return "", false
		case !slices.Contains(ReferrerKindsSignable, s):
			p.Errorf(item, itemField, "unknown referrer kind %q; use %s", s, want)
			return "", false
		}
		return s, true
	})
}
