package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/tokenserver"
)

const authUser = "alice"

// randomPassword returns a fresh password that appears nowhere else by chance.
func randomPassword(t testing.TB) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "pw-" + hex.EncodeToString(b)
}

func basicAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// dockerConfig writes a DOCKER_CONFIG directory holding config.json with body, and returns it.
func dockerConfig(t testing.TB, body any) string {
	t.Helper()
	dir := t.TempDir()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// loginConfig is a docker config with user:pass for host, as `docker login` writes it.
func loginConfig(t testing.TB, host, user, pass string) string {
	return dockerConfig(t, map[string]any{"auths": map[string]any{host: map[string]string{"auth": basicAuth(user, pass)}}})
}

func mustRunEnv(ctx context.Context, t testing.TB, env []string, args ...string) result {
	t.Helper()
	res := runEnv(ctx, t, env, args...)
	if res.code != 0 {
		t.Fatalf("airlock %v: exit %d\nstderr:\n%s\nstdout:\n%s", args, res.code, res.stderr, res.stdout)
	}
	return res
}

// pushSmallImage pushes a one-layer image to repo, tags it v1 and returns the manifest digest.
func pushSmallImage(ctx context.Context, t testing.TB, repo *remote.Repository) digest.Digest {
	t.Helper()
	push := func(mediaType string, b []byte) ocispec.Descriptor {
		d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
		if err := repo.Push(ctx, d, bytes.NewReader(b)); err != nil {
			t.Fatalf("push %s to %s: %v", mediaType, repo.Reference, err)
		}
		return d
	}
	layer := push(ocispec.MediaTypeImageLayer, []byte("not really a tar, but bytes with a digest: "+repo.Reference.String()))
	config := push(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	m, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: []ocispec.Descriptor{layer},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(m), Size: int64(len(m))}
	if err := repo.PushReference(ctx, d, bytes.NewReader(m), "v1"); err != nil {
		t.Fatalf("push manifest to %s: %v", repo.Reference, err)
	}
	return d.Digest
}

// basicTLSRepo is an oras-go client for host/name with the test CA and user:pass, independent of airlock.
func basicTLSRepo(t testing.TB, files registries.TLSFiles, host, name, user, pass string) *remote.Repository {
	t.Helper()
	repo, err := remote.NewRepository(host + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	repo.Client = &auth.Client{
		Client:     &http.Client{Transport: files.ClientTransport()},
		Cache:      auth.NewCache(),
		Credential: auth.StaticCredential(host, auth.Credential{Username: user, Password: pass}),
	}
	return repo
}

// basicRegistry is a distribution registry over TLS with htpasswd auth, holding host/team/app:v1.
type basicRegistry struct {
	host, pass string
	tls        registries.TLSFiles
	digest     digest.Digest
}

func startBasicRegistry(ctx context.Context, t *testing.T) basicRegistry {
	t.Helper()
	dir := t.TempDir()
	files := registries.NewTLS(t, dir)
	pass := randomPassword(t)
	htpasswd := filepath.Join(dir, "htpasswd")
	registries.WriteHtpasswd(t, htpasswd, map[string]string{authUser: pass})
	host := registries.StartSecureDistribution(ctx, t, registries.SecureOptions{TLS: files, Htpasswd: htpasswd})
	d := pushSmallImage(ctx, t, basicTLSRepo(t, files, host, "team/app", authUser, pass))
	return basicRegistry{host: host, pass: pass, tls: files, digest: d}
}

// checkSaved fails unless out is an archive holding the manifest d.
func checkSaved(ctx context.Context, t *testing.T, out string, d digest.Digest) {
	t.Helper()
	if _, err := os.Stat(archive.BlobPath(out, d)); err != nil {
		t.Errorf("manifest %s not in the archive: %v", d, err)
	}
	if cat := readCatalog(ctx, t, out); len(cat.Images) != 1 || cat.Images[0].Digest != d {
		t.Errorf("catalog images %+v, want %s", cat.Images, d)
	}
}

func TestAuthBasicTLS(t *testing.T) {
	ctx := t.Context()
	reg := startBasicRegistry(ctx, t)
	login := []string{"DOCKER_CONFIG=" + loginConfig(t, reg.host, authUser, reg.pass)}
	work := t.TempDir()
	set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s/team/app:v1\n", reg.host))
	tlsFlags := []string{"--tls", reg.host, "--ca-file", reg.tls.CA}
	save := func(out string, flags ...string) []string {
		return append([]string{"save", "-c", set, "-o", filepath.Join(work, out)}, flags...)
	}

	t.Run("saves with credentials from config.json", func(t *testing.T) {
		mustRunEnv(ctx, t, login, save("ok", tlsFlags...)...)
		checkSaved(ctx, t, filepath.Join(work, "ok"), reg.digest)
	})
	t.Run("without credentials says to log in", func(t *testing.T) {
		res := runEnv(ctx, t, nil, save("nocred", tlsFlags...)...)
		if res.code != 2 || !strings.Contains(res.stderr, "docker login "+reg.host) {
			t.Errorf("exit %d, want 2 and an error that says to log in:\n%s", res.code, res.stderr)
		}
		if _, err := os.Stat(filepath.Join(work, "nocred")); !os.IsNotExist(err) {
			t.Errorf("a save refused for want of credentials wrote %s (%v)", filepath.Join(work, "nocred"), err)
		}
		record("auth and TLS", "htpasswd registry, no credentials", "refused, exit 2: the error says to run docker login HOST; nothing written")
	})
	t.Run("wrong password says the credentials were refused", func(t *testing.T) {
		bad := []string{"DOCKER_CONFIG=" + loginConfig(t, reg.host, authUser, "wrong")}
		res := runEnv(ctx, t, bad, save("badcred", tlsFlags...)...)
		if res.code != 2 || !strings.Contains(res.stderr, "401") {
			t.Errorf("exit %d, want 2 and the 401:\n%s", res.code, res.stderr)
		}
		record("auth and TLS", "htpasswd registry, wrong password", "refused, exit 2: the registry's 401 and to log in again; the password appears nowhere")
	})
	t.Run("without --ca-file names the TLS problem", func(t *testing.T) {
		res := runEnv(ctx, t, login, save("noca", "--tls", reg.host)...)
		if res.code != 2 || !strings.Contains(res.stderr, "certificate") || !strings.Contains(res.stderr, "--ca-file") {
			t.Errorf("exit %d, want 2 and an error about the certificate and --ca-file:\n%s", res.code, res.stderr)
		}
		record("auth and TLS", "TLS registry with a private CA, no --ca-file", "refused, exit 2: names the certificate problem and --ca-file")
	})
	t.Run("without --tls a loopback registry is plain HTTP and the error says --tls", func(t *testing.T) {
		res := runEnv(ctx, t, login, save("notls", "--ca-file", reg.tls.CA)...)
		if res.code != 2 || !strings.Contains(res.stderr, "serves TLS") || !strings.Contains(res.stderr, "--tls "+reg.host) {
			t.Errorf("exit %d, want 2 and an error that says --tls:\n%s", res.code, res.stderr)
		}
		record("auth and TLS", "TLS on a loopback registry reached without --tls", "refused, exit 2: says the registry serves TLS and to use --tls HOST")
	})
}

func TestCredHelper(t *testing.T) {
	ctx := t.Context()
	reg := startBasicRegistry(ctx, t)
	bin := t.TempDir()
	script := fmt.Sprintf(`#!/bin/sh
# docker credential helper protocol: the server URL on stdin, JSON credentials on stdout.
[ "$1" = get ] || exit 1
read server
printf '{"ServerURL":"%%s","Username":"%s","Secret":"%s"}\n' "$server"
`, authUser, reg.pass)
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-airlocktest"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := dockerConfig(t, map[string]any{"credHelpers": map[string]string{reg.host: "airlocktest"}})
	env := []string{"DOCKER_CONFIG=" + cfg, "PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH")}
	work := t.TempDir()
	set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s/team/app:v1\n", reg.host))
	out := filepath.Join(work, "archive")
	mustRunEnv(ctx, t, env, "save", "-c", set, "-o", out, "--tls", reg.host, "--ca-file", reg.tls.CA)
	checkSaved(ctx, t, out, reg.digest)
}

// tokenRegistry is a distribution registry on https://127.0.0.1:P whose token service is at
// https://127.0.0.2:Q/token (realm): same machine, another host name, so airlock sends it the
// registry's credentials only when told --token-realm 127.0.0.2:Q.
type tokenRegistry struct {
	host, pass string
	realm      string // host:port of the token service
	tls        registries.TLSFiles
	tokens     *tokenserver.Server
	digest     digest.Digest
}

// bearerClient sends every request with one token, for seeding without airlock's realm handling.
type bearerClient struct {
	client *http.Client
	token  string
}

func (c bearerClient) Do(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+c.token)
	return c.client.Do(req)
}

