package registries

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"airlock.dev/airlock/e2e/internal/tools"
)

// TLSFiles is a test certificate authority and a leaf certificate it signed for 127.0.0.1, 127.0.0.2,
// ::1 and localhost, written as PEM files.
type TLSFiles struct {
	CA, Cert, Key string         // paths of the PEM files
	Pool          *x509.CertPool // holds the CA alone
	Leaf          tls.Certificate
}

// NewTLS makes a CA and a leaf certificate in dir.
func NewTLS(t testing.TB, dir string) TLSFiles {
	t.Helper()
	files, err := newTLS(dir)
	if err != nil {
		t.Fatalf("make test CA: %v", err)
	}
	return files
}

func newTLS(dir string) (TLSFiles, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return TLSFiles{}, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "airlock e2e test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return TLSFiles{}, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return TLSFiles{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return TLSFiles{}, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("127.0.0.2"), net.IPv6loopback},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return TLSFiles{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return TLSFiles{}, err
	}
	f := TLSFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	for path, block := range map[string]*pem.Block{
		f.CA:   {Type: "CERTIFICATE", Bytes: caDER},
		f.Cert: {Type: "CERTIFICATE", Bytes: leafDER},
		f.Key:  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			return TLSFiles{}, err
		}
	}
	f.Pool = x509.NewCertPool()
	f.Pool.AddCert(ca)
	f.Leaf, err = tls.LoadX509KeyPair(f.Cert, f.Key)
	return f, err
}

// ClientTransport returns an HTTP transport trusting the CA alone.
func (f TLSFiles) ClientTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: f.Pool, MinVersion: tls.VersionTLS12}
	return tr
}

// WriteHtpasswd writes an htpasswd file of bcrypt hashes for users (name to password).
func WriteHtpasswd(t testing.TB, path string, users map[string]string) {
	t.Helper()
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, u := range names {
		h, err := bcrypt.GenerateFromPassword([]byte(users[u]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TokenAuth configures distribution's `auth: token` mode.
type TokenAuth struct {
	Realm, Service, Issuer string
	RootCertBundle         string // path of the PEM certificates that sign tokens
}

// SecureOptions says how a secured distribution registry is configured. TLS is required.
type SecureOptions struct {
	TLS      TLSFiles
	Htpasswd string     // path of an htpasswd file: basic auth
	Token    *TokenAuth // or token auth
}

// StartSecureDistribution starts the distribution registry over TLS on a free 127.0.0.1 port, with
// basic or token auth as opts says, and stops it when the test ends. It returns host:port once the
// registry answers GET /v2/ (with 401 when auth is on).
func StartSecureDistribution(ctx context.Context, t testing.TB, opts SecureOptions) string {
	t.Helper()
	bin := tools.Path(t, "registry")
	dir := t.TempDir()
	host, stop, err := startProcess(ctx, bin, dir,
		func(storage, host string) string { return secureConfig(storage, host, opts) },
		func(ctx context.Context, host string, exited <-chan struct{}) error {
			return waitReadyTLS(ctx, host, opts.TLS, exited)
		})
	if err != nil {
		t.Fatalf("start secure distribution registry: %v", err)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("distribution registry %s log:\n%s", host, tail(filepath.Join(dir, "registry.log")))
		}
	})
	return host
}

func secureConfig(storage, host string, opts SecureOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, distributionConfig, storage, host)
	fmt.Fprintf(&b, "  tls:\n    certificate: %s\n    key: %s\n", opts.TLS.Cert, opts.TLS.Key)
	switch {
	case opts.Htpasswd != "":
		fmt.Fprintf(&b, "auth:\n  htpasswd:\n    realm: airlock-e2e\n    path: %s\n", opts.Htpasswd)
	case opts.Token != nil:
		fmt.Fprintf(&b, "auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
			opts.Token.Realm, opts.Token.Service, opts.Token.Issuer, opts.Token.RootCertBundle)
	}
	return b.String()
}

func waitReadyTLS(ctx context.Context, host string, files TLSFiles, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second, Transport: files.ClientTransport()}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/v2/", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("process exited before answering GET /v2/")
		case <-ctx.Done():
			return fmt.Errorf("no answer to GET /v2/ over TLS: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
