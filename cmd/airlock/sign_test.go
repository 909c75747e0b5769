package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/verify"
)

// writePub writes a new ECDSA P-256 public key (PEM) to dir/name.
func writePub(t *testing.T, dir, name string) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSignImageTrust: the image trust sign verifies against is the station's only: given by
// --image-key, --policy or a site trust file (AIRLOCK_TRUST by default); none is a usage error that
// names the flags; --content-only is the explicit opt-out and takes nothing else.
func TestSignImageTrust(t *testing.T) {
	dir := t.TempDir()
	pub := writePub(t, dir, "release.pub")
	archiveOnly := filepath.Join(dir, "archive-keys.yaml")
	withKeys := filepath.Join(dir, "station.yaml")
	for p, body := range map[string]string{
		archiveOnly: "apiVersion: airlock.dev/v1alpha1\nkind: SiteTrust\narchiveKeys: [release.pub]\n",
		withKeys:    "apiVersion: airlock.dev/v1alpha1\nkind: SiteTrust\nkeys: [release.pub]\n",
	} {
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		o       signOptions
		env     string
		source  string // the trust's Source, "" for none (content only)
		wantErr string
	}{
		{name: "nothing", wantErr: "--image-key"},
		{name: "image key", o: signOptions{imageKeys: []string{pub}}, source: "site: keys release.pub"},
		{name: "trust file", o: signOptions{trustFile: withKeys}, source: "(site trust file " + withKeys + ")"},
		{name: "AIRLOCK_TRUST", env: withKeys, source: "(site trust file " + withKeys + ")"},
		{name: "archive keys only", o: signOptions{trustFile: archiveOnly}, wantErr: "pins no image trust"},
		{name: "trusted root alone", o: signOptions{trustedRoot: pub}, wantErr: "--trusted-root alone"},
		{name: "content only", o: signOptions{contentOnly: true}},
		{name: "content only ignores AIRLOCK_TRUST", o: signOptions{contentOnly: true}, env: withKeys},
		{name: "content only and a key", o: signOptions{contentOnly: true, imageKeys: []string{pub}}, wantErr: "--content-only checks no image signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(verify.TrustEnv, tc.env)
			trust, err := tc.o.imageTrust()
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want one naming %q", err, tc.wantErr)
				}
			case err != nil:
				t.Errorf("err = %v", err)
			case tc.source == "" && trust != nil:
				t.Errorf("trust %q, want none (content only)", trust.Source)
			case tc.source != "" && (trust == nil || !strings.Contains(trust.Source, tc.source) || trust.Origin.Kind != "site"):
				t.Errorf("trust %+v, want the site's, %q", trust, tc.source)
			}
		})
	}
}

// TestSignRefusesWithoutImageTrust: sign with no image trust fails as a usage error (exit 2), naming
// every way to give it, before it reads the key or the archive: nothing is written.
func TestSignRefusesWithoutImageTrust(t *testing.T) {
	t.Setenv(verify.TrustEnv, "")
	dir := t.TempDir()
	cmd := newRootCmd()
	cmd.SetArgs([]string{"sign", filepath.Join(dir, "archive"), "--key", filepath.Join(dir, "missing.key")})
	cmd.SetOut(new(strings.Builder))
	cmd.SetErr(new(strings.Builder))
	err := cmd.ExecuteContext(context.Background())
	if !errors.Is(err, errNoImageTrust) || errors.Is(err, plan.ErrCheckFailed) {
		t.Fatalf("err = %v, want the usage error errNoImageTrust (exit 2)", err)
	}
	for _, flag := range []string{"--image-key", "--policy", "--trust", "AIRLOCK_TRUST", "--content-only"} {
		if !strings.Contains(err.Error(), flag) {
			t.Errorf("the refusal does not name %s:\n%v", flag, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("sign wrote %d entries", len(entries))
	}
}
