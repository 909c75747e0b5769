package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
	"airlock.dev/airlock/e2e/internal/tools"
)

// TestLoadSignsAtTheSite: load --sign-key signs, with the site's cosign key, what passed verification
// against the trust pinned at the site, where the real cosign CLI looks: `cosign verify --key
// site.pub` passes on the index and on a platform manifest in the site registry (distribution, no
// referrers API), `cosign verify-attestation --type https://airlock.dev/import/v1` passes on the
// index and its statement names the source, and the upstream signer's legacy signature still
// verifies there. A second load
// signs nothing again. With nothing pinned, --sign-key is refused before anything is pushed.
func TestLoadSignsAtTheSite(t *testing.T) {
	ctx := t.Context()
	src := registries.StartGGCR(t)
	dst := registries.StartDistribution(ctx, t)
	work := t.TempDir()
	app := seed.Sample(ctx, t, src, "team/app", filepath.Join(work, "keys"))
	c := &seed.Cosign{Path: tools.Path(t, "cosign"), Home: t.TempDir()}
	siteKey, sitePub, err := c.GenerateKeyPair(ctx, filepath.Join(work, "site"))
	if err != nil {
		t.Fatal(err)
	}
	withPassword := []string{"COSIGN_PASSWORD=" + seed.KeyPassword}
	set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\n", app.Ref()))
	arch := filepath.Join(work, "archive")
	mustRun(ctx, t, "save", "-c", set, "-o", arch)
	to := dst + "/mirror"

	res := runEnv(ctx, t, withPassword, "load", arch, "--to", to, "--sign-key", siteKey)
	if res.code != 2 || !strings.Contains(res.stderr, "--sign-key signs only what was verified") {
		t.Errorf("--sign-key with nothing pinned: exit %d\n%s", res.code, res.stderr)
	}
	if repos := catalogRepos(ctx, t, dst); len(repos) != 0 {
		t.Errorf("pushed before refusing: %v", repos)
	}

	siteFiles := filepath.Join(work, "site-files")
	load := func() []struct{ Digest, Tag, Action string } {
		t.Helper()
		res := runEnv(ctx, t, withPassword, "load", arch, "--to", to, "--key", app.PublicKeyPath, "--sign-key", siteKey, "--site-files", siteFiles, "--format", "json")
		if res.code != 0 {
			t.Fatalf("load --sign-key: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
		}
		var rep struct {
			SiteSigned []struct{ Digest, Tag, Action string }
		}
		if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
			t.Fatalf("%v\n%s", err, res.stdout)
		}
		return rep.SiteSigned
	}
	signed := load()
	if len(signed) != 3+len(app.Platforms) {
		t.Fatalf("site-signed %+v, want the index and its %d platform manifests, and the import attestation (.att and bundle)", signed, len(app.Platforms))
	}
	for _, s := range signed {
		if s.Action != "written" {
			t.Errorf("first load: %+v, want written", s)
		}
	}

	site := func(d fmt.Stringer) string { return to + "/team/app@" + d.String() }
	verifyWith := func(what, pub, ref string, extra ...string) {
		t.Helper()
		args := append(append([]string{"verify", "--key", pub}, extra...), offlineVerifyFlags...)
		if out, err := c.Run(ctx, c.Home, append(args, ref)...); err != nil {
			t.Errorf("cosign verify %s: %v\n%s", what, err, out)
		}
	}
	// The index carries upstream Sigstore bundles, which make cosign v3 look at bundles only; the
	// site's signature is a legacy one (what policy-controller and containers/image read).
	verifyWith("the site's signature on the index", sitePub, site(app.IndexDigest), "--new-bundle-format=false")
	verifyWith("the site's signature on linux/amd64", sitePub, site(app.Platforms["linux/amd64"].Digest), "--new-bundle-format=false")
	verifyWith("the upstream legacy signature on the index, kept", app.PublicKeyPath, site(app.IndexDigest), "--new-bundle-format=false")
	args := append([]string{"verify-attestation", "--key", sitePub, "--type", "https://airlock.dev/import/v1", "--new-bundle-format=false"}, offlineVerifyFlags...)
	out, err := c.Run(ctx, c.Home, append(args, site(app.IndexDigest))...)
	if err != nil || !strings.Contains(importStatements(string(out)), `"reference":"`+app.Ref()+`"`) {
		t.Errorf("cosign verify-attestation of the import attestation: %v\n%s", err, out)
	}
	// cosign v3 reads bundles only where an image has any (the upstream's): the site's bundle passes,
	// as a signature (cosign takes any bundle over the digest) and as the import attestation.
	verifyWith("the site's bundle on the index", sitePub, site(app.IndexDigest))
	args = append([]string{"verify-attestation", "--key", sitePub, "--type", "https://airlock.dev/import/v1"}, offlineVerifyFlags...)
	if out, err := c.Run(ctx, c.Home, append(args, site(app.IndexDigest))...); err != nil || !strings.Contains(importStatements(string(out)), `"reference":"`+app.Ref()+`"`) {
		t.Errorf("cosign verify-attestation (bundles) of the import attestation: %v\n%s", err, out)
	}

	// airlock's own verify, on the site registry, with the site key alone.
	if res := run(ctx, t, "verify", to, "--archive", arch, "--key", sitePub); res.code != 0 || !importReported(res.stdout) {
		t.Errorf("airlock verify SITE --key site.pub: exit %d, want 0 and the import attestation reported valid\n%s\n%s", res.code, res.stdout, res.stderr)
	}

	checkContainersPolicy(t, to, sitePub, app, set)
	checkMirroredPulls(t, to, sitePub, app, set, siteFiles)
	checkKyverno(t, to, sitePub, app)
	otherKey, otherPub, err := c.GenerateKeyPair(ctx, filepath.Join(work, "other"))
	if err != nil {
		t.Fatal(err)
	}
	checkPolicyControllerUpstream(t, c, to, sitePub, app, siteFiles, otherPub)
	checkPolicyController(t, c, to, siteKey, sitePub, otherKey, app)
	checkKyvernoAttestation(t, c, to, siteKey, sitePub, app)

	for _, s := range load() {
		if s.Action != "present" {
			t.Errorf("second load: %+v, want present (nothing signed twice)", s)
		}
	}
	verifyWith("the site's signature on the index after a second load", sitePub, site(app.IndexDigest), "--new-bundle-format=false")

	// copy --sign-key: registry to registry, verified against the ImageSet's key, signed on the target.
	res = runEnv(ctx, t, withPassword, "copy", "-c", set, "--to", dst+"/prod", "--sign-key", siteKey)
	if res.code != 2 {
		t.Errorf("copy --sign-key with nothing pinned: exit %d, want 2\n%s", res.code, res.stderr)
	}
	if res := runEnv(ctx, t, withPassword, "copy", "-c", set, "--to", dst+"/prod", "--key", app.PublicKeyPath, "--sign-key", siteKey); res.code != 0 || !strings.Contains(res.stdout, "site-signed: 5 signed now") {
		t.Fatalf("copy --sign-key: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	verifyWith("the copy's signature on linux/arm64", sitePub, dst+"/prod/team/app@"+app.Platforms["linux/arm64"].Digest.String(), "--new-bundle-format=false")
}

// importStatements decodes the payloads of the DSSE envelopes cosign verify-attestation prints, one a
// line.
func importStatements(out string) string {
	var b strings.Builder
	for _, line := range strings.Split(out, "\n") {
		var env struct{ Payload string }
		if json.Unmarshal([]byte(line), &env) == nil {
			p, _ := base64.StdEncoding.DecodeString(env.Payload)
			b.Write(p)
		}
	}
	return b.String()
}

// checkContainersPolicy: the policy.json and registries.d that airlock admission writes make the real
// containers/image evaluator (go.podman.io/image/v5, what CRI-O, podman and skopeo run; e2e/cmd/
// imagepolicy pulls through it, as Debian's skopeo has sigstore disabled) admit the site-signed
// image, one platform and all of them, and refuse an image under the same prefix that the site did
// not sign (copied there with its upstream signature only: its platform manifests carry no
// signature, its index none by the site key).
func checkContainersPolicy(t *testing.T, to, sitePub string, app *seed.Fixture, set string) {
	t.Helper()
	ctx := t.Context()
	imagepolicy := tools.Path(t, "imagepolicy")
	dir := t.TempDir()
	res := run(ctx, t, "admission", "--engine", "containers-policy", "--to", to, "--site-key", sitePub, "-o", dir)
	if res.code != 0 {
		t.Fatalf("airlock admission: exit %d\n%s", res.code, res.stderr)
	}
	pull := func(ref string, extra ...string) (string, error) {
		args := append([]string{"--policy", filepath.Join(dir, "policy.json"), "--registries.d", filepath.Join(dir, "registries.d")}, extra...)
		out, err := exec.CommandContext(ctx, imagepolicy, append(args, ref)...).CombinedOutput()
		return string(out), err
	}
	signed := to + "/team/app:" + app.Tag
	if out, err := pull(signed); err != nil {
		t.Errorf("pull of the site-signed image: %v\n%s", err, out)
	}
	if out, err := pull(signed, "--all"); err != nil {
		t.Errorf("pull --all of the site-signed image: %v\n%s", err, out)
	}
	mustRun(ctx, t, "copy", "-c", set, "--to", to+"/unsigned")
	unsigned := to + "/unsigned/team/app:" + app.Tag
	for _, extra := range [][]string{nil, {"--all"}} {
		out, err := pull(unsigned, extra...)
		if err == nil || !strings.Contains(out, "signature") {
			t.Errorf("pull %v of an image the site did not sign: %v, want refused for its signatures\n%s", extra, err, out)
		}
	}
}

// checkPolicyController: the ClusterImagePolicy that airlock admission writes makes the real Sigstore
// policy-controller evaluator (policy-tester v0.13.1, built from its own module) admit the image the
// site signed on load (its import attestation), and refuse, under the same prefix, the image copied
// there without the site's signatures, then signed and attested (import predicate type) by another
// key, then signed by the site key with cosign but without the import attestation
// (checkContainersPolicy copied it to PREFIX/unsigned).
func checkPolicyController(t *testing.T, c *seed.Cosign, to, siteKey, sitePub, otherKey string, app *seed.Fixture) {
	t.Helper()
	ctx := t.Context()
	tester := tools.Path(t, "policy-tester")
	dir := t.TempDir()
	if res := run(ctx, t, "admission", "--engine", "policy-controller", "--to", to, "--site-key", sitePub, "-o", dir); res.code != 0 {
		t.Fatalf("airlock admission --engine policy-controller: exit %d\n%s", res.code, res.stderr)
	}
	admit := func(ref string) (string, error) {
		out, err := exec.CommandContext(ctx, tester, "--policy", filepath.Join(dir, "clusterimagepolicy.yaml"), "--image", ref).CombinedOutput()
		return string(out), err
	}
	if out, err := admit(to + "/team/app@" + app.IndexDigest.String()); err != nil {
		t.Errorf("policy-tester on the site-signed image: %v\n%s", err, out)
	}
	unsigned := to + "/unsigned/team/app@" + app.IndexDigest.String()
	if out, err := admit(unsigned); err == nil {
		t.Errorf("policy-tester admitted an image the site did not sign:\n%s", out)
	}
	// Signed, with its import attestation, by another key: refused.
	if err := c.SignLegacy(ctx, otherKey, unsigned); err != nil {
		t.Fatal(err)
	}
	stmt := filepath.Join(t.TempDir(), "import.json")
	os.WriteFile(stmt, []byte(`{"source":{"reference":"forged"}}`), 0o644)
	args := append([]string{"attest", "--key", otherKey, "--predicate", stmt, "--type", "https://airlock.dev/import/v1", "--new-bundle-format=false"}, seed.OfflineSignFlags...)
	if out, err := c.Run(ctx, c.Home, append(args, unsigned)...); err != nil {
		t.Fatalf("cosign attest with another key: %v\n%s", err, out)
	}
	if out, err := admit(unsigned); err == nil || !strings.Contains(out, "authority airlock-site") {
		t.Errorf("policy-tester admitted an image signed and attested by another key: %v\n%s", err, out)
	}
	// Signed by the site key, but no import attestation: still refused.
	if err := c.SignLegacy(ctx, siteKey, unsigned); err != nil {
		t.Fatal(err)
	}
	if out, err := admit(unsigned); err == nil || !strings.Contains(out, "attestation") {
		t.Errorf("policy-tester on an image signed but without the import attestation: %v, want refused for the attestation\n%s", err, out)
	}
}

// importReported reports whether verify's text output lists the import attestation as valid.
func importReported(out string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "legacy-att https://airlock.dev/import/v1") && strings.Contains(line, "valid, by") {
			return true
		}
	}
	return false
}

