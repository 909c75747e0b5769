package admission

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"airlock.dev/airlock/verify"
)

// PolicyControllerUpstream returns, beside the site's ClusterImagePolicy, ClusterImagePolicies that
// make policy-controller check the upstream signers again, as the site's trust says them (its policy,
// or its keys: one rule for every repository), for the images loaded under the prefix (s.Mirrored,
// from load --site-files). Each loaded repository is decided by the first rule that matches its
// source repository, as airlock decides it at the door, and a rule's ClusterImagePolicies name its
// repositories exactly (REPO:** and REPO@**): policy-controller requires every matching policy to
// pass, so rules written as globs would make a later rule apply to the repositories of an earlier
// one. Per rule: require any is one policy whose authorities are the signers (one suffices);
// require all, one policy per signer; its attestations, one more policy whose authorities each
// require them all (an authority with attestations checks only those). Keyless signers, and key
// signers that require a log entry, check against the pinned trusted root, written as a TrustRoot.
// require N (other than 1 or all) is refused: policy-controller cannot say it.
// requireSignedReferrers is checked at the door only.
func PolicyControllerUpstream(s Site, t *verify.Trust, mode string) ([]File, error) {
	files, err := PolicyController(s, mode)
	if err != nil {
		return nil, err
	}
	sources, err := s.sourceScopes()
	if err != nil {
		return nil, err
	}
	if len(sources) == 0 {
		return nil, fmt.Errorf("--upstream: no loaded images: give --site-files, the directory load --site-files wrote, to name them")
	}
	rules := upstreamRules(t)
	byRule := map[int][]string{}
	for _, src := range slices.Sorted(maps.Keys(sources)) {
		i := 0 // keys alone: the one rule
		if t.Policy != nil {
			// mapping.txt does not say whether a pinned key signed the source name it records (an
			// unsigned catalog's names are the archive's word): the name must not choose the rule. Load
			// then takes the rule for the path under any host; where that is another rule, refuse.
			r, anyHost := t.Policy.RuleFor(src), t.Policy.RuleForAnyHost(src)
			if r != nil && anyHost != nil && r.Line != anyHost.Line {
				return nil, fmt.Errorf("--upstream: %s (loaded into %s) is decided by the rule of %s:%d for its source host, by that of line %d for its path under any other host, and mapping.txt does not say whether a pinned key signed the name: write the policy so that one rule decides the path whatever the host", src, sources[src], t.Policy.Path, r.Line, anyHost.Line)
			}
			i = slices.IndexFunc(rules, func(x verify.Rule) bool { return r != nil && x.Line == r.Line })
		}
		if i < 0 {
			return nil, fmt.Errorf("--upstream: no rule of %s matches %s (loaded into %s): load refuses such an image; give the policy it was loaded with", t.Source, src, sources[src])
		}
		byRule[i] = append(byRule[i], sources[src])
	}
	var b strings.Builder
	needRoot := false
	for i, r := range rules {
		if len(byRule[i]) == 0 {
			continue
		}
		if err := upstreamRule(&b, i+1, r, byRule[i], mode, t); err != nil {
			return nil, err
		}
		needRoot = needRoot || slices.ContainsFunc(r.Signers, func(sg verify.Signer) bool { return sg.Keyless() || sg.RequireTlog })
	}
	files = append(files, File{"clusterimagepolicy-upstream.yaml", []byte(b.String())})
	if needRoot {
		var tb strings.Builder
		if err := trustRoot(&tb, t.TrustedRoot); err != nil {
			return nil, err
		}
		files = append(files, File{"trustroot-upstream.yaml", []byte(tb.String())})
	}
	return files, nil
}

// upstreamRules are the rules of the site's policy, or for keys alone the one rule they make (any
// of the keys, every repository).
func upstreamRules(t *verify.Trust) []verify.Rule {
	if t.Policy != nil {
		return t.Policy.Rules
	}
	r := verify.Rule{Name: "keys", Match: []string{"**"}, Require: verify.Requirement{Count: 1}}
	for _, k := range t.Keys {
		r.Signers = append(r.Signers, verify.Signer{Name: k.Name, Key: k.Name})
	}
	return []verify.Rule{r}
}

