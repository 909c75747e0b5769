package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
)

// referenceForm is shown in every reference error so the user sees what is expected.
const referenceForm = "expected HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX], e.g. registry.example.com/team/app:1.4.2"

// DefaultTag is the tag given to a reference that has neither a tag nor a digest.
const DefaultTag = "latest"

// Docker Hub names, used to normalise short references the way docker does.
const (
	dockerHubRegistry = "docker.io"
	dockerHubLegacy   = "index.docker.io"
	dockerHubAPI      = "registry-1.docker.io"
	dockerHubLibrary  = "library/"
)

var (
	// repositoryRE is the distribution-spec grammar for a repository name.
	repositoryRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	// tagRE is the distribution-spec grammar for a tag.
	tagRE = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	// hostRE accepts a DNS name, "localhost", an IPv4 address or a bracketed IPv6 address,
	// each with an optional port.
	hostRE = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$`)
	// hexRE is the encoded part of a digest.
	hexRE = regexp.MustCompile(`^[a-f0-9]+$`)
)

// digestHexLen is the length of the hex part of each accepted digest algorithm.
var digestHexLen = map[digest.Algorithm]int{
	digest.SHA256: 64,
	digest.SHA512: 128,
}

// ParseReference parses an image reference into an Image with Ref, Registry, Repository, Tag and
// Digest set. Accepted forms are HOST[:PORT]/REPOSITORY[:TAG][@DIGEST]; a reference may carry both a
// tag and a digest. Short names are normalised as docker does: when the first path component has no
// '.' or ':' and is not "localhost", the registry is "docker.io", and a single-component repository
// on docker.io gets the "library/" prefix. A reference with neither tag nor digest gets tag "latest".
// Digests must use sha256 or sha512.
func ParseReference(s string) (Image, error) {
	img, err := parseReference(s)
	if err != nil {
		return Image{}, fmt.Errorf("invalid reference %q: %s; %s", s, err, referenceForm)
	}
	return img, nil
}

func parseReference(s string) (Image, error) {
	img := Image{Ref: s}
	switch {
	case s == "":
		return img, fmt.Errorf("empty reference")
	case strings.ContainsAny(s, " \t\r\n"):
		return img, fmt.Errorf("contains whitespace")
	case strings.Contains(s, "://"):
		return img, fmt.Errorf("must not include a URL scheme (%s)", s[:strings.Index(s, "://")+3])
	}

	name := s
	if at := strings.IndexByte(s, '@'); at >= 0 {
		name = s[:at]
		d, err := parseDigest(s[at+1:])
		if err != nil {
			return img, err
		}
		img.Digest = d
	}

	// A ':' after the last '/' starts the tag; one before it belongs to the host's port.
	if colon := strings.LastIndexByte(name, ':'); colon > strings.LastIndexByte(name, '/') {
		img.Tag = name[colon+1:]
		name = name[:colon]
		if img.Tag == "" {
			return img, fmt.Errorf("empty tag after ':'")
		}
		if !tagRE.MatchString(img.Tag) {
			return img, fmt.Errorf("tag %q is invalid: a tag is 1 to 128 letters, digits, '_', '.' or '-' and must not start with '.' or '-'", img.Tag)
		}
	}
	if name == "" {
		return img, fmt.Errorf("missing repository name")
	}

	img.Registry, img.Repository = SplitRepository(name)
	if !hostRE.MatchString(img.Registry) {
		return img, fmt.Errorf("registry host %q is invalid: expected a host name or IP address with an optional :PORT", img.Registry)
	}
	if err := checkRepository(img.Repository); err != nil {
		return img, err
	}
	if img.Tag == "" && img.Digest == "" {
		img.Tag = DefaultTag
	}
	return img, nil
}

// SplitRepository splits name (without tag or digest) into registry host and repository path,
// normalising Docker Hub as the container tools do: "nginx", "docker.io/nginx",
// "index.docker.io/library/nginx" and "registry-1.docker.io/library/nginx" are all ("docker.io",
// "library/nginx").
func SplitRepository(name string) (registry, repository string) {
	first, rest, found := strings.Cut(name, "/")
	if !found || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		registry, repository = dockerHubRegistry, name
	} else {
		registry, repository = first, rest
	}
	if registry == dockerHubLegacy || registry == dockerHubAPI {
		registry = dockerHubRegistry
	}
	if registry == dockerHubRegistry && repository != "" && !strings.Contains(repository, "/") {
		repository = dockerHubLibrary + repository
	}
	return registry, repository
}

// checkRepository reports why repo does not match the distribution-spec repository grammar.
func checkRepository(repo string) error {
	if repositoryRE.MatchString(repo) {
		return nil
	}
	switch {
	case repo == "":
		return fmt.Errorf("missing repository name after the registry host")
	case strings.ToLower(repo) != repo:
		return fmt.Errorf("repository %q is invalid: repository names must be lowercase", repo)
	default:
		return fmt.Errorf("repository %q is invalid: each '/'-separated component is lowercase letters and digits, joined by '.', '_', '__' or '-'", repo)
	}
}

// parseDigest parses and checks a digest: sha256 or sha512, lowercase hex of the right length.
func parseDigest(s string) (digest.Digest, error) {
	if s == "" {
		return "", fmt.Errorf("empty digest after '@'")
	}
	alg, hex, ok := strings.Cut(s, ":")
	if !ok || alg == "" || hex == "" {
		return "", fmt.Errorf("digest %q is not of the form ALGORITHM:HEX", s)
	}
	want, known := digestHexLen[digest.Algorithm(alg)]
	if !known {
		return "", fmt.Errorf("digest %q: algorithm must be sha256 or sha512, got %q", s, alg)
	}
	if !hexRE.MatchString(hex) {
		return "", fmt.Errorf("digest %q: the %s part must be lowercase hex", s, alg)
	}
	if len(hex) != want {
		return "", fmt.Errorf("digest %q: a %s digest has %d hex characters, got %d", s, alg, want, len(hex))
	}
	return digest.Digest(s), nil
}

// RepositoryRef returns "registry/repository", the reference without tag or digest.
func (i Image) RepositoryRef() string {
	return i.Registry + "/" + i.Repository
}

// String returns the canonical reference "registry/repository[:tag][@digest]".
func (i Image) String() string {
	var b strings.Builder
	b.WriteString(i.RepositoryRef())
	if i.Tag != "" {
		b.WriteString(":")
		b.WriteString(i.Tag)
	}
	if i.Digest != "" {
		b.WriteString("@")
		b.WriteString(i.Digest.String())
	}
	return b.String()
}
