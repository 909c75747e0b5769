// Package admission writes the policies that make a cluster enforce what the site verified: only
// images the site signed (airlock load --sign-key) are admitted. Each engine gets its own files, in
// its own format, deterministic (the same site gives the same bytes).
//
// Engines: containers/image (CRI-O, podman, skopeo): policy.json and a registries.d file, and for
// OpenShift ClusterImagePolicies; Sigstore policy-controller: a ClusterImagePolicy, and with
// --upstream those of the upstream signers and a TrustRoot; Kyverno: an ImageValidatingPolicy
// (docs/admission.md).
package admission

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"airlock.dev/airlock/internal/atomicfile"
	"airlock.dev/airlock/sitefiles"
	"airlock.dev/airlock/vocab"
)

// Site is what the policies are written from: where the site registry mirrors into, and the key that
// signs at its door.
type Site struct {
	// Prefix is HOST[:PORT][/PREFIX], as given to load --to.
	Prefix string
	// KeyPEM is the site's public key (PEM).
	KeyPEM []byte
	// Mirrored are the images loaded under the prefix whose source names the container runtimes pull
	// through the mirror (load --site-files: registries.conf mirrors, IDMS): containers-policy
	// scopes each source repository too (optional).
	Mirrored []sitefiles.Mapping
}

// File is one file to write: its path under the output directory, and its bytes.
type File struct {
	Path string
	Data []byte
}

// Write writes files under dir, each atomically (a temporary file, then a rename), replacing what is
// there, and returns their paths.
func Write(dir string, files []File) ([]string, error) {
	var written []string
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return written, err
		}
		if err := atomicfile.WriteFile(p, f.Data, 0o644); err != nil {
			return written, err
		}
		written = append(written, p)
	}
	return written, nil
}

// sourceScopes maps each source repository of s.Mirrored to the site repository it was loaded into.
// A mapping into another prefix, or a source loaded into two repositories, is refused: one scope
// names one repository a signature may name.
func (s *Site) sourceScopes() (map[string]string, error) {
	out := map[string]string{}
	for _, m := range s.Mirrored {
		if !strings.HasPrefix(m.Target, s.Prefix+"/") {
			return nil, fmt.Errorf("--site-files: %s was loaded into %s, not under --to %s; give the --to of the load that wrote the site files", m.Source, m.Target, s.Prefix)
		}
		if t, ok := out[m.SourceRepository]; ok && t != m.Target {
			return nil, fmt.Errorf("--site-files: %s was loaded into both %s and %s; a policy scope can name one: write the site files of one load", m.SourceRepository, t, m.Target)
		}
		out[m.SourceRepository] = m.Target
	}
	return out, nil
}

func (s *Site) check() error {
	s.Prefix = strings.TrimSuffix(s.Prefix, "/")
	if _, err := reference.ParseNamed(s.Prefix + "/x"); err != nil {
		return fmt.Errorf("--to %q: want HOST[:PORT][/PREFIX], the prefix load --to wrote into (e.g. registry.site:5000/mirror)", s.Prefix)
	}
	if b, _ := pem.Decode(s.KeyPEM); b == nil || b.Type != "PUBLIC KEY" {
		return errors.New("--site-key: not a PEM public key; give the site's cosign.pub")
	}
	return nil
}

