package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
	"airlock.dev/airlock/e2e/internal/tools"
)

// pgpKeyrings makes an OpenPGP key named name <email> in Go and writes its secret keyring (for
// helm package --sign --keyring) and its public keyring (for airlock verify --keyring) into dir.
func pgpKeyrings(t *testing.T, dir, name, email string) (secring, pubring, fingerprint string) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", email, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sec, pub bytes.Buffer
	if err := e.SerializePrivate(&sec, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(&pub); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, strings.ToLower(strings.ReplaceAll(name, " ", "-")))
	secring, pubring = base+".secring.gpg", base+".pubring.gpg"
	if err := os.WriteFile(secring, sec.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubring, pub.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return secring, pubring, fmt.Sprintf("%X", e.PrimaryKey.Fingerprint)
}

// TestChartsProvenance: a chart packaged and signed by the real helm (helm package --sign, its .prov
// served beside the .tgz by a helm repo index repository) travels with its provenance; at the site,
// verify --keyring with the signer's public keyring reports who signed it and passes, and with
// another keyring fails naming the chart and the key that signed it. The images and the chart are
// cosign-signed at the site so that only the provenance decides. Then a site policy accepts the
// chart by its provenance alone (checkPolicyKeyring).
func TestChartsProvenance(t *testing.T) {
	ctx := t.Context()
	f := newChartFixture(t, registries.StartGGCR(t))
	keys := t.TempDir()
	secring, pubring, fpr := pgpKeyrings(t, keys, "Chart Signer", "charts@example.com")
	_, otherRing, _ := pgpKeyrings(t, keys, "Someone Else", "else@example.com")

	repoDir := t.TempDir()
	f.helm.packageChart(t, f.chart, "1.4.2", repoDir, "--sign", "--key", "Chart Signer", "--keyring", secring)
	if _, err := os.Stat(filepath.Join(repoDir, "app-1.4.2.tgz.prov")); err != nil {
		t.Fatalf("helm package --sign wrote no .prov: %v", err)
	}
	// helm's own check of what it signed, with the public keyring airlock is given.
	f.helm.must(t, "verify", filepath.Join(repoDir, "app-1.4.2.tgz"), "--keyring", pubring)
	f.helm.must(t, "repo", "index", repoDir)
	url, _ := chartRepo(t, repoDir)

	// The images are cosign-signed at the source too, so that the archive carries their signatures
	// (load --verify, checkPolicyKeyring); the chart from the HTTP repository cannot be.
	cosign := &seed.Cosign{Path: tools.Path(t, "cosign"), Home: t.TempDir()}
	cosignKey, cosignPub, err := cosign.GenerateKeyPair(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range appImages {
		if err := cosign.Sign(ctx, cosignKey, f.src+"/"+img.repo+"@"+f.digests[img.ref(f.src)].String()); err != nil {
			t.Fatal(err)
		}
	}

	work := t.TempDir()
	arch := filepath.Join(work, "archive")
	mustRun(ctx, t, "save", "-c", writeChartSet(t, work, f.appEntry(url)), "-o", arch)
	charts := catalogCharts(ctx, t, arch)
	if len(charts) != 1 || charts[0]["provenance"] != true {
		t.Fatalf("catalog charts %s: want app 1.4.2 with its provenance", jsonText(charts))
	}
	chartSource, _ := charts[0]["source"].(string)

	site := registries.StartDistribution(ctx, t)
	to := site + "/mirror"
	mustRun(ctx, t, "load", arch, "--to", to)
	for _, img := range readCatalog(ctx, t, arch).Images {
		_, path, _ := strings.Cut(img.Repository, "/")
		if err := cosign.Sign(ctx, cosignKey, to+"/"+path+"@"+img.Digest.String()); err != nil {
			t.Fatal(err)
		}
	}

	verifyArgs := []string{"verify", to, "--archive", arch, "--key", cosignPub}
	ok := mustRun(ctx, t, append(verifyArgs, "--keyring", pubring)...)
	wantLine := "provenance  app-1.4.2.tgz  .prov "
	signed := "signed by Chart Signer <charts@example.com> (key " + fpr + ")"
	if !strings.Contains(ok.stdout, wantLine) || !strings.Contains(ok.stdout, signed) || !strings.Contains(ok.stdout, "PASS  "+chartSource) {
		t.Errorf("verify --keyring (the signer's): want PASS %s and %q ... %q\n%s", chartSource, wantLine, signed, ok.stdout)
	}
	js := mustRun(ctx, t, append(verifyArgs, "--keyring", pubring, "--format", "json")...)
	var report struct {
		Origin struct {
			Keyring struct{ File string }
		}
		Results []struct {
			Source     string
			Provenance *struct {
				Chart, Signer, Key string
				Valid              bool
			}
		}
	}
	if err := json.Unmarshal([]byte(js.stdout), &report); err != nil {
		t.Fatalf("verify --format json: %v\n%s", err, js.stdout)
	}
	provs := 0
	for _, r := range report.Results {
		if p := r.Provenance; p != nil {
			provs++
			if r.Source != chartSource || p.Chart != "app-1.4.2.tgz" || p.Signer != "Chart Signer <charts@example.com>" || p.Key != fpr || !p.Valid {
				t.Errorf("verify --format json: %s provenance %+v, want the chart's, valid, by key %s", r.Source, *p, fpr)
			}
		}
	}
	if provs != 1 || report.Origin.Keyring.File != pubring {
		t.Errorf("verify --format json: %d provenance checks, origin keyring %q; want 1 (the chart's) and %s\n%s", provs, report.Origin.Keyring.File, pubring, js.stdout)
	}
	if plain := mustRun(ctx, t, verifyArgs...); strings.Contains(plain.stdout, "provenance") {
		t.Errorf("verify without --keyring reports provenance:\n%s", plain.stdout)
	}

	bad := run(ctx, t, append(verifyArgs, "--keyring", otherRing)...)
	wantFail := "failed: chart app-1.4.2.tgz: provenance not signed by a key in the keyring " + otherRing + ": it is signed by key " + fpr
	if bad.code != 1 || !strings.Contains(bad.stdout, "FAIL  "+chartSource) || !strings.Contains(bad.stdout, wantFail) {
		t.Errorf("verify --keyring (another key's): exit %d, want 1, FAIL %s and %q\nstdout:\n%s\nstderr:\n%s", bad.code, chartSource, wantFail, bad.stdout, bad.stderr)
	}
	if n := strings.Count(bad.stdout, "FAIL  "); n != 1 {
		t.Errorf("verify --keyring (another key's): %d results fail, want only the chart\n%s", n, bad.stdout)
	}
	checkPolicyKeyring(t, arch, site, chartSource, keys, pubring, otherRing, fpr, cosignPub)
}

// checkPolicyKeyring: a site policy whose rule for the chart's source repository has the chart
// signer's keyring as its signer, and a catch-all rule with the cosign key for the images. load
// --verify of the archive (which holds no cosign signature of the chart) passes and pushes the chart;
// verify of the archive reports the keyring signer satisfied, with the key that signed (text and
// JSON). With another keyring in the policy, load --verify refuses the chart alone, saying why.
func checkPolicyKeyring(t *testing.T, arch, site, chartSource, keys, pubring, otherRing, fpr, cosignPub string) {
	ctx := t.Context()
	chartRepository := chartSource[:strings.LastIndex(chartSource, ":")]
	_, chartPath, _ := strings.Cut(chartRepository, "/")
	policy := func(name, ring string) string {
		p := filepath.Join(keys, name)
		body := fmt.Sprintf("apiVersion: airlock.dev/v1alpha1\nkind: Policy\nrules:\n  - name: charts\n    match: [%s]\n    signers:\n      - keyring: %s\n  - name: images\n    match: ['**']\n    signers:\n      - key: %s\n",
			chartRepository, filepath.Base(ring), cosignPub)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, ringName := policy("policy.yaml", pubring), filepath.Base(pubring)

	mustRun(ctx, t, "load", arch, "--to", site+"/gated", "--verify", "--policy", good)
	if status, _, _ := get(ctx, t, "HEAD", site, "/v2/gated/"+chartPath+"/manifests/1.4.2"); status != 200 {
		t.Errorf("load --verify --policy (the chart signer's keyring): the chart is not at gated/%s:1.4.2 (status %d)", chartPath, status)
	}
	ok := mustRun(ctx, t, "verify", arch, "--policy", good)
	for _, want := range []string{"PASS  " + chartSource, "(rule: charts)", "helm-prov", "valid, by " + ringName,
		"signed by Chart Signer <charts@example.com> (key " + fpr + ")"} {
		if !strings.Contains(ok.stdout, want) {
			t.Errorf("verify --policy (the chart signer's keyring): want %q\n%s", want, ok.stdout)
		}
	}
	js := mustRun(ctx, t, "verify", arch, "--policy", good, "--format", "json")
	var report struct {
		Results []struct {
			Source     string
			Passed     bool
			Signatures []struct{ Format, Signer, Key string }
		}
	}
	if err := json.Unmarshal([]byte(js.stdout), &report); err != nil {
		t.Fatalf("verify --format json: %v\n%s", err, js.stdout)
	}
	found := false
	for _, r := range report.Results {
		for _, c := range r.Signatures {
			if c.Format == "helm-prov" {
				found = r.Source == chartSource && r.Passed && c.Signer == ringName && c.Key == "Chart Signer <charts@example.com> ("+fpr+")"
			}
		}
	}
	if !found {
		t.Errorf("verify --policy --format json: want the chart's helm-prov check, by %s, key %s\n%s", ringName, fpr, js.stdout)
	}

	bad := run(ctx, t, "load", arch, "--to", site+"/refused", "--verify", "--policy", policy("policy-other.yaml", otherRing))
	otherName := filepath.Base(otherRing)
	refused := "refused, verification failed: " + chartSource + " (sha256:"
	why := "): signatures: any of [" + otherName + "] required; valid signatures over the image from: none; keyring signer " + otherName +
		": chart app-1.4.2.tgz: provenance not signed by a key in the keyring " + otherRing + ": it is signed by key " + fpr
	if bad.code != 1 || !strings.Contains(bad.stderr, refused) || !strings.Contains(bad.stderr, why) || strings.Count(bad.stderr, "refused, verification failed") != 1 {
		t.Errorf("load --verify --policy (another keyring): exit %d, want 1 and the chart alone refused: %q ... %q\n%s", bad.code, refused, why, bad.stderr)
	}
	if status, _, _ := get(ctx, t, "HEAD", site, "/v2/refused/"+chartPath+"/manifests/1.4.2"); status != 404 {
		t.Errorf("load --verify --policy (another keyring): the refused chart was pushed (status %d)", status)
	}
}
