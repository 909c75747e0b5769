package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// Options says how registries are reached.
type Options struct {
	// PlainHTTP lists hosts (host or host:port) reached over plain HTTP. Loopback hosts are too, unless
	// listed in TLS.
	PlainHTTP []string
	// TLS lists hosts (host or host:port) reached over HTTPS even though they are on loopback.
	TLS []string
	// TokenRealms lists bearer token services (host or host:port, --token-realm) on loopback or private
	// addresses that registries may send their credentials to, although they are not on the registry's
	// own host and port. See RealmTransport.
	TokenRealms []string
	// CAFile is a PEM bundle of extra certificate authorities trusted for TLS.
	CAFile string
	// UserAgent is sent with every request.
	UserAgent string
	// StallTimeout cuts a request whose body, or whose answer's body, moved no byte for this long (0:
	// never). It fails with ErrStalled, which is retried. Waiting for the answer's headers is bounded
	// by 2 minutes apart from it: a registry may take a while to answer an upload it is checking.
	StallTimeout time.Duration
	// Retry is how a request made outside any Retry.Do is retried (zero: DefaultRetry); inside one,
	// each request is sent once per attempt of the operation.
	Retry Retry
}

// Registries hands out repository clients sharing one HTTP client, credential store and token cache.
type Registries struct {
	opts   Options
	client remote.Client
	realms *RealmTransport

	mu    sync.Mutex
	repos map[string]*remote.Repository
	// monolithic keeps each registry host's answer to MonolithicUploads.
	monolithic map[string]bool
}

// New builds the shared client: docker config.json credentials and credential helpers, the stall
// guard, retries of requests no Retry.Do retries, and the extra CAs of opts.CAFile.
func New(opts Options) (*Registries, error) {
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
	for _, h := range opts.TLS {
		if hostListed(opts.PlainHTTP, h) {
			return nil, fmt.Errorf("--tls %s and --plain-http %s: pick one for this host", h, h)
		}
	}
	store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{})
	if err != nil {
		return nil, fmt.Errorf("read docker credentials (config.json): %w; fix the file or set DOCKER_CONFIG", err)
	}
	// Token requests to a named realm get their own transport: no proxy, and connections only to the
	// addresses checked for the realm (see NewRealmForwardTransport).
	next := retryTransport{newStallTransport(tr, opts.StallTimeout), opts.Retry}
	forward := retryTransport{newStallTransport(NewRealmForwardTransport(tr), opts.StallTimeout), opts.Retry}
	realms, err := NewRealmTransport(next, forward, opts.TokenRealms)
	if err != nil {
		return nil, err
	}
	client := &auth.Client{
		Client:     &http.Client{Transport: realms},
		Cache:      auth.NewCache(),
		Credential: markNoCredential(credentials.Credential(store)),
	}
	ua := opts.UserAgent
	if ua == "" {
		ua = "airlock"
	}
	client.SetUserAgent(ua)
	return &Registries{opts: opts, client: hintClient{client}, realms: realms, repos: map[string]*remote.Repository{}, monolithic: map[string]bool{}}, nil
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
	if hostListed(r.opts.TLS, host) {
		return false
	}
	return hostListed(r.opts.PlainHTTP, host) || IsLoopback(host)
}

// hostListed reports whether host (host or host:port) matches an entry of list, given as host:port or
// as a host name that matches on any port.
func hostListed(list []string, host string) bool {
	for _, h := range list {
		if strings.EqualFold(h, host) {
			return true
		}
		if hn, _, err := net.SplitHostPort(host); err == nil && strings.EqualFold(h, hn) {
			return true
		}
	}
	return false
}

// hintClient adds what to do next to authentication and TLS failures of the auth client. A 401 that
// is still there after the auth client answered the challenge becomes an error saying to log in.
type hintClient struct{ *auth.Client }