// kyvernoPolicy writes, with airlock admission --engine kyverno, the ImageValidatingPolicy for the
// site under to, and returns its path.
func kyvernoPolicy(t *testing.T, to, sitePub string) string {
	t.Helper()
	dir := t.TempDir()
	if res := run(t.Context(), t, "admission", "--engine", "kyverno", "--to", to, "--site-key", sitePub, "-o", dir); res.code != 0 {
		t.Fatalf("airlock admission --engine kyverno: exit %d\n%s", res.code, res.stderr)
	}
	return filepath.Join(dir, "imagevalidatingpolicy.yaml")
}

// kyvernoApply runs the real Kyverno evaluator (the Kyverno CLI v1.19.1, built from its own module)
// on a Pod with the given container image and, when not empty, init container image: `kyverno apply
// POLICY --resource pod.yaml --registry -v 3` (-v 3 logs a policy the CLI's CRD validation drops). It
// returns the CLI's output and whether the Pod passed (exit 0, the one rule applied, one pass, no
// failure).
func kyvernoApply(t *testing.T, policy, image, initImage string) (string, bool) {
	t.Helper()
	pod := fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n  namespace: default\nspec:\n  containers:\n  - name: app\n    image: %s\n", image)
	if initImage != "" {
		pod += fmt.Sprintf("  initContainers:\n  - name: init\n    image: %s\n", initImage)
	}
	podFile := filepath.Join(t.TempDir(), "pod.yaml")
	if err := os.WriteFile(podFile, []byte(pod), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), tools.Path(t, "kyverno"), "apply", policy, "--resource", podFile, "--registry", "--remove-color", "--detailed-results", "-v", "3")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "DOCKER_CONFIG="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err == nil && strings.Contains(string(out), "Applying 1 policy rule(s)") && strings.Contains(string(out), "pass: 1, fail: 0")
}

