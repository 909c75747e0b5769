package seed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// cosignTimeout bounds one cosign run; offline against loopback it takes well under a second.
const cosignTimeout = 60 * time.Second

// OfflineSignFlags are the cosign v3 flags that make `cosign sign` and `cosign attest`
// with --key work fully offline against a plain-HTTP registry: no Rekor upload, no
// signing config or trusted root from TUF (so no Fulcio/TSA either), HTTP allowed, no
// prompts.
var OfflineSignFlags = []string{
	"--tlog-upload=false",
	"--use-signing-config=false",
	"--allow-http-registry",
	"--yes",
}

// Cosign runs the cosign CLI with an environment of its own: HOME, TUF root, docker
// config and caches in a private directory, the key password set, and an unreachable
// proxy for every non-loopback host, so a network attempt fails at once instead of
// hanging or touching anything on the machine.
type Cosign struct {
	// Path is the cosign binary.
	Path string
	// Home holds cosign's HOME, TUF_ROOT, DOCKER_CONFIG and caches.
	Home string
}

// env is the whole environment a cosign run gets; nothing else leaks in from ours.
func (c *Cosign) env() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + c.Home,
		"TMPDIR=" + os.TempDir(),
		"XDG_CONFIG_HOME=" + filepath.Join(c.Home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(c.Home, ".cache"),
		"TUF_ROOT=" + filepath.Join(c.Home, "tuf"),
		"DOCKER_CONFIG=" + filepath.Join(c.Home, "docker"),
		"COSIGN_PASSWORD=" + KeyPassword,
		// Go never proxies loopback, so the registry is reached directly; anything
		// else goes to a closed port and fails fast.
		"HTTP_PROXY=http://127.0.0.1:9",
		"HTTPS_PROXY=http://127.0.0.1:9",
		"NO_PROXY=",
	}
}

// Run runs cosign with args in dir and returns its combined output; the error carries
// the command line and output.
func (c *Cosign) Run(ctx context.Context, dir string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cosignTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Path, args...)
	cmd.Dir = dir
	cmd.Env = c.env()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (timed out after %s)", err, cosignTimeout)
		}
		return out.Bytes(), fmt.Errorf("cosign %s: %w\n%s", strings.Join(args, " "), err, out.Bytes())
	}
	return out.Bytes(), nil
}

// GenerateKeyPair writes cosign.key and cosign.pub into dir, or reuses them when both
// exist, and returns their paths.
func (c *Cosign) GenerateKeyPair(ctx context.Context, dir string) (priv, pub string, err error) {
	priv, pub = filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	if exists(priv) && exists(pub) {
		return priv, pub, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	if _, err := c.Run(ctx, dir, "generate-key-pair", "--output-key-prefix", filepath.Join(dir, "cosign")); err != nil {
		return "", "", err
	}
	if !exists(priv) || !exists(pub) {
		return "", "", errors.New("cosign generate-key-pair wrote no cosign.key/cosign.pub in " + dir)
	}
	return priv, pub, nil
}

// Sign signs ref (host/repo@digest) with key in the new bundle format, which cosign
// v3 pushes as an OCI 1.1 referrer.
func (c *Cosign) Sign(ctx context.Context, key, ref string) error {
	args := append([]string{"sign", "--key", key}, OfflineSignFlags...)
	_, err := c.Run(ctx, c.Home, append(args, ref)...)
	return err
}

// SignLegacy signs ref with key in the legacy format, which cosign pushes as the tag
// sha256-<hex>.sig.
func (c *Cosign) SignLegacy(ctx context.Context, key, ref string) error {
	args := append([]string{"sign", "--key", key, "--new-bundle-format=false"}, OfflineSignFlags...)
	_, err := c.Run(ctx, c.Home, append(args, ref)...)
	return err
}

// Attest attaches an in-toto attestation with the predicate file and type to ref, in
// the new bundle format.
func (c *Cosign) Attest(ctx context.Context, key, ref, predicate, predicateType string) error {
	args := append([]string{"attest", "--key", key, "--predicate", predicate, "--type", predicateType}, OfflineSignFlags...)
	_, err := c.Run(ctx, c.Home, append(args, ref)...)
	return err
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
