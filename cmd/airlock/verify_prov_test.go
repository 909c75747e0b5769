package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"airlock.dev/airlock/verify"
)

// TestVerifyReportProvenance: a Helm chart's provenance is reported under its result, who signed it
// when it verified, the failure saying why when it did not; JSON has it as "provenance".
func TestVerifyReportProvenance(t *testing.T) {
	results := []verify.Result{
		{Source: "charts.example.com/stable/app:1.4.2", Digest: d("app"), Passed: true, Rule: "charts",
			Provenance: &verify.Provenance{Chart: "app-1.4.2.tgz", Layer: d("prov"), Signer: "Chart Signer <charts@example.com>", Key: "0123456789ABCDEF0123456789ABCDEF01234567", Valid: true}},
		{Source: "charts.example.com/stable/db:0.3.0", Digest: d("db"), Rule: "charts",
			Provenance: &verify.Provenance{Chart: "db-0.3.0.tgz", Reason: "chart db-0.3.0.tgz has no provenance: ..."},
			Failures:   []string{"chart db-0.3.0.tgz has no provenance: ..."}},
	}
	var b bytes.Buffer
	if err := printVerify(&b, &verify.Trust{Source: "site: keys release.pub; Helm charts' provenance: keyring charts.gpg"}, results); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"trust: site: keys release.pub; Helm charts' provenance: keyring charts.gpg\n",
		"PASS  charts.example.com/stable/app:1.4.2  " + d("app").String() + "  (rule: charts)\n" +
			"      provenance  app-1.4.2.tgz  .prov " + d("prov").Encoded()[:12] + "  signed by Chart Signer <charts@example.com> (key 0123456789ABCDEF0123456789ABCDEF01234567)\n",
		"FAIL  charts.example.com/stable/db:0.3.0  " + d("db").String() + "  (rule: charts)\n" +
			"      provenance  db-0.3.0.tgz  no .prov layer  NOT VERIFIED\n" +
			"      failed: chart db-0.3.0.tgz has no provenance: ...\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report:\n%s\nwant in it:\n%s", b.String(), want)
		}
	}
	j, err := json.Marshal(results[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := `"provenance":{"chart":"app-1.4.2.tgz","layer":"` + d("prov").String() + `","signer":"Chart Signer \u003ccharts@example.com\u003e","key":"0123456789ABCDEF0123456789ABCDEF01234567","valid":true}`; !strings.Contains(string(j), want) {
		t.Errorf("json %s\nwant %s in it", j, want)
	}
	if j, _ := json.Marshal(verify.Result{Source: "x"}); strings.Contains(string(j), "provenance") {
		t.Errorf("json of an image %s: want no provenance", j)
	}
}

// TestKeyringFlag: verify and load take --keyring, documented in their help.
func TestKeyringFlag(t *testing.T) {
	g := &globalOptions{}
	for _, c := range []struct {
		name string
		long string
		flag bool
	}{
		{"verify", newVerifyCmd(g).Long, newVerifyCmd(g).Flags().Lookup("keyring") != nil},
		{"load", newLoadCmd(g).Long, newLoadCmd(g).Flags().Lookup("keyring") != nil},
	} {
		if !c.flag || !strings.Contains(c.long, "--keyring FILE") || !strings.Contains(c.long, ".prov") {
			t.Errorf("%s: --keyring flag %v, help:\n%s", c.name, c.flag, c.long)
		}
	}
}
