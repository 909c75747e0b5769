package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror"
	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/verify"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func d(s string) digest.Digest { return digest.FromString(s) }

func sampleCatalog() *archive.Catalog {
	return &archive.Catalog{
		Tool:    archive.Tool{Name: "airlock", Version: "v0.1.0"},
		Created: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC),
		Images: []archive.Image{{
			Source: "registry.example.com/team/app:1.4.2", Repository: "registry.example.com/team/app", Tag: "1.4.2",
			Digest: d("index"), MediaType: "application/vnd.oci.image.index.v1+json",
			Platforms: []archive.Platform{{Platform: "linux/amd64", Digest: d("amd64")}, {Platform: "linux/arm64", Digest: d("arm64")}},
		}},
		Referrers: []archive.Referrer{
			{Digest: d("sig"), Subject: d("index"), Kind: "signature", ArtifactType: "application/vnd.dev.sigstore.bundle.v0.3+json", FoundBy: "api"},
			{Digest: d("sbom"), Subject: d("index"), Kind: "sbom", ArtifactType: "application/spdx+json", FoundBy: "tag-schema"},
			{Digest: d("sbomsig"), Subject: d("sbom"), Kind: "signature", ArtifactType: "application/vnd.dev.sigstore.bundle.v0.3+json", FoundBy: "tag-schema"},
			{Digest: d("amdsig"), Subject: d("amd64"), Kind: "signature", ArtifactType: "application/vnd.dev.sigstore.bundle.v0.3+json", FoundBy: "api"},
			{Digest: d("legacy"), Subject: d("index"), Kind: "signature", ArtifactType: "application/vnd.dev.cosign.simplesigning.v1+json", FoundBy: "cosign-tag", Tag: "sha256-abc.sig"},
		},
		Trust:  archive.Trust{Keys: []archive.File{{Name: "release.pub", Digest: d("key")}}},
		Totals: archive.Totals{Images: 1, Manifests: 8, Referrers: 5, Blobs: 13, Bytes: 21200},
	}
}

func TestInspectTreeGolden(t *testing.T) {
	golden(t, "inspect.txt", []byte(renderTree("/media/usb/airlock", d("catalog"), sampleCatalog(), []inspectSignature{{d("signature"), "K7mNCu/hint="}})))
}

func TestSaveSummaryGolden(t *testing.T) {
	cat := sampleCatalog()
	var b bytes.Buffer
	s := &mirror.SaveSummary{
		Archive: "/media/usb/airlock", Catalog: d("catalog"), Images: cat.Images, Platforms: 2, Manifests: 8, Referrers: 5,
		ReferrersByKind: map[string]int{"signature": 4, "sbom": 1}, ReferrersByMethod: map[string]int{"api": 2, "tag-schema": 2, "cosign-tag": 1},
		Blobs: 13, Bytes: 21200, Copy: mirror.CopyStats{Copied: 10, BytesCopied: 20000, Skipped: 3}, Seconds: 1.25,
	}
	if err := printSaveSummary(&b, s); err != nil {
		t.Fatal(err)
	}
	golden(t, "save-summary.txt", b.Bytes())
}

func TestPublishReportGolden(t *testing.T) {
	var b bytes.Buffer
	r := &mirror.PublishReport{
		Target: "registry.site:5000/mirror",
		Report: engine.Report{
			Images: []engine.ImageReport{
				{Source: "registry.example.com/team/app:1.4.2", Target: "registry.site:5000/mirror/team/app:1.4.2", Digest: d("index"), Platforms: 2, Referrers: 5, ReferrersBy: "tag-schema", Status: "pushed"},
				{Source: "registry.example.com/team/api@" + d("api").String(), Target: "registry.site:5000/mirror/team/api@" + d("api").String(), Digest: d("api"), Status: "failed", Error: "push blob: 503"},
			},
			Blobs:     engine.Counts{Pushed: 10, BytesPushed: 1 << 20, Mounted: 2, BytesMounted: 4096, Skipped: 1, BytesSkipped: 100, Failed: 1},
			Manifests: engine.Counts{Pushed: 8},
			Tags:      3, ReferrerIndexes: 2, Verified: 8,
		},
		Seconds: 2,
	}
	if err := printPublishReport(&b, r, publishExtra{}); err != nil {
		t.Fatal(err)
	}
	golden(t, "load-report.txt", b.Bytes())
}

