package config

import (
	_ "crypto/sha512" // go-digest takes an algorithm only when its hash is linked in
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// referenceForm is shown in every reference error so the user sees what is expected.
const referenceForm = "expected HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX], e.g. registry.example.com/team/app:1.4.2"

// DefaultTag is the tag given to a reference that has neither a tag nor a digest.
const DefaultTag = "latest"

// Docker Hub's canonical name, and the host it serves from, which the reference library leaves
// as it is and airlock takes for Docker Hub too.
const (
	dockerHub    = "docker.io"
	dockerHubAPI = "registry-1.docker.io"
)

var (
	// tagRE and hostRE are the reference library's tag and HOST[:PORT] grammars, anchored.
	tagRE  = regexp.MustCompile(`^` + reference.TagRegexp.String() + `$`)
	hostRE = regexp.MustCompile(`^` + reference.DomainRegexp.String() + `$`)
)

// ParseReference parses an image reference into an Image with Ref, Registry, Repository, Tag and
// Digest set, with github.com/distribution/reference. Accepted forms are
// HOST[:PORT]/REPOSITORY[:TAG][@DIGEST]; a reference may carry both a tag and a digest. Short
// names are normalised as docker does ("nginx" is docker.io/library/nginx; index.docker.io and
// registry-1.docker.io are docker.io). A reference with neither tag nor digest gets tag "latest".
// Digests must use sha256 or sha512. An error names the reference, the part that is wrong and
// the expected form.
func ParseReference(s string) (Image, error) {
	img, err := parseReference(s)
	if err != nil {
		return Image{}, fmt.Errorf("invalid reference %q: %s; %s", s, err, referenceForm)
	}
	return img, nil
}

func parseReference(s string) (Image, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err == nil && reference.Domain(named) == "" {
		// The library reads an invalid host such as "reg_istry.example.com" as a path component.
		err = reference.ErrReferenceInvalidFormat
	}
	if err != nil {
		return Image{}, explain(s, err)
	}
	img := Image{Ref: s}
	img.Registry, img.Repository = SplitRepository(named.Name())
	if t, ok := named.(reference.Tagged); ok {
		img.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		img.Digest = d.Digest()
		return img, checkDigest(d.Digest().String())
	}
	if img.Tag == "" {
		img.Tag = DefaultTag
	}
	return img, nil
}

// SplitRepository splits name (without tag or digest) into registry host and repository path,
// normalising Docker Hub as the container tools do: "nginx", "docker.io/nginx",
// "index.docker.io/library/nginx" and "registry-1.docker.io/library/nginx" are all ("docker.io",
// "library/nginx"). A name the reference grammar refuses is split at its first '/'.
func SplitRepository(name string) (registry, repository string) {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil || reference.Domain(named) == "" {
		registry, repository, _ = strings.Cut(name, "/")
		return registry, repository
	}
	if registry, repository = reference.Domain(named), reference.Path(named); registry == dockerHubAPI {
		return SplitRepository(dockerHub + "/" + repository)
	}
	return registry, repository
}

// explain says, in words, which part of s the reference library refused (err) and why. The parts
// are found as the library finds them: the digest after '@', the tag after a ':' that follows the
// last '/', and a host before the first '/' that has a '.' or ':', is "localhost" or is not
// lowercase.
func explain(s string, err error) error {
	switch {
	case s == "":
		return errors.New("empty reference")
	case strings.ContainsAny(s, " \t\r\n"):
		return errors.New("contains whitespace")
	case strings.Contains(s, "://"):
		return fmt.Errorf("must not include a URL scheme (%s)", s[:strings.Index(s, "://")+3])
	}
	name, dgst, hasDigest := strings.Cut(s, "@")
	if derr := checkDigest(dgst); hasDigest && derr != nil {
		return derr
	}
	if colon := strings.LastIndexByte(name, ':'); colon > strings.LastIndexByte(name, '/') {
		tag := name[colon+1:]
		name = name[:colon]
		switch {
		case tag == "":
			return errors.New("empty tag after ':'")
		case !tagRE.MatchString(tag):
			return fmt.Errorf("tag %q is invalid: a tag is 1 to 128 letters, digits, '_', '.' or '-' and must not start with '.' or '-'", tag)
		}
	}
	if name == "" {
		return errors.New("missing repository name")
	}
	path := name
	if host, rest, found := strings.Cut(name, "/"); found &&
		(strings.ContainsAny(host, ".:") || host == "localhost" || strings.ToLower(host) != host) {
		if !hostRE.MatchString(host) {
			return fmt.Errorf("registry host %q is invalid: expected a host name or IP address with an optional :PORT", host)
		}
		path = rest
	}
	if perr := checkRepository(path); perr != nil {
		return perr
	}
	return err
}

// checkRepository reports why repo is not a repository path of the reference grammar.
func checkRepository(repo string) error {
	switch {
	case repo == "":
		return errors.New("missing repository name after the registry host")
	case strings.ToLower(repo) != repo:
		return fmt.Errorf("repository %q is invalid: repository names must be lowercase", repo)
	}
	// Any valid host serves to check the path: "x/" + repo is a name exactly when repo is a path.
	if _, err := reference.WithName("x/" + repo); errors.Is(err, reference.ErrReferenceInvalidFormat) {
		return fmt.Errorf("repository %q is invalid: each '/'-separated component is lowercase letters and digits, joined by '.', '_', '__' or '-'", repo)
	}
	return nil
}

// checkDigest says what is wrong with a digest: airlock takes sha256 and sha512, in lowercase
// hex of the algorithm's length.
func checkDigest(s string) error {
	alg, hex, ok := strings.Cut(s, ":")
	switch {
	case s == "":
		return errors.New("empty digest after '@'")
	case !ok || alg == "" || hex == "":
		return fmt.Errorf("digest %q is not of the form ALGORITHM:HEX", s)
	case alg != string(digest.SHA256) && alg != string(digest.SHA512):
		return fmt.Errorf("digest %q: algorithm must be sha256 or sha512, got %q", s, alg)
	case strings.Trim(hex, "0123456789abcdef") != "":
		return fmt.Errorf("digest %q: the %s part must be lowercase hex", s, alg)
	case len(hex) != digest.Algorithm(alg).Size()*2:
		return fmt.Errorf("digest %q: a %s digest has %d hex characters, got %d", s, alg, digest.Algorithm(alg).Size()*2, len(hex))
	}
	return nil
}

// RepositoryRef returns "registry/repository", the reference without tag or digest.
func (i Image) RepositoryRef() string {
	return i.Registry + "/" + i.Repository
}

// String returns the canonical reference "registry/repository[:tag][@digest]".
func (i Image) String() string {
	s := i.RepositoryRef()
	if i.Tag != "" {
		s += ":" + i.Tag
	}
	if i.Digest != "" {
		s += "@" + i.Digest.String()
	}
	return s
}
