package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// manifestAccept lists every manifest media type the tests read.
var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest,
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
}, ", ")

// get does a plain GET (or HEAD) against the registry API and returns status, headers and body.
func get(ctx context.Context, t *testing.T, method, host, path string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+host+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// manifest fetches repo's manifest ref, fails the test unless it is there, checks that
// the body hashes to the digest the registry names, and decodes it into v.
func manifest(ctx context.Context, t *testing.T, host, repo, ref string, v any) digest.Digest {
	t.Helper()
	status, h, b := get(ctx, t, http.MethodGet, host, fmt.Sprintf("/v2/%s/manifests/%s", repo, ref))
	if status != http.StatusOK {
		t.Fatalf("GET %s/%s manifest %s: status %d: %s", host, repo, ref, status, b)
	}
	d := digest.FromBytes(b)
	if got := h.Get("Docker-Content-Digest"); got != "" && got != d.String() {
		t.Errorf("manifest %s: Docker-Content-Digest %s, body hashes to %s", ref, got, d)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("manifest %s: %v", ref, err)
	}
	return d
}

// digests returns the digests of descs.
func digests(descs []ocispec.Descriptor) []digest.Digest {
	var ds []digest.Digest
	for _, d := range descs {
		ds = append(ds, d.Digest)
	}
	return ds
}

func readFull(r io.Reader, b []byte) (int, error) {
	n, err := io.ReadFull(r, b)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil
	}
	return n, err
}
