package admission

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"airlock.dev/airlock/sitefiles"
	"airlock.dev/airlock/verify"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const testKey = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEh4h0Km7Qd3gqCt8Eq9ImvJ0WQeZt
WJEBgSJuG4mTeNcQF8GhXbMHD0eH+Vd4T4O9rmsFrKBZ6wuEV2aJ6mDd6A==
-----END PUBLIC KEY-----
`

// TestGolden: the files of each engine for registry.site:5000/mirror are byte for byte the golden
// ones (go test ./admission -update rewrites them); the same site gives the same bytes.
func TestGolden(t *testing.T) {
	site := Site{Prefix: "registry.site:5000/mirror/", KeyPEM: []byte(testKey)}
	for engine, write := range map[string]func(Site) ([]File, error){
		"containers-policy": ContainersPolicy,
		"policy-controller": func(s Site) ([]File, error) { return PolicyController(s, "enforce") },
		"kyverno":           func(s Site) ([]File, error) { return Kyverno(s, "enforce") },
	} {
		golden(t, engine, site, write)
	}
	site.Mirrored = mirrored
	golden(t, "containers-policy-mirrored", site, ContainersPolicy)
}

// mirrored: two images whose source names the runtimes pull through the mirror.
var mirrored = []sitefiles.Mapping{
	{Source: "registry.example.com/team/app:1.4.2", SourceRepository: "registry.example.com/team/app", Target: "registry.site:5000/mirror/team/app"},
	{Source: "nginx:1.27", SourceRepository: "docker.io/library/nginx", Target: "registry.site:5000/mirror/library/nginx"},
	{Source: "registry.example.com/team/app:1.4.3", SourceRepository: "registry.example.com/team/app", Target: "registry.site:5000/mirror/team/app"},
}

// TestMirroredScopesRefused: site files of a load into another prefix, or a source loaded into two
// repositories (one scope can name one), are refused with what to do.
func TestMirroredScopesRefused(t *testing.T) {
	site := Site{Prefix: "registry.site:5000/mirror", KeyPEM: []byte(testKey)}
	other := append([]sitefiles.Mapping{}, mirrored[0], sitefiles.Mapping{Source: "x.example/y:1", SourceRepository: "x.example/y", Target: "registry.site:5000/prod/y"})
	twice := append([]sitefiles.Mapping{}, mirrored[0], sitefiles.Mapping{Source: "registry.example.com/team/app:2", SourceRepository: "registry.example.com/team/app", Target: "registry.site:5000/mirror/registry.example.com/team/app"})
	for want, ms := range map[string][]sitefiles.Mapping{
		"x.example/y:1 was loaded into registry.site:5000/prod/y, not under --to registry.site:5000/mirror": other,
		"registry.example.com/team/app was loaded into both":                                                twice,
	} {
		site.Mirrored = ms
		if _, err := ContainersPolicy(site); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v, want %q", err, want)
		}
	}
}

func golden(t *testing.T, engine string, site Site, write func(Site) ([]File, error)) {
	t.Helper()
	files, err := write(site)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := write(site)
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.ToSlash(f.Path))
	}
	var want []string
	filepath.WalkDir(filepath.Join("testdata", engine), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(filepath.Join("testdata", engine), p)
			want = append(want, filepath.ToSlash(rel))
		}
		return nil
	})
	if !*update && !slices.Equal(slices.Sorted(slices.Values(paths)), want) {
		t.Errorf("%s: files %v, want the golden ones %v", engine, paths, want)
	}
	for i, f := range files {
		golden := filepath.Join("testdata", engine, f.Path)
		if *update {
			os.MkdirAll(filepath.Dir(golden), 0o755)
			if err := os.WriteFile(golden, f.Data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if string(f.Data) != string(want) || string(again[i].Data) != string(want) {
			t.Errorf("%s differs from %s:\n%s", f.Path, golden, f.Data)
		}
	}
}

// TestContainersPolicyRefuses: a prefix with no host, or a key that is not a PEM public key.
func TestContainersPolicyRefuses(t *testing.T) {
	for _, tc := range []struct {
		site Site
		want string
	}{
		{Site{Prefix: "mirror", KeyPEM: []byte(testKey)}, `--to "mirror": want HOST[:PORT][/PREFIX]`},
		{Site{Prefix: "registry.site:5000/Mirror", KeyPEM: []byte(testKey)}, "want HOST[:PORT][/PREFIX]"},
		{Site{Prefix: "registry.site:5000/mirror", KeyPEM: []byte("not a key")}, "--site-key: not a PEM public key"},
		{Site{Prefix: "registry.site:5000/mirror", KeyPEM: []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")}, "--site-key: not a PEM public key"},
	} {
		if _, err := ContainersPolicy(tc.site); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.site, err, tc.want)
		}
	}
}

// TestPolicyControllerMode: warn is written as such; anything else is refused.
func TestPolicyControllerMode(t *testing.T) {
	site := Site{Prefix: "registry.site:5000/mirror", KeyPEM: []byte(testKey)}
	files, err := PolicyController(site, "warn")
	if err != nil || !strings.Contains(string(files[0].Data), "\n  mode: warn\n") {
		t.Errorf("warn: %v\n%s", err, files[0].Data)
	}
	if _, err := PolicyController(site, "audit"); err == nil || !strings.Contains(err.Error(), `--mode "audit": want enforce or warn`) {
		t.Errorf("audit: %v", err)
	}
	if _, err := PolicyController(Site{Prefix: "mirror", KeyPEM: []byte(testKey)}, "enforce"); err == nil {
		t.Error("a prefix without a host was taken")
	}
}

// TestKyvernoMode: warn becomes the Warn action; anything else is refused, as is a bad site.
func TestKyvernoMode(t *testing.T) {
	site := Site{Prefix: "registry.site:5000/mirror", KeyPEM: []byte(testKey)}
	files, err := Kyverno(site, "warn")
	if err != nil || !strings.Contains(string(files[0].Data), "\n  validationActions: [Warn]\n") {
		t.Errorf("warn: %v\n%s", err, files[0].Data)
	}
	if _, err := Kyverno(site, "Deny"); err == nil || !strings.Contains(err.Error(), `--mode "Deny": want enforce or warn`) {
		t.Errorf("Deny: %v", err)
	}
	if _, err := Kyverno(Site{Prefix: "registry.site:5000/mirror", KeyPEM: []byte("x")}, "enforce"); err == nil {
		t.Error("a site key that is not PEM was taken")
	}
}

// upstreamTrust is the site trust of the upstream golden files: testdata/upstream/policy.yaml.
func upstreamTrust(t *testing.T, policy string) *verify.Trust {
	t.Helper()
	tr, err := verify.TrustFromFiles(nil, "", policy)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestUpstreamGolden: with --upstream, beside the site's policy, each rule that decides a loaded
// repository becomes ClusterImagePolicies naming exactly its repositories: any (one policy, its
// signers as authorities), all (one policy per signer), attestations (one more policy); the rule
// that decides nothing loaded is left out.
func TestUpstreamGolden(t *testing.T) {
	site := Site{Prefix: "registry.site:5000/mirror", KeyPEM: []byte(testKey), Mirrored: append(mirrored, sitefiles.Mapping{Source: "registry.example.com/base/debian:12", SourceRepository: "registry.example.com/base/debian", Target: "registry.site:5000/mirror/base/debian"})}
	tr := upstreamTrust(t, "testdata/upstream/policy.yaml")
	golden(t, "policy-controller-upstream", site, func(s Site) ([]File, error) { return PolicyControllerUpstream(s, tr, "enforce") })
	keyless, err := verify.TrustFromFiles(nil, "testdata/upstream/trusted_root.json", "testdata/upstream/policy-keyless.yaml")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "policy-controller-upstream-keyless", site, func(s Site) ([]File, error) { return PolicyControllerUpstream(s, keyless, "enforce") })
}

// TestUpstreamRefused: what policy-controller cannot say, or nothing to say it of, is refused with
// the rule and the way out.
func TestUpstreamRefused(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	release, _ := os.ReadFile("testdata/upstream/release.pub")
	build, _ := os.ReadFile("testdata/upstream/build.pub")
	ops, _ := os.ReadFile("testdata/upstream/ops.pub")
	write("release.pub", string(release))
	write("build.pub", string(build))
	write("ops.pub", string(ops))
	write("charts.gpg", string(pgpPublicKey(t)))
	head := "apiVersion: airlock.dev/v1alpha1\nkind: Policy\nrules:\n"
	site := Site{Prefix: "registry.site:5000/mirror", KeyPEM: []byte(testKey), Mirrored: mirrored}
	for want, policy := range map[string]string{
		"require 2 of 3 signers cannot be written":                                    head + "  - match: ['**']\n    signers: [{key: release.pub}, {key: build.pub}, {key: ops.pub}]\n    require: 2\n",
		"signer https://issuer.example / a@example.com needs the pinned trusted root": head + "  - match: ['**']\n    signers: [{keyless: {issuer: https://issuer.example, subject: a@example.com}}]\n",
		"signer release.pub needs the pinned trusted root":                            head + "  - match: ['**']\n    signers: [{key: release.pub, requireTlog: true}]\n",
		"no rule of": head + "  - match: [registry.example.com/team/*]\n    signers: [{key: release.pub}]\n",
		"signer charts.gpg is an OpenPGP keyring (a Helm chart's provenance), which a ClusterImagePolicy cannot name": head + "  - match: ['**']\n    signers: [{keyring: charts.gpg}]\n",
		// An unsigned name could claim registry.example.com to escape the rule for other hosts.
		"mapping.txt does not say whether a pinned key signed the name": head + "  - match: [other.example/team/*]\n    signers: [{key: build.pub}]\n  - match: ['**']\n    signers: [{key: release.pub}]\n",
	} {
		tr, err := verify.TrustFromFiles(nil, "", write("policy.yaml", policy))
		if err != nil {
			t.Fatalf("%s: %v", want, err)
		}
		if _, err := PolicyControllerUpstream(site, tr, "enforce"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v, want %q", err, want)
		}
	}
	site.Mirrored = nil
	if _, err := PolicyControllerUpstream(site, upstreamTrust(t, "testdata/upstream/policy.yaml"), "enforce"); err == nil || !strings.Contains(err.Error(), "give --site-files") {
		t.Errorf("no loaded images: %v", err)
	}
}

// TestAuthorityName: a key file name becomes an authority name of lowercase letters, digits and '-'.
func TestAuthorityName(t *testing.T) {
	for in, want := range map[string]string{"cosign.pub": "cosign-pub", "Release_Key.PUB": "release-key-pub", "../a b.pem": "a-b-pem", "k9": "k9"} {
		if got := authorityName(in); got != want {
			t.Errorf("authorityName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWrite: the files are written under the directory, their directories made; a directory that
// cannot be made is an error naming it.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	got, err := Write(dir, []File{{"a.yaml", []byte("a")}, {"sub/b.yaml", []byte("b")}})
	if err != nil || len(got) != 2 {
		t.Fatalf("%v %v", got, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "sub", "b.yaml")); string(b) != "b" {
		t.Errorf("sub/b.yaml holds %q", b)
	}
	if _, err := Write(filepath.Join(dir, "a.yaml"), []File{{"x", []byte("x")}}); err == nil || !strings.Contains(err.Error(), "a.yaml") {
		t.Errorf("under a file: %v", err)
	}
	if _, err := Write(dir, []File{{"a.yaml/x", []byte("x")}}); err == nil {
		t.Error("a file under a file was written")
	}
}

// TestKeylessSCT: a keyless authority skips the SCT only when the pinned trusted root lists no CT
// log to check it against; the TrustRoot lists CT logs and timestamp authorities only where the
// trusted root has them.
func TestKeylessSCT(t *testing.T) {
	b, err := os.ReadFile("testdata/upstream/trusted_root.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m["ctlogs"] == nil {
		t.Fatalf("the test root has no CT log: %v", err)
	}
	delete(m, "ctlogs")
	delete(m, "timestampAuthorities")
	noCT, _ := json.Marshal(m)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "trusted_root.json"), noCT, 0o644)
	site := Site{Prefix: "registry.site:5000/mirror", KeyPEM: []byte(testKey), Mirrored: mirrored}
	for root, want := range map[string]bool{"testdata/upstream/trusted_root.json": false, filepath.Join(dir, "trusted_root.json"): true} {
		tr, err := verify.TrustFromFiles(nil, root, "testdata/upstream/policy-keyless.yaml")
		if err != nil {
			t.Fatal(err)
		}
		files, err := PolicyControllerUpstream(site, tr, "enforce")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(files[1].Data), "insecureIgnoreSCT: true"); got != want || files[1].Path != "clusterimagepolicy-upstream.yaml" {
			t.Errorf("%s: insecureIgnoreSCT %v, want %v", root, got, want)
		}
		tr2 := string(files[2].Data)
		if strings.Contains(tr2, "ctLogs:") == want || strings.Contains(tr2, "timestampAuthorities:") == want {
			t.Errorf("%s: TrustRoot\n%s", root, tr2)
		}
	}
}

// pgpPublicKey is an OpenPGP public key, binary, as a policy's keyring signer reads it.
func pgpPublicKey(t *testing.T) []byte {
	t.Helper()
	e, err := openpgp.NewEntity("Chart Signer", "", "charts@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := e.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