func startTokenRegistry(ctx context.Context, t *testing.T) tokenRegistry {
	t.Helper()
	dir := t.TempDir()
	files := registries.NewTLS(t, dir)
	pass := randomPassword(t)
	const service, issuer = "airlock-e2e-registry", "airlock-e2e-tokens"
	tokens, err := tokenserver.New(issuer, service, map[string]string{authUser: pass})
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "token-root.pem")
	if err := os.WriteFile(bundle, tokens.RootCertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	realmAddr := tokenserver.Start(t, tokens, "127.0.0.2:0", files.Leaf)
	host := registries.StartSecureDistribution(ctx, t, registries.SecureOptions{TLS: files, Token: &registries.TokenAuth{
		Realm: "https://" + realmAddr + "/token", Service: service, Issuer: issuer, RootCertBundle: bundle,
	}})
	tok, err := tokens.Token(authUser, "repository:team/app:pull,push")
	if err != nil {
		t.Fatal(err)
	}
	repo, err := remote.NewRepository(host + "/team/app")
	if err != nil {
		t.Fatal(err)
	}
	repo.Client = bearerClient{client: &http.Client{Transport: files.ClientTransport()}, token: tok}
	d := pushSmallImage(ctx, t, repo)
	return tokenRegistry{host: host, pass: pass, realm: realmAddr, tls: files, tokens: tokens, digest: d}
}