// A flattened image ends the text report, with what of it was left behind.
func TestPublishReportFlattened(t *testing.T) {
	var b bytes.Buffer
	r := &mirror.PublishReport{Target: "registry.site:5000/mirror", DryRun: true}
	extra := publishExtra{Flattened: []plan.FlattenReport{{
		Source: "registry.example.com/team/app:1.4.2", Index: d("index"), Platform: "linux/amd64", Digest: d("amd64"), Carried: 1,
		LeftBehind: []plan.LeftBehind{{Digest: d("sig"), Kind: "signature", Subject: d("index")}},
	}}}
	if err := printPublishReport(&b, r, extra); err != nil {
		t.Fatal(err)
	}
	want := "flattened (--sparse-index=flatten): 1 image(s) tagged as their one platform manifest; the index is not pushed:\n" +
		"  registry.example.com/team/app:1.4.2  linux/amd64 " + d("amd64").String() + " (index " + d("index").String() + " not pushed; 1 referrers carried)\n" +
		"    left behind: signature " + d("sig").String() + " (of " + d("index").String() + ")\n"
	if !strings.HasSuffix(b.String(), want) {
		t.Errorf("report does not end with the flattened images:\n%s\nwant the end:\n%s", b.String(), want)
	}
}

func TestVerifyReportGolden(t *testing.T) {
	var b bytes.Buffer
	results := []verify.Result{
		{Source: "registry.example.com/team/app:1.4.2", Digest: d("index"), Passed: true, Rule: "team images",
			Signatures:   []verify.Check{{Referrer: d("sig"), Subject: d("index"), Covers: "index", Format: "bundle", Signer: "release.pub", Valid: true, Status: verify.StatusValid, Tlog: true}},
			Attestations: []verify.Check{{Referrer: d("att"), Subject: d("index"), Covers: "index", Format: "bundle", PredicateType: "https://slsa.dev/provenance/v1", Signer: "release.pub", Valid: true, Status: verify.StatusValid}},
			Referrers: []verify.Check{
				{Referrer: d("sbomsig"), Subject: d("sbom"), Covers: "sbom " + d("sbom").Encoded()[:12], SubjectKind: "sbom", Format: "bundle", PredicateType: archive.CosignSignPredicateType, Signer: "release.pub", Valid: true, Status: verify.StatusValid},
				{Referrer: d("othersig"), Subject: d("sbom"), Covers: "sbom " + d("sbom").Encoded()[:12], SubjectKind: "sbom", Format: "bundle", Status: verify.StatusUnknownSigner, Reason: "signed by another key (key hint abc=)"},
			}},
		{Source: "registry.example.com/team/api:2.0", Digest: d("api"), Rule: "team images",
			Signatures: []verify.Check{{Referrer: d("bad"), Subject: d("api"), Covers: "image", Format: "legacy-sig", Status: verify.StatusInvalid, Reason: "release.pub: invalid signature"}},
			Failures:   []string{"signatures: any of [release.pub] required; valid signatures over the image from: none"}},
	}
	trust := &verify.Trust{Source: "archive signed by transfer.pub (hint T3pM=); images: the archive's keys release.pub (hint R3l=), vouched for by that signature",
		Origin: verify.Origin{ArchiveSignatures: []verify.ArchiveSignature{{Digest: d("catsig"), KeyHint: "T3pM=", Signer: "transfer.pub", Valid: true}}}}
	if err := printVerify(&b, trust, results); err != nil {
		t.Fatal(err)
	}
	golden(t, "verify.txt", b.Bytes())
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"4GiB": 4 << 30, "700MB": 700e6, "1048576": 1 << 20, "1.5GiB": 3 << 29, "2M": 2 << 20} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "abc", "-1GiB", "4", "10KiB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestSaveDryRunGolden(t *testing.T) {
	var b bytes.Buffer
	s := &mirror.SaveSummary{
		DryRun: true, Images: []archive.Image{{Source: "registry.example.com/team/app:1.4.2", Digest: d("app")}},
		Repositories: []plan.RepositoryReport{
			{Name: "registry.example.com/team/app", Line: 4, Listed: 4, Picked: []string{"1.4.2"}, Tags: []config.TagDecision{
				{Tag: "2.0.0", Rule: "semver >=1.4.0 <2.0.0"}, {Tag: "1.5.0-rc.1", Rule: "semver >=1.4.0 <2.0.0"},
				{Tag: "1.4.2", Picked: true, Rule: "semver >=1.4.0 <2.0.0"}, {Tag: "1.0.0", Rule: "semver >=1.4.0 <2.0.0"},
			}},
			{Name: "registry.example.com/team/gone", Line: 8, Error: "404 name unknown"},
		},
		Blocked: []archive.Blocked{{Source: "registry.example.com/team/app:latest", Rule: ":latest$"}},
		LeftOut: []archive.LeftOut{{Source: "registry.example.com/team/gone", Reason: "registry.example.com/team/gone (ImageSet line 8): its tags could not be listed: 404 name unknown"}},
	}
	if err := printSaveSummary(&b, s); err != nil {
		t.Fatal(err)
	}
	golden(t, "save-dry-run.txt", b.Bytes())
}