// checkKyverno: the ImageValidatingPolicy that airlock admission writes makes the real Kyverno
// evaluator admit a Pod naming the site-signed image by digest, and refuse, with the policy's
// message, a Pod naming the image the site did not sign (copied to PREFIX/unsigned by
// checkContainersPolicy), in a container or only in an init container. The policy passes the CLI's
// validation against the CRDs of the same module (kubectl-validate), which drops a policy with an
// unknown field: the CLI then applies no rule and exits 0, so kyvernoApply asserts the rule applied.
func checkKyverno(t *testing.T, to, sitePub string, app *seed.Fixture) {
	t.Helper()
	policy := kyvernoPolicy(t, to, sitePub)
	signed := to + "/team/app@" + app.IndexDigest.String()
	unsigned := to + "/unsigned/team/app@" + app.IndexDigest.String()
	if out, ok := kyvernoApply(t, policy, signed, ""); !ok {
		t.Errorf("kyverno on a Pod with the site-signed image: refused\n%s", out)
	}
	const notSigned = "an image is not signed by the site key"
	if out, ok := kyvernoApply(t, policy, unsigned, ""); ok || !strings.Contains(out, notSigned) {
		t.Errorf("kyverno on a Pod with an image the site did not sign: passed=%v, want refused with %q\n%s", ok, notSigned, out)
	}
	if out, ok := kyvernoApply(t, policy, signed, unsigned); ok || !strings.Contains(out, notSigned) {
		t.Errorf("kyverno on a Pod whose init container the site did not sign: passed=%v, want refused with %q\n%s", ok, notSigned, out)
	}
	data, err := os.ReadFile(policy)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "unknown-field.yaml")
	os.WriteFile(bad, []byte(strings.Replace(string(data), "\n  failurePolicy: Fail\n", "\n  failurePolicy: Fail\n  mirrorPrefix: x\n", 1)), 0o644)
	if out, ok := kyvernoApply(t, bad, signed, ""); ok || !strings.Contains(out, "spec.mirrorPrefix: Invalid value: value provided for unknown field") || !strings.Contains(out, "Applying 0 policy rule(s)") {
		t.Errorf("kyverno took a policy with an unknown field (spec.mirrorPrefix): passed=%v, want refused by the CRD schema\n%s", ok, out)
	}
}