func TestTokenRealmOnAnotherLoopbackHost(t *testing.T) {
	ctx := t.Context()
	reg := startTokenRegistry(ctx, t)

	t.Run("oras-go alone refuses the realm", func(t *testing.T) {
		repo := basicTLSRepo(t, reg.tls, reg.host, "team/app", authUser, reg.pass)
		_, err := repo.Resolve(ctx, "v1")
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Fatalf("resolve with plain oras-go: %v, want the loopback realm refused", err)
		}
	})

	work := t.TempDir()
	set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s/team/app:v1\n", reg.host))
	tlsFlags := []string{"--tls", reg.host, "--ca-file", reg.tls.CA}
	flags := append([]string{"--token-realm", reg.realm}, tlsFlags...)
	t.Run("without --token-realm the credentials stay home and the error names the flag", func(t *testing.T) {
		before := reg.tokens.Requests()
		env := []string{"DOCKER_CONFIG=" + loginConfig(t, reg.host, authUser, reg.pass)}
		res := runEnv(ctx, t, env, append([]string{"save", "-c", set, "-o", filepath.Join(work, "unnamed")}, tlsFlags...)...)
		t.Logf("exit %d, stderr:\n%s", res.code, res.stderr)
		if res.code != 2 {
			t.Errorf("exit %d, want 2", res.code)
		}
		for _, want := range []string{reg.host, reg.realm, "--token-realm " + reg.realm} {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("stderr does not name %q:\n%s", want, res.stderr)
			}
		}
		if n := reg.tokens.Requests() - before; n != 0 {
			t.Errorf("the token service, never named, was asked %d times", n)
		}
		record("auth and TLS", "bearer token service on another loopback host, not named with --token-realm",
			"refused, exit 2: no credentials sent to it; the error names the realm, the registry and --token-realm HOST:PORT")
	})
	t.Run("airlock saves through the realm named with --token-realm", func(t *testing.T) {
		before := reg.tokens.Requests()
		out := filepath.Join(work, "ok")
		env := []string{"DOCKER_CONFIG=" + loginConfig(t, reg.host, authUser, reg.pass)}
		mustRunEnv(ctx, t, env, append([]string{"save", "-c", set, "-o", out}, flags...)...)
		checkSaved(ctx, t, out, reg.digest)
		if n := reg.tokens.Requests() - before; n == 0 {
			t.Errorf("the token service was never asked")
		}
		record("auth and TLS", "bearer token service on another loopback host (oras-go alone refuses the realm)", "survived with --token-realm HOST:PORT: the named realm is forwarded through a signed marker URL, without proxy, to the addresses checked; cloud metadata realms stay refused even when named")
	})
	t.Run("a wrong password fails with exit 2 and says to log in", func(t *testing.T) {
		env := []string{"DOCKER_CONFIG=" + loginConfig(t, reg.host, authUser, "wrong")}
		res := runEnv(ctx, t, env, append([]string{"save", "-c", set, "-o", filepath.Join(work, "bad")}, flags...)...)
		if res.code != 2 || !strings.Contains(res.stderr, "docker login") {
			t.Errorf("exit %d, want 2 and an error saying to log in:\n%s", res.code, res.stderr)
		}
	})
}