// ContainersPolicy returns the policy.json and registries.d/airlock.yaml of containers/image (CRI-O,
// podman, skopeo) for the site: an image under the prefix is accepted only with a cosign signature
// (a sigstore attachment, sha256-<hex>.sig) by the site key that names its repository
// (signedIdentity matchRepository: one signature serves every tag); everything else is rejected
// (default reject). A pull by a source name that registries.conf redirects to the mirror is judged
// by the source name, so each source repository of s.Mirrored gets a scope of its own whose
// signature must name the site repository it was loaded into (exactRepository). The registries.d
// file turns on reading sigstore attachments under the prefix (where a redirected pull reads them).
func ContainersPolicy(s Site) ([]File, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	sources, err := s.sourceScopes()
	if err != nil {
		return nil, err
	}
	type identity struct {
		Type             string `json:"type"`
		DockerRepository string `json:"dockerRepository,omitempty"`
	}
	type requirement struct {
		Type           string    `json:"type"`
		KeyData        string    `json:"keyData,omitempty"`
		SignedIdentity *identity `json:"signedIdentity,omitempty"`
	}
	policy := struct {
		Default    []requirement                       `json:"default"`
		Transports map[string]map[string][]requirement `json:"transports"`
	}{
		Default: []requirement{{Type: "reject"}},
		Transports: map[string]map[string][]requirement{"docker": {
			s.Prefix: {{Type: "sigstoreSigned", KeyData: base64.StdEncoding.EncodeToString(s.KeyPEM), SignedIdentity: &identity{Type: "matchRepository"}}},
		}},
	}
	keyData := base64.StdEncoding.EncodeToString(s.KeyPEM)
	for src, target := range sources {
		policy.Transports["docker"][src] = []requirement{{Type: "sigstoreSigned", KeyData: keyData, SignedIdentity: &identity{Type: "exactRepository", DockerRepository: target}}}
	}
	pb, _ := json.MarshalIndent(policy, "", "  ") // strings, slices and maps of strings: it cannot fail
	rd := fmt.Sprintf("# airlock admission: read cosign signatures (sigstore attachments) of the site mirror.\ndocker:\n  %s:\n    use-sigstore-attachments: true\n", s.Prefix)
	return []File{{"policy.json", append(pb, '\n')}, {"registries.d/airlock.yaml", []byte(rd)}, openShiftPolicy(s, sources)}, nil
}

// openShiftPolicy is the same requirement for OpenShift, whose Machine Config Operator writes
// policy.json and registries.d on every node from a ClusterImagePolicy (config.openshift.io/v1,
// openshift/api config/v1/types_image_policy.go): the scope is the site mirror, the root of trust the
// site key, the identity matchRepository; and one more per source repository pulled through the
// mirror (ImageDigestMirrorSet), whose identity is the site repository (ExactRepository). OpenShift
// keeps its own default for other scopes (its release images must stay admitted), so unlike
// policy.json it rejects nothing else.
func openShiftPolicy(s Site, sources map[string]string) File {
	key := base64.StdEncoding.EncodeToString(s.KeyPEM)
	var b strings.Builder
	fmt.Fprintf(&b, "# airlock admission --engine containers-policy, for OpenShift: admit, under %s, only images the\n# site key signed (airlock load --sign-key). The Machine Config Operator writes it to every node.\n", s.Prefix)
	openShiftCIP(&b, "airlock-site", s.Prefix, key, "MatchRepository\n")
	for _, src := range slices.Sorted(maps.Keys(sources)) {
		fmt.Fprintf(&b, "---\n# %s, pulled through the mirror: signed by the site key for %s.\n", src, sources[src])
		openShiftCIP(&b, "airlock-site-"+digest.FromString(src).Encoded()[:12], src, key, "ExactRepository\n      exactRepository:\n        repository: "+sources[src]+"\n")
	}
	return File{"openshift/clusterimagepolicy.yaml", []byte(b.String())}
}

// openShiftCIP writes one OpenShift ClusterImagePolicy: scope, the site key (base64 PEM), and the
// signedIdentity's matchPolicy (with its fields).
func openShiftCIP(b *strings.Builder, name, scope, keyData, matchPolicy string) {
	fmt.Fprintf(b, `apiVersion: config.openshift.io/v1
kind: ClusterImagePolicy
metadata:
  name: %s
spec:
  scopes:
  - %s
  policy:
    rootOfTrust:
      policyType: PublicKey
      publicKey:
        keyData: %s
    signedIdentity:
      matchPolicy: %s`, name, scope, keyData, matchPolicy)
}

