package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
)

// FetchFrom opens blob desc of repo at offset with one Range request. oras-go's Fetch would first
// start a full GET and only then seek, so the bytes already received are sent again. A registry that
// ignores Range (200 instead of 206) is read from the start, the first offset bytes discarded.
func FetchFrom(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	resp, err := Get(ctx, repo, "blobs", desc.Digest.String(), http.Header{"Range": {fmt.Sprintf("bytes=%d-", offset)}})
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		return resp.Body, nil
	case http.StatusOK:
		if _, err := io.CopyN(io.Discard, resp.Body, offset); err != nil {
			resp.Body.Close()
			return nil, err
		}
		return resp.Body, nil
	default:
		defer resp.Body.Close()
		// The type oras-go gives its own failed requests, so that Retryable judges it by its status.
		return nil, fmt.Errorf("GET with Range: %w", errorResponse(resp))
	}
}
