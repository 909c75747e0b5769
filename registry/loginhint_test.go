package registry

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoginHintWithoutCredentials: a registry that asks for basic credentials, with none, wrong ones,
// or ones without a password in docker's config. The last fails in oras-go with an untyped "missing
// username or password"; airlock tells it from the credential lookup itself (markNoCredential), not
// from those words. Each says what to do.
func TestLoginHintWithoutCredentials(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="site"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		name string
		auth string // docker config.json's auth for host, user:password; "" for no entry
		want string
	}{
		{"no credentials", "", "asks for credentials and none are set for it; log in with `docker login " + host + "`"},
		{"credentials refused", "alice:s3cret", "refused the credentials airlock found for it"},
		// oras-go's error for this one is only words ("missing username or password").
		{"no password", "alice:", "the credentials docker's config holds for " + host + " lack a username or password; log in again with `docker login " + host + "`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.auth != "" {
				b, _ := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(tc.auth))}}})
				if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("DOCKER_CONFIG", dir)
			r, err := New(Options{})
			if err != nil {
				t.Fatal(err)
			}
			repo, err := r.Repository(host + "/team/app")
			if err != nil {
				t.Fatal(err)
			}
			_, err = repo.Resolve(t.Context(), "1.0")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("resolve against a registry that wants credentials: %v; want it to say %q", err, tc.want)
			}
		})
	}
}