// checkNoSecrets fails if any secret appears in the run's output or in any file under dir.
func checkNoSecrets(t *testing.T, what string, res result, dir string, secrets map[string]string) {
	t.Helper()
	texts := map[string]string{"stdout": res.stdout, "stderr": res.stderr}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: read %s: %v", what, path, err)
			return nil
		}
		texts[path] = string(b)
		return nil
	})
	for where, text := range texts {
		for name, secret := range secrets {
			if secret != "" && strings.Contains(text, secret) {
				t.Errorf("%s: %s leaks the %s", what, where, name)
			}
		}
	}
}

func TestAuthSecretsNeverLeak(t *testing.T) {
	ctx := t.Context()
	basic := startBasicRegistry(ctx, t)
	token := startTokenRegistry(ctx, t)
	for _, tc := range []struct {
		name, host, pass, ca string
		tokens               *tokenserver.Server
		extra                []string
	}{
		{"basic", basic.host, basic.pass, basic.tls.CA, nil, nil},
		{"token", token.host, token.pass, token.tls.CA, token.tokens, []string{"--token-realm", token.realm}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s/team/app:v1\n", tc.host))
			flags := append([]string{"-v", "--format", "json", "--tls", tc.host, "--ca-file", tc.ca}, tc.extra...)
			good := []string{"DOCKER_CONFIG=" + loginConfig(t, tc.host, authUser, tc.pass)}
			// A wrong password that shares the real one's prefix, so a leak of either shows.
			wrong := tc.pass + "-wrong"
			bad := []string{"DOCKER_CONFIG=" + loginConfig(t, tc.host, authUser, wrong)}

			okOut := filepath.Join(work, "ok")
			okRes := mustRunEnv(ctx, t, good, append([]string{"save", "-c", set, "-o", okOut}, flags...)...)
			badOut := filepath.Join(work, "bad")
			badRes := runEnv(ctx, t, bad, append([]string{"save", "-c", set, "-o", badOut}, flags...)...)
			if badRes.code != 2 {
				t.Fatalf("save with a wrong password: exit %d, want 2\n%s", badRes.code, badRes.stderr)
			}
			if !strings.Contains(okRes.stderr, "level=DEBUG") {
				t.Errorf("-v printed no debug log; the check would prove little:\n%s", okRes.stderr)
			}
			secrets := map[string]string{
				"password":               tc.pass,
				"wrong password":         wrong,
				"base64(user:pass)":      basicAuth(authUser, tc.pass),
				"base64(user:wrongpass)": basicAuth(authUser, wrong),
			}
			if tc.tokens != nil {
				issued := tc.tokens.Issued()
				if len(issued) < 2 {
					t.Errorf("%d tokens issued, want the test's own and airlock's", len(issued))
				}
				for i, tok := range issued {
					secrets[fmt.Sprintf("JWT %d", i)] = tok
					// the signature alone, in case a token is cut or reformatted
					secrets[fmt.Sprintf("JWT %d signature", i)] = tok[strings.LastIndex(tok, ".")+1:]
				}
			}
			checkNoSecrets(t, "successful save", okRes, okOut, secrets)
			checkNoSecrets(t, "failed save", badRes, badOut, secrets)
		})
	}
}