// upstreamRule writes the ClusterImagePolicies of rule n (1-based) for the site repositories repos.
func upstreamRule(b *strings.Builder, n int, r verify.Rule, repos []string, mode string, t *verify.Trust) error {
	where := fmt.Sprintf("rule %d", n)
	if r.Name != "" {
		where += fmt.Sprintf(" (%s)", r.Name)
	}
	if t.Policy != nil {
		where += fmt.Sprintf(", %s:%d", t.Policy.Path, r.Line)
	}
	var authorities []string
	for k, sg := range r.Signers {
		a, err := authority(k+1, sg, t)
		if err != nil {
			return fmt.Errorf("--upstream: %s: %w", where, err)
		}
		authorities = append(authorities, a)
	}
	var globs strings.Builder
	for _, repo := range repos {
		fmt.Fprintf(&globs, "  - glob: %q\n  - glob: %q\n", repo+":**", repo+"@**")
	}
	write := func(name, comment string, auths []string) {
		fmt.Fprintf(b, "---\n# %s: %s\napiVersion: policy.sigstore.dev/v1beta1\nkind: ClusterImagePolicy\nmetadata:\n  name: %s\nspec:\n  mode: %s\n  images:\n%s  authorities:\n%s",
			where, comment, name, mode, globs.String(), strings.Join(auths, ""))
	}
	name := fmt.Sprintf("airlock-upstream-%d", n)
	switch {
	case r.Require.All && len(authorities) > 1:
		for k, a := range authorities {
			write(fmt.Sprintf("%s-signer-%d", name, k+1), "require all: signed by "+r.Signers[k].Name, []string{a})
		}
	case r.Require.All || r.Require.Count <= 1:
		write(name, "signed by one of its signers", authorities)
	default:
		return fmt.Errorf("--upstream: %s: require %d of %d signers cannot be written for policy-controller (one passing authority satisfies a policy): use any or all", where, r.Require.Count, len(r.Signers))
	}
	if len(r.Attestations) > 0 {
		var atts strings.Builder
		atts.WriteString("    attestations:\n")
		for k, pt := range r.Attestations {
			fmt.Fprintf(&atts, "    - name: attestation-%d\n      predicateType: %s\n", k+1, pt)
		}
		var auths []string
		for _, a := range authorities {
			auths = append(auths, a+atts.String())
		}
		write(name+"-attestations", "its attestations ("+strings.Join(r.Attestations, ", ")+"), by one of its signers", auths)
	}
	return nil
}

// authority is the authority of signer k (1-based) of a rule. A key: the key, and no ctlog unless
// the signer requires a log entry (policy-controller then asks no Rekor and checks no log entry). A
// keyless identity: the issuer and subject (a regular expression anchored, as airlock matches the
// whole value), the pinned trusted root's CAs and logs (TrustRoot airlock-upstream), the log
// required (airlock requires one for every keyless signature), and the SCT only where the trusted
// root lists a CT log.
func authority(k int, sg verify.Signer, t *verify.Trust) (string, error) {
	if sg.IsKeyring() {
		return "", fmt.Errorf("signer %s is an OpenPGP keyring (a Helm chart's provenance), which a ClusterImagePolicy cannot name: policy-controller checks cosign and Sigstore signatures only; leave --upstream out, or give --policy a policy without keyring signers for the images it covers", sg.Name)
	}
	if (sg.Keyless() || sg.RequireTlog) && t.TrustedRoot == nil {
		return "", fmt.Errorf("signer %s needs the pinned trusted root (--trusted-root, or trustedRoot in the site trust file) for its log entries and certificates", sg.Name)
	}
	ctlog := ""
	if sg.Keyless() || sg.RequireTlog {
		ctlog = fmt.Sprintf("    ctlog:\n      trustRootRef: %s\n", upstreamTrustRoot)
	}
	if sg.Keyless() {
		var id strings.Builder
		field := func(name, exact, re string) {
			if exact != "" {
				fmt.Fprintf(&id, "        %s: %q\n", name, exact)
			} else if re != "" {
				fmt.Fprintf(&id, "        %sRegExp: %q\n", name, "^(?:"+re+")$")
			}
		}
		field("issuer", sg.Issuer, sg.IssuerRegExp)
		field("subject", sg.Subject, sg.SubjectRegExp)
		ident := strings.Replace(id.String(), "        ", "      - ", 1)
		sct := ""
		if len(t.TrustedRoot.CTLogs()) == 0 {
			sct = "      insecureIgnoreSCT: true\n"
		}
		return fmt.Sprintf("  - name: keyless-%d\n    keyless:\n      identities:\n%s      trustRootRef: %s\n%s%s", k, ident, upstreamTrustRoot, sct, ctlog), nil
	}
	name := filepath.Base(sg.Key)
	i := slices.IndexFunc(t.Keys, func(k *verify.Key) bool { return k.Name == name })
	if i < 0 {
		return "", fmt.Errorf("signer %s: its key was not loaded", name)
	}
	pem, err := t.Keys[i].PEM()
	if err != nil {
		return "", fmt.Errorf("signer %s: %w", name, err)
	}
	return fmt.Sprintf("  - name: %s\n    key:\n      hashAlgorithm: sha256\n      data: |\n%s%s", authorityName(name), indent(string(pem), "        "), ctlog), nil
}

// authorityName makes a key file name an authority name (lowercase letters, digits and '-').
func authorityName(s string) string {
	return strings.Trim(strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, s), "-")
}
