package seed

import (
	"context"
	"fmt"
	"net/http"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// probeReferrersAPI reports whether host serves the OCI 1.1 referrers API for repo: a
// GET of /v2/<repo>/referrers/<digest> answering 200 with an image index.
func probeReferrersAPI(ctx context.Context, host, repo string, d digest.Digest) (bool, error) {
	url := fmt.Sprintf("http://%s/v2/%s/referrers/%s", host, repo, d)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", ocispec.MediaTypeImageIndex)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, fmt.Errorf("probe referrers API: %w", err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK && resp.Header.Get("Content-Type") == ocispec.MediaTypeImageIndex, nil
}