// checkKyvernoAttestation: Kyverno refuses the image the site key signed with cosign but without the
// import attestation, with the attestation message. The image carries upstream bundles, so Kyverno
// reads bundles only: the site key's legacy signature checkPolicyController made is not enough, a
// bundle signature (cosign v3's default) is, for the signature check.
func checkKyvernoAttestation(t *testing.T, c *seed.Cosign, to, siteKey, sitePub string, app *seed.Fixture) {
	t.Helper()
	unsigned := to + "/unsigned/team/app@" + app.IndexDigest.String()
	if err := c.Sign(t.Context(), siteKey, unsigned); err != nil {
		t.Fatal(err)
	}
	const noImport = "an image has no import attestation signed by the site key"
	if out, ok := kyvernoApply(t, kyvernoPolicy(t, to, sitePub), unsigned, ""); ok || !strings.Contains(out, noImport) {
		t.Errorf("kyverno on an image signed by the site key without the import attestation: passed=%v, want refused with %q\n%s", ok, noImport, out)
	}
}

// TestSiteSignaturesOnAReferrersAPIRegistry: on a registry with the referrers API (go-containerregistry's),
// load --sign-key writes the site's bundle as a referrer the API lists, cosign v3 verifies it there
// (bundles: the upstream's travel too), and a second load finds every site signature present,
// the bundle found through the API (whose listing gives the config's media type as artifactType).
func TestSiteSignaturesOnAReferrersAPIRegistry(t *testing.T) {
	ctx := t.Context()
	src, dst := registries.StartGGCR(t), registries.StartGGCR(t)
	work := t.TempDir()
	app := seed.Sample(ctx, t, src, "team/app", filepath.Join(work, "keys"))
	c := &seed.Cosign{Path: tools.Path(t, "cosign"), Home: t.TempDir()}
	siteKey, sitePub, err := c.GenerateKeyPair(ctx, filepath.Join(work, "site"))
	if err != nil {
		t.Fatal(err)
	}
	arch := filepath.Join(work, "archive")
	mustRun(ctx, t, "save", "-c", writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\n", app.Ref())), "-o", arch)
	to := dst + "/mirror"
	load := func() map[string]string {
		t.Helper()
		res := runEnv(ctx, t, []string{"COSIGN_PASSWORD=" + seed.KeyPassword}, "load", arch, "--to", to, "--key", app.PublicKeyPath, "--sign-key", siteKey, "--format", "json")
		if res.code != 0 {
			t.Fatalf("load --sign-key: exit %d\n%s", res.code, res.stderr)
		}
		var rep struct {
			SiteSigned []struct{ Kind, Action string }
		}
		if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
			t.Fatalf("%v\n%s", err, res.stdout)
		}
		actions := map[string]string{}
		for _, s := range rep.SiteSigned {
			actions[s.Kind] += s.Action + " "
		}
		return actions
	}
	if got := load()["bundle"]; got != "written " {
		t.Errorf("first load: bundle %q, want written once", got)
	}
	ref := to + "/team/app@" + app.IndexDigest.String()
	args := append([]string{"verify-attestation", "--key", sitePub, "--type", "https://airlock.dev/import/v1"}, offlineVerifyFlags...)
	if out, err := c.Run(ctx, c.Home, append(args, ref)...); err != nil {
		t.Errorf("cosign verify-attestation (bundles, referrers API): %v\n%s", err, out)
	}
	for kind, actions := range load() {
		if strings.Contains(actions, "written") {
			t.Errorf("second load: %s %q, want present only", kind, actions)
		}
	}
}

