package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
)

// ProbeReferrers asks the registry of repo whether it serves the referrers API, by requesting the
// referrers of a digest that cannot exist. A 200 answer with an OCI index means yes; a 404 means no.
// The OCI-Subject header of a push is not used: some registries with the API omit it. The answer is
// also set on repo.
func ProbeReferrers(ctx context.Context, repo *remote.Repository) (bool, error) {
	ref := repo.Reference
	resp, err := Get(ctx, repo, "referrers", "sha256:"+strings.Repeat("0", 64), http.Header{"Accept": {ocispec.MediaTypeImageIndex}})
	if err != nil {
		return false, fmt.Errorf("probe referrers API of %s: %w", ref.Registry, err)
	}
	defer resp.Body.Close()
	var supported bool
	switch resp.StatusCode {
	case http.StatusOK:
		ct := resp.Header.Get("Content-Type")
		supported = strings.HasPrefix(ct, ocispec.MediaTypeImageIndex) || ct == "application/json" || ct == ""
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusBadRequest:
		supported = false
	case http.StatusUnauthorized, http.StatusForbidden:
		return false, fmt.Errorf("probe referrers API of %s/%s: %s: check your credentials (docker login)", ref.Registry, ref.Repository, resp.Status)
	default:
		// The type oras-go gives its own failed requests, so that Retryable retries a 5xx.
		return false, fmt.Errorf("probe referrers API of %s/%s: unexpected %s: %w", ref.Registry, ref.Repository, resp.Status, errorResponse(resp))
	}
	if err := repo.SetReferrersCapability(supported); err != nil && !errors.Is(err, remote.ErrReferrersCapabilityAlreadySet) {
		return supported, err
	}
	return supported, nil
}
