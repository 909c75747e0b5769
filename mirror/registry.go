package mirror

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// RegistryOptions says how registries are reached.
type RegistryOptions struct {
	// PlainHTTP lists hosts (host or host:port) reached over plain HTTP. Loopback hosts always are.
	PlainHTTP []string
	// CAFile is a PEM bundle of extra certificate authorities trusted for TLS.
	CAFile string
	// UserAgent is sent with every request.
	UserAgent string
}

// Registries hands out repository clients sharing one HTTP client, credential store and token cache.
type Registries struct {
	opts   RegistryOptions
	client *auth.Client

	mu    sync.Mutex
	repos map[string]*remote.Repository
}

// NewRegistries builds the shared client: docker config.json credentials and credential helpers,
// retries with backoff on transient failures, and the extra CAs of opts.CAFile.
func NewRegistries(opts RegistryOptions) (*Registries, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	tr.ResponseHeaderTimeout = 2 * time.Minute
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s: no PEM certificate found", opts.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{})
	if err != nil {
		return nil, fmt.Errorf("read docker credentials (config.json): %w; fix the file or set DOCKER_CONFIG", err)
	}
	client := &auth.Client{
		Client:     &http.Client{Transport: retry.NewTransport(tr)},
		Cache:      auth.NewCache(),
		Credential: credentials.Credential(store),
	}
	ua := opts.UserAgent
	if ua == "" {
		ua = "airlock"
	}
	client.SetUserAgent(ua)
	return &Registries{opts: opts, client: client, repos: map[string]*remote.Repository{}}, nil
}

// Repository returns the client for name ("host[:port]/path"), shared by all callers.
func (r *Registries) Repository(name string) (*remote.Repository, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if repo, ok := r.repos[name]; ok {
		return repo, nil
	}
	repo, err := r.newRepository(name)
	if err != nil {
		return nil, err
	}
	r.repos[name] = repo
	return repo, nil
}

func (r *Registries) newRepository(name string) (*remote.Repository, error) {
	repo, err := remote.NewRepository(name)
	if err != nil {
		return nil, fmt.Errorf("repository %q: %w", name, err)
	}
	repo.Client = r.client
	repo.PlainHTTP = r.plainHTTP(repo.Reference.Registry)
	repo.SkipReferrersGC = true // registries often have delete disabled; never delete
	return repo, nil
}

func (r *Registries) plainHTTP(host string) bool {
	for _, h := range r.opts.PlainHTTP {
		if strings.EqualFold(h, host) {
			return true
		}
		if hn, _, err := net.SplitHostPort(host); err == nil && strings.EqualFold(h, hn) {
			return true
		}
	}
	return IsLoopback(host)
}

// IsLoopback reports whether host (with or without port) is localhost, in 127.0.0.0/8 or ::1.
func IsLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Target returns a new, unshared client for pushing to name. Its referrers capability is set so that
// oras-go never indexes referrers on its own: airlock keeps the tag-schema index itself, after the
// referrers exist, and only where the registry has no referrers API.
func (r *Registries) Target(name string) (*remote.Repository, error) {
	repo, err := r.newRepository(name)
	if err != nil {
		return nil, err
	}
	_ = repo.SetReferrersCapability(true)
	return repo, nil
}

// Probe returns a new, unshared client for name, for asking the registry what it supports.
func (r *Registries) Probe(name string) (*remote.Repository, error) { return r.newRepository(name) }
