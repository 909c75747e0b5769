package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/vocab"
)

// Refusal kinds: what a target registry refused, in words a site operator can act on.
const (
	RefusedDenied       = "denied"
	RefusedImmutable    = "immutable-tag"
	RefusedSize         = "size"
	RefusedDockerTypes  = "docker-media-types"
	RefusedSparseIndex  = "sparse-index"
	RefusedArtifactType = "artifact-type"
	RefusedMediaType    = "media-type"
)

// RefusedError is a registry's refusal named: Kind and Reason say what the target refuses and what
// to do about it, Err is the registry's own answer, kept whole.
type RefusedError struct {
	Kind   string
	Reason string
	Err    error
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s (the registry said: %v)", e.Reason, e.Err)
}

func (e *RefusedError) Unwrap() error { return e.Err }

// explainRefusal names what the registry of store refused when it answered err to a write of n (nil
// for a blob) or of the tag tag (empty when no tag was written). Errors it cannot classify are
// returned as they are.
func explainRefusal(err error, store string, n *plan.Node, tag string) error {
	var er *errcode.ErrorResponse
	var re *RefusedError
	if err == nil || errors.As(err, &re) || !errors.As(err, &er) {
		return err
	}
	kind, reason := refusalReason(er, store, n, tag)
	if kind == "" {
		return err
	}
	return &RefusedError{Kind: kind, Reason: reason, Err: err}
}

// refusalReason classifies a registry's error response by its status, its error codes and its text.
func refusalReason(er *errcode.ErrorResponse, store string, n *plan.Node, tag string) (kind, reason string) {
	var codes, text []string
	for _, e := range er.Errors {
		codes = append(codes, strings.ToUpper(e.Code))
		text = append(text, strings.ToLower(e.Message))
	}
	code, msg := " "+strings.Join(codes, " ")+" ", strings.Join(text, "; ")
	has := func(s string) bool { return strings.Contains(code, " "+s+" ") }
	mt := ""
	if n != nil {
		mt = n.Desc.MediaType
	}
	host, _, _ := strings.Cut(store, "/")
	invalid := er.StatusCode == http.StatusUnsupportedMediaType || has("MANIFEST_INVALID") || strings.Contains(msg, "manifest invalid")
	switch {
	case er.StatusCode == http.StatusUnauthorized || er.StatusCode == http.StatusForbidden || has("DENIED") || has("UNAUTHORIZED"):
		return RefusedDenied, fmt.Sprintf("the target denied the write: check the credentials for %s (docker login %s) and that they may push to %s", host, host, store)
	case tag != "" && (strings.Contains(msg, "immutable") || has("TAG_INVALID") || er.StatusCode == http.StatusConflict || er.StatusCode == http.StatusPreconditionFailed):
		return RefusedImmutable, fmt.Sprintf("tag %s is immutable on the target (tag immutability, as Harbor and ECR have it) and does not name %s yet: airlock leaves a tag that already names the digest alone, but cannot move this one; lift the rule for this repository or tag, or load under another prefix", tag, digestOf(n))
	case er.StatusCode == http.StatusRequestEntityTooLarge || has("SIZE_INVALID") || strings.Contains(msg, "too large") || strings.Contains(msg, "too big"):
		return RefusedSize, "the target refuses content this large: a size limit of the registry, or of a proxy in front of it (nginx client_max_body_size, for one); raise the limit"
	case (mt == vocab.DockerManifest || mt == vocab.DockerManifestList) && invalid:
		r := fmt.Sprintf("the target refuses Docker media types (%s): zot accepts them with http.compat: [\"docker2s2\"] in its configuration; airlock never converts a manifest, since its digest would change", mt)
		if sparse(n) {
			r += "; " + sparseAdvice
		}
		return RefusedDockerTypes, r
	case sparse(n) && (invalid || has("MANIFEST_BLOB_UNKNOWN") || has("BLOB_UNKNOWN") || strings.Contains(msg, "blob unknown")):
		return RefusedSparseIndex, "the target refuses an index whose platform manifests are not all there (saved with a platform filter): " + sparseAdvice
	case artifactTypeOf(n) != "" && (invalid || strings.Contains(msg, "artifact")):
		return RefusedArtifactType, fmt.Sprintf("the target refuses artifact type %s: allow it in the registry's configuration, or leave it out of the image set (referrers.artifactTypes)", artifactTypeOf(n))
	case er.StatusCode == http.StatusUnsupportedMediaType:
		return RefusedMediaType, fmt.Sprintf("the target refuses media type %s: airlock never converts a manifest, since its digest would change", mt)
	}
	return "", ""
}

// sparseAdvice says how to load an index whose platform manifests were left out.
const sparseAdvice = "load with --sparse-index=flatten, or let the registry accept sparse indexes (distribution: validation.manifests.indexes.platforms: none, or list with a platformlist; Quay: a feature flag; zot and Harbor refuse them)"

func digestOf(n *plan.Node) string {
	if n == nil {
		return "the wanted digest"
	}
	return n.Desc.Digest.String()
}

// sparse reports whether n is an index that lists platform manifests the plan does not carry.
func sparse(n *plan.Node) bool {
	if n == nil || !vocab.IsIndex(n.Desc.MediaType) {
		return false
	}
	succ, err := vocab.ParseSuccessors(n.Desc.MediaType, n.Manifest)
	return err == nil && len(n.Children) < len(succ.Manifests)
}

// artifactTypeOf returns n's artifactType, or the config media type of an artifact manifest that has
// none; "" for an image.
func artifactTypeOf(n *plan.Node) string {
	if n == nil || !vocab.IsManifest(n.Desc.MediaType) {
		return ""
	}
	var m ocispec.Manifest
	if json.Unmarshal(n.Manifest, &m) != nil {
		return ""
	}
	switch {
	case m.ArtifactType != "":
		return m.ArtifactType
	case m.Config.MediaType != ocispec.MediaTypeImageConfig && m.Config.MediaType != "application/vnd.docker.container.image.v1+json" && m.Config.MediaType != "":
		return m.Config.MediaType
	}
	return ""
}
