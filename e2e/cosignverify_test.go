package e2e

import (
	"context"
	"testing"

	"airlock.dev/airlock/e2e/internal/seed"
	"airlock.dev/airlock/e2e/internal/tools"
)

// offlineVerifyFlags make `cosign verify` and `cosign verify-attestation` check a
// key-based signature with no transparency log and no TUF, over plain HTTP.
var offlineVerifyFlags = []string{"--insecure-ignore-tlog=true", "--allow-http-registry"}

// checkCosignVerifies checks the real cosign CLI accepts every signature and the
// attestation the fixture made, with its public key and nothing online.
func checkCosignVerifies(ctx context.Context, t *testing.T, f *seed.Fixture) {
	c := &seed.Cosign{Path: tools.Path(t, "cosign"), Home: t.TempDir()}
	run := func(what string, args ...string) {
		t.Helper()
		args = append(append(args, "--key", f.PublicKeyPath), offlineVerifyFlags...)
		if _, err := c.Run(ctx, c.Home, args...); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	sbom := f.Referrers[seed.IndexSBOM].Manifest.Digest
	run("bundle signature on the index", "verify", f.DigestRef(f.IndexDigest))
	run("bundle signature on linux/amd64", "verify", f.DigestRef(f.Platforms["linux/amd64"].Digest))
	run("bundle signature on the SBOM", "verify", f.DigestRef(sbom))
	run("legacy signature on the index", "verify", "--new-bundle-format=false", f.DigestRef(f.IndexDigest))
	run("attestation on the index", "verify-attestation", "--type", "slsaprovenance", f.DigestRef(f.IndexDigest))
}
