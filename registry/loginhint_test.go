package registry

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestLoginHintWithoutCredentials: a registry that asks for basic credentials, with none in docker's
// config: oras-go fails with an untyped "missing username or password"; airlock tells that case from
// the credential lookup itself (markNoCredential), not from those words, and says to log in.
func TestLoginHintWithoutCredentials(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="site"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		name  string
		login bool
		want  string
	}{
		{"no credentials", false, "asks for credentials and none are set for it; log in with `docker login " + host + "`"},
		{"credentials refused", true, "refused the credentials airlock found for it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.login {
				dockerLogin(t, host)
			} else {
				t.Setenv("DOCKER_CONFIG", t.TempDir())
			}
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
