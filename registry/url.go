package registry

import (
	"context"
	"fmt"
	"net/http"

	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
)

// URL returns the address of an endpoint of repo's distribution API, as repo reaches it (http or
// https): kind is "blobs", "manifests" or "referrers", ref a digest or tag. oras-go builds its own; this
// is for the requests airlock sends itself.
func URL(repo *remote.Repository, kind, ref string) string {
	scheme := "https"
	if repo.PlainHTTP {
		scheme = "http"
	}
	return fmt.Sprintf("%s://%s/v2/%s/%s/%s", scheme, repo.Reference.Host(), repo.Reference.Repository, kind, ref)
}

// Get sends one GET for URL(repo, kind, ref) with header, through repo's client (credentials, token
// cache, retries) and with a pull scope on repo.
func Get(ctx context.Context, repo *remote.Repository, kind, ref string, header http.Header) (*http.Response, error) {
	ctx = auth.AppendRepositoryScope(ctx, repo.Reference, auth.ActionPull)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, URL(repo, kind, ref), nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return client(repo).Do(req)
}

// client is repo's client, or oras-go's default one as repo itself would use.
func client(repo *remote.Repository) remote.Client {
	if repo.Client == nil {
		return auth.DefaultClient
	}
	return repo.Client
}
