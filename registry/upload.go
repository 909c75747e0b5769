package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// Upload says how PushBlob starts an upload.
type Upload struct {
	// Monolithic sends the blob with the POST that starts the upload (?digest=, the OCI distribution
	// spec's "pushing a blob monolithically"): one request where the registry accepts it (201).
	Monolithic bool
	// MountFrom, if set, asks the registry to mount the blob from that repository of the same
	// registry (?mount=&from=): no bytes sent where it can (201).
	MountFrom string
}

// PushBlob puts blob desc into repo in as few requests as the registry allows: one POST where the
// registry finishes the upload on it (201: a monolithic upload it accepts, or a mount), else that POST
// and one PUT of the blob to the upload session the registry opened (202 and its Location). open is
// called for each body sent, so twice when a monolithic POST is answered 202: the registry wants a
// session and its Location gets the bytes again. created reports that the POST alone did it. The
// requests go through repo's client (credentials, token cache); a failure is an
// *errcode.ErrorResponse, as oras-go reports its own, so Retryable judges it by its status. Nothing
// is retried here: a stream cannot be rewound, so the caller retries from its source.
func PushBlob(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, open func() (io.ReadCloser, error), how Upload) (created bool, err error) {
	ctx = auth.AppendRepositoryScope(ctx, repo.Reference, auth.ActionPull, auth.ActionPush)
	q := url.Values{}
	var body io.ReadCloser
	switch {
	case how.MountFrom != "":
		from := repo.Reference
		from.Repository = how.MountFrom
		ctx = auth.AppendRepositoryScope(ctx, from, auth.ActionPull)
		q.Set("mount", desc.Digest.String())
		q.Set("from", how.MountFrom)
	case how.Monolithic:
		q.Set("digest", desc.Digest.String())
		if body, err = open(); err != nil {
			return false, err
		}
	}
	post, err := http.NewRequestWithContext(ctx, http.MethodPost, URL(repo, "blobs", "uploads/")+"?"+q.Encode(), http.NoBody)
	if err != nil {
		closeReader(body)
		return false, err
	}
	if body != nil {
		setBody(post, body, desc.Size)
	}
	resp, err := client(repo).Do(post)
	closeReader(body)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated:
		return true, checkDigest(resp, desc.Digest)
	case http.StatusAccepted:
		return false, putToSession(ctx, repo, resp, desc, open)
	}
	return false, errorResponse(resp)
}

// putToSession sends the blob with one PUT to the upload session a POST answered with (202), at its
// Location, which must stay on the registry's host and scheme: credentials go nowhere else.
func putToSession(ctx context.Context, repo *remote.Repository, resp *http.Response, desc ocispec.Descriptor, open func() (io.ReadCloser, error)) error {
	loc, err := resp.Location()
	if err != nil {
		return fmt.Errorf("POST %s: 202 without a usable Location: %w", resp.Request.URL.Redacted(), err)
	}
	if !sameHostPort(loc, resp.Request.URL) {
		return fmt.Errorf("blob upload Location %q is on another host than the registry %q", loc.Host, resp.Request.URL.Host)
	}
	if resp.Request.URL.Scheme == "https" && loc.Scheme != "https" {
		return fmt.Errorf("blob upload Location %q downgrades from https", loc.Host)
	}
	q := loc.Query()
	q.Set("digest", desc.Digest.String())
	loc.RawQuery = q.Encode()
	body, err := open()
	if err != nil {
		return err
	}
	defer closeReader(body)
	put, err := http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), http.NoBody)
	if err != nil {
		return err
	}
	setBody(put, body, desc.Size)
	// The token the POST was sent with: a streamed body cannot be sent twice to answer a challenge.
	if a := resp.Request.Header.Get("Authorization"); a != "" {
		put.Header.Set("Authorization", a)
	}
	presp, err := client(repo).Do(put)
	if err != nil {
		return err
	}
	defer presp.Body.Close()
	if presp.StatusCode != http.StatusCreated {
		return errorResponse(presp)
	}
	return checkDigest(presp, desc.Digest)
}

func setBody(req *http.Request, body io.ReadCloser, size int64) {
	req.Body = body
	req.GetBody = nil
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/octet-stream")
}

func closeReader(rc io.ReadCloser) {
	if rc != nil {
		rc.Close()
	}
}

// checkDigest refuses an answer that names another digest than the one pushed.
func checkDigest(resp *http.Response, want digest.Digest) error {
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != want.String() {
		return fmt.Errorf("%s %s: the registry stored %s, not %s", resp.Request.Method, resp.Request.URL.Redacted(), got, want)
	}
	return nil
}

// errorResponse is the error oras-go gives a failed request: its status and the registry's errors.
func errorResponse(resp *http.Response) error {
	e := &errcode.ErrorResponse{Method: resp.Request.Method, URL: resp.Request.URL, StatusCode: resp.StatusCode}
	var body struct {
		Errors errcode.Errors `json:"errors"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 8<<10)).Decode(&body) == nil {
		e.Errors = body.Errors
	}
	return e
}

// MonolithicUploads reports whether the registry of repo finishes a blob upload on the POST that
// starts it (?digest= with the body), asked once per registry host for the life of r: the empty blob
// is pushed to repo that way; a registry that answers with an upload session (202) gets it there.
// The answer (not an error) is kept.
func (r *Registries) MonolithicUploads(ctx context.Context, repo *remote.Repository) (bool, error) {
	host := repo.Reference.Host()
	r.mu.Lock()
	yes, known := r.monolithic[host]
	r.mu.Unlock()
	if known {
		return yes, nil
	}
	empty := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(nil)}
	yes, err := PushBlob(ctx, repo, empty, func() (io.ReadCloser, error) { return http.NoBody, nil }, Upload{Monolithic: true})
	if err != nil {
		return false, fmt.Errorf("ask %s whether it takes a blob in one request: %w", host, err)
	}
	r.mu.Lock()
	r.monolithic[host] = yes
	r.mu.Unlock()
	return yes, nil
}
