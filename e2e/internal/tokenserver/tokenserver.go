// Package tokenserver is a small bearer token service for the distribution registry's `auth: token`
// mode, for end-to-end tests: it checks HTTP basic credentials and issues ES256 JWTs, with the signing
// certificate in the x5c header, that distribution v3 verifies against RootCertPEM.
package tokenserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Server issues tokens to the users it knows. It is an http.Handler; any path serves tokens.
type Server struct {
	issuer, service string
	users           map[string]string
	key             *ecdsa.PrivateKey
	cert            *x509.Certificate

	mu     sync.Mutex
	issued []string
	asked  int
}

// New returns a Server that signs for issuer, audience service, and accepts the users (name to
// password). It makes its own signing key and self-signed certificate.
func New(issuer, service string, users map[string]string) (*Server, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: issuer + " token signing"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Server{issuer: issuer, service: service, users: users, key: key, cert: cert}, nil
}

// RootCertPEM is the registry's `rootcertbundle`: the certificate of the signing key.
func (s *Server) RootCertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.cert.Raw})
}

// Issued returns every token issued so far.
func (s *Server) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

// Requests returns how many token requests arrived, granted or not.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asked
}

// ServeHTTP answers GET ?service=...&scope=... with basic credentials: 401 without valid ones, else a
// token granting every scope asked for.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.asked++
	s.mu.Unlock()
	if r.Method != http.MethodGet {
		http.Error(w, "only GET token requests", http.StatusMethodNotAllowed)
		return
	}
	user, pass, ok := r.BasicAuth()
	want, known := s.users[user]
	if !ok || !known || subtle.ConstantTimeCompare([]byte(pass), []byte(want)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="tokenserver"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
		return
	}
	if svc := r.URL.Query().Get("service"); svc != s.service {
		http.Error(w, fmt.Sprintf("unknown service %q", svc), http.StatusBadRequest)
		return
	}
	tok, err := s.sign(user, parseScopes(r.URL.Query()["scope"]))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	s.issued = append(s.issued, tok)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token": tok, "access_token": tok, "expires_in": 300, "issued_at": time.Now().UTC().Format(time.RFC3339),
	})
}

// Token issues a token directly, for seeding a registry from a test.
func (s *Server) Token(user string, scopes ...string) (string, error) {
	tok, err := s.sign(user, parseScopes(scopes))
	if err == nil {
		s.mu.Lock()
		s.issued = append(s.issued, tok)
		s.mu.Unlock()
	}
	return tok, err
}

type access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// parseScopes reads `type:name:action,action` scopes, several per value separated by spaces.
func parseScopes(values []string) []access {
	out := []access{}
	for _, v := range values {
		for _, sc := range strings.Fields(v) {
			first, last := strings.Index(sc, ":"), strings.LastIndex(sc, ":")
			if first < 0 || first == last {
				continue
			}
			out = append(out, access{Type: sc[:first], Name: sc[first+1 : last], Actions: strings.Split(sc[last+1:], ",")})
		}
	}
	return out
}

func (s *Server) sign(user string, acc []access) (string, error) {
	now := time.Now()
	jti := make([]byte, 8)
	_, _ = rand.Read(jti)
	header, err := json.Marshal(map[string]any{
		"alg": "ES256", "typ": "JWT", "x5c": []string{base64.StdEncoding.EncodeToString(s.cert.Raw)},
	})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]any{
		"iss": s.issuer, "sub": user, "aud": s.service,
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-10 * time.Second).Unix(), "iat": now.Unix(),
		"jti": hex.EncodeToString(jti), "access": acc,
	})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	r, sv, err := ecdsa.Sign(rand.Reader, s.key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	return signing + "." + enc.EncodeToString(sig), nil
}
