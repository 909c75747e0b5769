package verify

// This file reads the policy file: which signers must have signed which repositories, and which
// attestations they must carry. The file is decoded node by node so that every validation error
// names the file, the line and the field, for example "policy.yaml:9: rules[0].signers[1].keyless.isuer:
// unknown field; known fields: issuer, issuerRegExp, subject, subjectRegExp".

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

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

// Signer is a key, a keyless identity or an OpenPGP keyring (which vouches for Helm charts only, by
// their provenance: see keyringsigner.go).
type Signer struct {
	Name          string // display name: the key or keyring file's base name, or "issuer / subject"
	Key           string // absolute path of a PEM public key; "" for keyless and keyring signers
	Keyring       string // absolute path of an OpenPGP keyring; "" for key and keyless signers
	Issuer        string // exact OIDC issuer; "" when IssuerRegExp is used (or for a key)
	IssuerRegExp  string // regular expression the whole issuer must match
	Subject       string // exact certificate subject (SAN); "" when SubjectRegExp is used
	SubjectRegExp string // regular expression the whole subject must match
	// RequireTlog: a signature by this key counts only with a transparency log entry, verified
	// against the trusted root. Keyless signatures always need one.
	RequireTlog bool
	// ring is the keyring of a keyring signer, read when the policy was parsed; nil in an archive's
	// own policy (the archive carries no keyring).
	ring *Keyring
}

// Keyless reports whether s is a keyless (Fulcio certificate) identity rather than a public key or
// a keyring.
func (s Signer) Keyless() bool { return s.Key == "" && s.Keyring == "" }

// IsKeyring reports whether s is an OpenPGP keyring, satisfied by a Helm chart's provenance.
func (s Signer) IsKeyring() bool { return s.Keyring != "" }

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
	return n >= max(r.Count, 1)
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

// LoadPolicy reads and validates the policy file at path. Key files are not opened; keyrings are
// read (see ParsePolicy).
func LoadPolicy(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	return ParsePolicy(path, data)
}

// ParsePolicy validates data read from path. The path is used in error messages and to resolve
// relative key and keyring paths; the key files are not opened, the keyrings of keyring signers are
// read (an unreadable one is an error of its line). Every problem found is reported, each as
// "FILE:LINE: FIELD: MESSAGE", joined with errors.Join when there are several.
func ParsePolicy(path string, data []byte) (*Policy, error) {
	return parsePolicy(path, data, os.ReadFile)
}

// parsePolicy is ParsePolicy with the keyring files read by readFile; nil leaves them unread (an
// archive's own policy: the archive carries no keyring).
func parsePolicy(path string, data []byte, readFile func(string) ([]byte, error)) (*Policy, error) {
	yp, err := yamlfile.NewParser(path)
	if err != nil {
		return nil, err
	}
	root, err := yamlfile.Decode(path, data, "a Policy with apiVersion, kind and rules", "a policy file")
	if err != nil {
		return nil, err
	}
	p := &policyParser{Parser: yp, readFile: readFile}
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
	return p.firstRule(repository, func(pattern string) string { return pattern })
}

// RuleForAnyHost is RuleFor with the host of every pattern taken to be repository's own: the first
// rule whose patterns match repository's path, whatever host they name. It is the rule for an image
// whose source name nobody signed, loaded where its source host is dropped: every source host with
// that path lands in the same repository, so the name cannot choose among their rules.
func (p *Policy) RuleForAnyHost(repository string) *Rule {
	host, _, _ := strings.Cut(repository, "/")
	return p.firstRule(repository, func(pattern string) string {
		if ph, rest, ok := strings.Cut(pattern, "/"); ok && ph != "**" {
			return host + "/" + rest
		}
		return pattern
	})
}

// firstRule returns the first rule one of whose patterns, as pattern rewrites it, matches repository.
func (p *Policy) firstRule(repository string, pattern func(string) string) *Rule {
	if p == nil {
		return nil
	}
	for i := range p.Rules {
		for _, pat := range p.Rules[i].Match {
			if MatchRepository(pattern(pat), repository) {
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

// polMatchSegment matches one segment, where '*' is any run of characters: path.Match's star, with
// its other metacharacters ('?', '[', '\') escaped so that they match themselves.
func polMatchSegment(pat, s string) bool {
	ok, _ := path.Match(polLiteral.Replace(pat), s)
	return ok
}

var polLiteral = strings.NewReplacer(`\`, `\\`, `?`, `\?`, `[`, `\[`)

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

var (
	polTopFields     = []string{"apiVersion", "kind", "rules"}
	polRuleFields    = []string{"name", "match", "signers", "require", "attestations", "requireSignedReferrers"}
	polSignerFields  = []string{"key", "keyless", "keyring", "requireTlog"}
	polKeylessFields = []string{"issuer", "issuerRegExp", "subject", "subjectRegExp"}
)