// checkMirroredPulls: with the site files of the load (--site-files), the containers policy scopes the
// source name too, and the real containers/image evaluator admits a pull by the source name that
// registries.conf redirects to the mirror (judged by the source name, signed by the site for the site
// repository). With the site files of a copy into PREFIX/unsigned (no site signature there), the same
// pull is redirected there and refused. Without the source scope (the plain policy), such a pull is
// refused by the default: the scope is what admits it (checked by the first pull failing with the
// policy of checkContainersPolicy's kind).
func checkMirroredPulls(t *testing.T, to, sitePub string, app *seed.Fixture, set, siteFiles string) {
	t.Helper()
	ctx := t.Context()
	imagepolicy := tools.Path(t, "imagepolicy")
	policy := func(files string) string {
		dir := t.TempDir()
		args := []string{"admission", "--engine", "containers-policy", "--to", to, "--site-key", sitePub, "-o", dir}
		if files != "" {
			args = append(args, "--site-files", files)
		}
		if res := run(ctx, t, args...); res.code != 0 {
			t.Fatalf("airlock admission %v: exit %d\n%s", args, res.code, res.stderr)
		}
		return dir
	}
	pull := func(dir, conf string) (string, error) {
		out, err := exec.CommandContext(ctx, imagepolicy, "--policy", filepath.Join(dir, "policy.json"), "--registries.d", filepath.Join(dir, "registries.d"),
			"--registries-conf", filepath.Join(conf, "registries.conf"), app.Host+"/"+app.Repo+"@"+app.IndexDigest.String()).CombinedOutput()
		return string(out), err
	}
	if out, err := pull(policy(""), siteFiles); err == nil {
		t.Errorf("a pull by the source name was admitted without its scope:\n%s", out)
	}
	if out, err := pull(policy(siteFiles), siteFiles); err != nil {
		t.Errorf("a pull by the source name through the mirror, with the source scope: %v\n%s", err, out)
	}
	unsignedFiles := filepath.Join(t.TempDir(), "site-files")
	mustRun(ctx, t, "copy", "-c", set, "--to", to+"/unsigned", "--site-files", unsignedFiles)
	if out, err := pull(policy(unsignedFiles), unsignedFiles); err == nil || !strings.Contains(out, "signature") {
		t.Errorf("a pull by the source name redirected to a mirror the site did not sign: %v, want refused for its signatures\n%s", err, out)
	}
}