// Do implements remote.Client.
func (c hintClient) Do(req *http.Request) (*http.Response, error) {
	var unusable atomic.Bool // set when the registry asked for credentials and they held no secret
	req = req.WithContext(context.WithValue(req.Context(), noCredentialKey{}, &unusable))
	resp, err := c.Client.Do(req)
	host := req.URL.Host
	if err == nil {
		if resp.StatusCode == http.StatusUnauthorized {
			resp.Body.Close()
			return nil, fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Redacted(), resp.Status, c.loginHint(req))
		}
		return plainToTLS(req, resp)
	}
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recordErr tls.RecordHeaderError
	var errResp *errcode.ErrorResponse
	switch {
	case errors.Is(err, auth.ErrBasicCredentialNotFound),
		errors.As(err, &errResp) && errResp.StatusCode == http.StatusUnauthorized:
		return nil, fmt.Errorf("%w: %s", err, c.loginHint(req))
	case unusable.Load(): // oras-go's "missing username or password" has no type: asked, and found no secret
		return nil, fmt.Errorf("%w: the credentials docker's config holds for %s lack a username or password; log in again with `docker login %s`", err, host, host)
	case errors.As(err, &unknownCA):
		return nil, fmt.Errorf("%w: TLS to %s: its certificate is signed by an authority airlock does not trust; add that CA with --ca-file", err, host)
	case errors.As(err, &hostErr):
		return nil, fmt.Errorf("%w: TLS to %s: its certificate is not valid for that name", err, host)
	case errors.As(err, &recordErr) && req.URL.Scheme == "https":
		return nil, fmt.Errorf("%w: %s does not speak TLS; reach it with --plain-http %s", err, host, req.URL.Hostname())
	}
	return nil, err
}

// noCredentialKey is the context key of the flag markNoCredential sets for hintClient.Do.
type noCredentialKey struct{}

// markNoCredential returns cred, noting in the request's context (hintClient.Do) when the registry
// asked for credentials and cred found some without a secret oras-go can use (no username or no
// password, and no token): oras-go then fails with an error that has only its words to say so.
func markNoCredential(cred auth.CredentialFunc) auth.CredentialFunc {
	return func(ctx context.Context, hostport string) (auth.Credential, error) {
		c, err := cred(ctx, hostport)
		unusable := c != auth.EmptyCredential && c.RefreshToken == "" && c.AccessToken == "" && (c.Username == "" || c.Password == "")
		if flag, ok := ctx.Value(noCredentialKey{}).(*atomic.Bool); ok && err == nil && unusable {
			flag.Store(true)
		}
		return c, err
	}
}

// loginHint says whether credentials for the registry of req are missing or were refused, and what to do.
func (c hintClient) loginHint(req *http.Request) string {
	host := req.URL.Host
	if c.Credential != nil {
		if cred, err := c.Credential(req.Context(), host); err == nil && cred != auth.EmptyCredential {
			return fmt.Sprintf("%s refused the credentials airlock found for it (docker config.json or credential helper); log in again with `docker login %s`", host, host)
		}
	}
	return fmt.Sprintf("%s asks for credentials and none are set for it; log in with `docker login %s` (airlock reads docker's config.json and credential helpers; DOCKER_CONFIG picks the directory)", host, host)
}

// plainToTLS turns an answer to plain HTTP sent to a TLS port into an error that says what to do. Go
// servers say so in the body; a HEAD has none, so a 400 to a HEAD is checked with a TLS handshake.
func plainToTLS(req *http.Request, resp *http.Response) (*http.Response, error) {
	if req.URL.Scheme != "http" || resp.StatusCode != http.StatusBadRequest {
		return resp, nil
	}
	tlsErr := fmt.Errorf("%s %s: the registry serves TLS, not plain HTTP; reach it with --tls %s (and --ca-file if its CA is not a system one)",
		req.Method, req.URL.Redacted(), req.URL.Host)
	if req.Method == http.MethodHead {
		if speaksTLS(req) {
			resp.Body.Close()
			return nil, tlsErr
		}
		return resp, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if err == nil && (strings.Contains(string(body), "HTTP request to an HTTPS server") ||
		strings.Contains(string(body), "plain HTTP request was sent to HTTPS port")) {
		resp.Body.Close()
		return nil, tlsErr
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
	return resp, nil
}

// speaksTLS reports whether the host of req completes a TLS handshake. Nothing is sent over the
// connection and the certificate is not looked at: this only decides which hint to give.
func speaksTLS(req *http.Request) bool {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 3 * time.Second}, Config: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // detection only
	ctx, cancel := context.WithTimeout(req.Context(), 3*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", req.URL.Host)
	if err != nil {
		return false
	}
	conn.Close()
	return true
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

// HTTP returns the shared HTTP client (retries, stall guard, extra CAs, user agent) for plain GETs
// outside the registry API, such as a Helm chart repository's index.yaml.
func (r *Registries) HTTP() remote.Client { return r.client }