// PolicyController returns the ClusterImagePolicy (policy.sigstore.dev/v1beta1) of Sigstore
// policy-controller for the site: an image under the prefix (images[].glob PREFIX/**, which spans
// repositories, tags and digests) is admitted only with the import attestation
// (https://airlock.dev/import/v1) signed by the site key; an authority with attestations checks
// those only. No ctlog: nothing reaches Rekor, and the signatures are checked without a log. mode is
// "enforce" or "warn".
func PolicyController(s Site, mode string) ([]File, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if mode != "enforce" && mode != "warn" {
		return nil, fmt.Errorf("--mode %q: want enforce or warn", mode)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# airlock admission --engine policy-controller: admit, under %[1]s, only images whose import
# attestation the site key signed (airlock load --sign-key).
apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata:
  name: airlock-site
spec:
  mode: %[2]s
  images:
  - glob: %[3]q
  authorities:
  - name: airlock-site
    key:
      hashAlgorithm: sha256
      data: |
%[4]s    attestations:
    - name: airlock-import
      predicateType: %[5]s
`, s.Prefix, mode, s.Prefix+"/**", indent(string(s.KeyPEM), "        "), vocab.ImportPredicateType)
	return []File{{"clusterimagepolicy.yaml", []byte(b.String())}}, nil
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(strings.TrimRight(s, "\n")+"\n", "\n") {
		if line != "" {
			b.WriteString(prefix + line)
		}
	}
	return b.String()
}

// Kyverno returns the ImageValidatingPolicy (policies.kyverno.io/v1) of Kyverno for the site: a Pod
// whose images are under the prefix (matchImageReferences glob PREFIX/*; Kyverno's glob lets * span
// /) is admitted only when each of its containers, init containers and ephemeral containers names an
// image signed by the site key (a cosign key attestor) and carrying the import attestation
// (https://airlock.dev/import/v1) signed by it. The image must be named by digest, or Kyverno
// resolves and pins the digest (mutateDigest, verifyDigest). ctlog.insecureIgnoreTlog: the site has no
// log, and nothing reaches Rekor, TUF or a CT log. mode is "enforce" (Deny) or "warn" (Warn).
func Kyverno(s Site, mode string) ([]File, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	action := map[string]string{"enforce": "Deny", "warn": "Warn"}[mode]
	if action == "" {
		return nil, fmt.Errorf("--mode %q: want enforce or warn", mode)
	}
	const every = "(images.containers + images.initContainers + images.ephemeralContainers)"
	var b strings.Builder
	fmt.Fprintf(&b, `# airlock admission --engine kyverno: admit, under %[1]s, only images the site key signed with
# their import attestation (airlock load --sign-key).
apiVersion: policies.kyverno.io/v1
kind: ImageValidatingPolicy
metadata:
  name: airlock-site
spec:
  validationActions: [%[2]s]
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [pods]
  matchImageReferences:
  - glob: %[3]q
  validationConfigurations:
    mutateDigest: true
    verifyDigest: true
    required: true
  attestors:
  - name: site
    cosign:
      key:
        data: |
%[4]s      ctlog:
        insecureIgnoreTlog: true
  attestations:
  - name: airlockimport
    intoto:
      type: %[5]s
  validations:
  - expression: %[6]s.map(i, verifyImageSignatures(i, [attestors.site])).all(e, e > 0)
    message: an image is not signed by the site key (airlock load --sign-key)
  - expression: %[6]s.map(i, verifyAttestationSignatures(i, attestations.airlockimport, [attestors.site])).all(e, e > 0)
    message: an image has no import attestation signed by the site key (airlock load --sign-key)
`, s.Prefix, action, s.Prefix+"/*", indent(string(s.KeyPEM), "          "), vocab.ImportPredicateType, every)
	return []File{{"imagevalidatingpolicy.yaml", []byte(b.String())}}, nil
}