// checkPolicyControllerUpstream: with --upstream, the ClusterImagePolicies of the upstream signer
// (the key the images were loaded with) make policy-tester check the upstream signature as well: the
// site-signed image passes both; generated for another upstream key, the same image is refused.
func checkPolicyControllerUpstream(t *testing.T, c *seed.Cosign, to, sitePub string, app *seed.Fixture, siteFiles, otherPub string) {
	t.Helper()
	ctx := t.Context()
	admit := func(trust ...string) (string, error) {
		dir := t.TempDir()
		if res := run(ctx, t, append([]string{"admission", "--engine", "policy-controller", "--to", to, "--site-key", sitePub, "-o", dir,
			"--upstream", "--site-files", siteFiles}, trust...)...); res.code != 0 {
			t.Fatalf("airlock admission --upstream: exit %d\n%s", res.code, res.stderr)
		}
		site, _ := os.ReadFile(filepath.Join(dir, "clusterimagepolicy.yaml"))
		up, err := os.ReadFile(filepath.Join(dir, "clusterimagepolicy-upstream.yaml"))
		if err != nil || !strings.Contains(string(up), "airlock-upstream-1") {
			t.Fatalf("no upstream ClusterImagePolicy: %v\n%s", err, up)
		}
		all := filepath.Join(dir, "all.yaml")
		os.WriteFile(all, append(site, up...), 0o644)
		args := []string{"--policy", all, "--image", to + "/team/app@" + app.IndexDigest.String()}
		if _, err := os.Stat(filepath.Join(dir, "trustroot-upstream.yaml")); err == nil {
			args = append(args, "--trustroot", filepath.Join(dir, "trustroot-upstream.yaml"))
		}
		out, err := exec.CommandContext(ctx, tools.Path(t, "policy-tester"), args...).CombinedOutput()
		return string(out), err
	}
	if out, err := admit("--key", app.PublicKeyPath); err != nil {
		t.Errorf("policy-tester with the upstream signer's policy on the site-signed image: %v\n%s", err, out)
	}
	// A keyless signer beside the key (require any): the TrustRoot airlock writes from a pinned
	// trusted_root.json is read by policy-tester, and the key's authority admits the image; with the
	// keyless signer alone, its authority is evaluated and refuses it (no such certificate).
	root, err := filepath.Abs("../admission/testdata/upstream/trusted_root.json")
	if err != nil {
		t.Fatal(err)
	}
	policy := func(signers string) string {
		p := filepath.Join(t.TempDir(), "policy.yaml")
		os.WriteFile(p, []byte("apiVersion: airlock.dev/v1alpha1\nkind: Policy\nrules:\n  - match: ['**']\n    signers:\n"+signers), 0o644)
		return p
	}
	keyless := "      - keyless: {issuer: https://token.actions.githubusercontent.com, subject: https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1}\n"
	if out, err := admit("--policy", policy(keyless+"      - key: "+app.PublicKeyPath+"\n"), "--trusted-root", root); err != nil {
		t.Errorf("policy-tester with a keyless and a key signer (TrustRoot from trusted_root.json): %v\n%s", err, out)
	}
	if out, err := admit("--policy", policy(keyless), "--trusted-root", root); err == nil || !strings.Contains(out, "The custom trust root has been successfully added") || !strings.Contains(out, "keyless validation failed for authority keyless-1") {
		t.Errorf("policy-tester with the keyless signer alone: %v, want refused by its authority\n%s", err, out)
	}
	if out, err := admit("--key", otherPub); err == nil || !strings.Contains(out, "signature key validation failed for authority cosign-pub") {
		t.Errorf("policy-tester with another upstream key: %v, want refused by the upstream authority (cosign.pub)\n%s", err, out)
	}
}