func TestInspectResolutionGolden(t *testing.T) {
	cat := sampleCatalog()
	cat.Trust.ImageSet = &archive.File{Name: "imageset.pinned.yaml", Digest: d("pinned")}
	cat.Blocked = []archive.Blocked{{Source: "registry.example.com/team/app:latest", Rule: ":latest$"}}
	cat.LeftOut = []archive.LeftOut{{Source: "registry.example.com/team/gone", Line: 8, Reason: "its tags could not be listed: 404 name unknown"}}
	golden(t, "inspect-resolution.txt", []byte(renderTree("/media/usb/airlock", d("catalog"), cat, nil)))
}

// TestPublishStatusKeepGoing: images that failed while others were done exit 1 (a check), with or
// without --keep-going; a target that answered nothing up front exits 2; left-out images exit 1 once
// everything else is done.
func TestPublishStatusKeepGoing(t *testing.T) {
	rep := &mirror.PublishReport{Report: engine.Report{Images: []engine.ImageReport{{Status: "pushed"}, {Status: "failed"}}}}
	perr := errors.New("a -> b: push blob: 503")
	if err := publishStatus(rep, perr, nil, publishExtra{Failures: []string{"a -> b: push blob: 503"}}); !errors.Is(err, plan.ErrCheckFailed) || !strings.Contains(err.Error(), "1 of 2 images not done") {
		t.Errorf("keep going: %v, want a check error naming 1 of 2", err)
	}
	if err := publishStatus(rep, perr, nil, publishExtra{}); !errors.Is(err, plan.ErrCheckFailed) || !errors.Is(err, perr) {
		t.Errorf("without keep going: %v, want a check error wrapping the publish error", err)
	}
	none := &mirror.PublishReport{Report: engine.Report{Images: []engine.ImageReport{{Status: "failed"}, {Status: "failed"}}}}
	unreachable := fmt.Errorf("%w: dial tcp: connection refused", engine.ErrNothingDone)
	if err := publishStatus(none, unreachable, nil, publishExtra{}); errors.Is(err, plan.ErrCheckFailed) || err != unreachable {
		t.Errorf("nothing done: %v, want the error as it was (exit 2)", err)
	}
	if err := publishStatus(rep, nil, nil, publishExtra{LeftOut: []archive.LeftOut{{Source: "x/gone"}}}); !errors.Is(err, plan.ErrCheckFailed) || !strings.Contains(err.Error(), "x/gone") {
		t.Errorf("left out: %v, want a check error naming x/gone", err)
	}
}

func TestSignReportGolden(t *testing.T) {
	origin := verify.Origin{Kind: "site", Keys: []verify.KeyRef{{Name: "release.pub", Hint: "R3l="}}}
	signed := func(r *signReport) *signReport {
		r.Signed, r.Signature, r.SignedBy = true, d("catsig").String(), &verify.KeyRef{Name: "transfer.key", Hint: "T3pM="}
		return r
	}
	passed := verify.Result{Source: "registry.example.com/team/app:1.4.2", Digest: d("index"), Passed: true,
		Signatures: []verify.Check{{Referrer: d("sig"), Subject: d("index"), Covers: "index", Format: "bundle", Signer: "release.pub", Valid: true, Status: verify.StatusValid}}}
	failed := verify.Result{Source: "registry.example.com/team/api:2.0", Digest: d("api"),
		Signatures: []verify.Check{{Referrer: d("evil"), Subject: d("api"), Covers: "image", Format: "bundle", Status: verify.StatusUnknownSigner, Reason: "signed by another key (key hint 3v1l=)"}},
		Failures:   []string{"signatures: any of [release.pub] required; valid signatures over the image from: none"}}
	for name, rep := range map[string]*signReport{
		"sign.txt": signed(&signReport{Archive: "/media/usb/airlock", Catalog: d("catalog").String(), Checked: "images",
			Trust: "site: keys release.pub (hint R3l=)", Origin: &origin, Results: []verify.Result{passed}, InBase: []string{"registry.example.com/team/old:1.0"}}),
		"sign-content-only.txt": signed(&signReport{Archive: "/media/usb/airlock.tar", Catalog: d("catalog").String(), Checked: "content-only"}),
		"sign-refused.txt": {Archive: "/media/usb/airlock", Catalog: d("catalog").String(), Checked: "images",
			Trust: "site: keys release.pub (hint R3l=)", Origin: &origin, Results: []verify.Result{passed, failed}},
	} {
		var b bytes.Buffer
		if err := printSignReport(&b, rep); err != nil {
			t.Fatal(err)
		}
		golden(t, name, b.Bytes())
	}
}
