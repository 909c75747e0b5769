package seed

import (
	"context"
	"fmt"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"
)

// pushSBOM pushes a small SPDX JSON document as an OCI 1.1 artifact whose subject is
// subject, and returns the artifact manifest's descriptor.
func pushSBOM(ctx context.Context, repo *remote.Repository, subject ocispec.Descriptor) (ocispec.Descriptor, error) {
	doc := map[string]any{
		"spdxVersion":       "SPDX-2.3",
		"dataLicense":       "CC0-1.0",
		"SPDXID":            "SPDXRef-DOCUMENT",
		"name":              repo.Reference.Repository,
		"documentNamespace": "https://airlock.dev/e2e/spdx/" + subject.Digest.Encoded(),
		"creationInfo": map[string]any{
			"created":  time.Now().UTC().Format(time.RFC3339),
			"creators": []string{"Tool: airlock-e2e-seed"},
		},
		"packages": []map[string]any{{
			"SPDXID":           "SPDXRef-Package-app",
			"name":             "app",
			"versionInfo":      "1.0.0",
			"downloadLocation": "NOASSERTION",
		}},
	}
	layer, err := pushJSON(ctx, repo, SBOMArtifactType, doc)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	layer.Annotations = map[string]string{ocispec.AnnotationTitle: "sbom.spdx.json"}
	desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, SBOMArtifactType, oras.PackManifestOptions{
		Subject: &subject,
		Layers:  []ocispec.Descriptor{layer},
	})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push SBOM for %s@%s: %w", repo.Reference, subject.Digest, err)
	}
	return desc, nil
}
