// Package sitefiles writes what a disconnected site needs so that its container runtimes pull loaded
// images from the mirror: a mapping list, OpenShift IDMS and ITMS, registries.conf and containerd
// hosts.toml files.
package sitefiles

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"airlock.dev/airlock/config"
	"airlock.dev/airlock/internal/atomicfile"
	"airlock.dev/airlock/registry"
	"github.com/opencontainers/go-digest"
	"gopkg.in/yaml.v3"
)

// Mapping is one image as loaded: where it came from and where it now is.
type Mapping struct {
	Source           string        // source reference as saved, e.g. "registry.example.com/team/app:1.4.2" or "...@sha256:..."
	SourceRepository string        // "registry.example.com/team/app"
	Target           string        // target repository, e.g. "site.example:5000/mirror/team/app"
	Tag              string        // "" when the image was saved by digest only
	Digest           digest.Digest // digest of what the tag names on the mirror: the top manifest or index, or for an image loaded with --sparse-index=flatten its one platform manifest (the index is not on the mirror, so a pull by the index digest finds nothing there)
}

// Names and fixed values of the site files.
const (
	siteMappingFile     = "mapping.txt"
	siteIDMSFile        = "imagedigestmirrorset.yaml"
	siteITMSFile        = "imagetagmirrorset.yaml"
	siteRegistriesFile  = "registries.conf"
	siteHostsDir        = "hosts.d"
	siteHostsFile       = "hosts.toml"
	siteMirrorSetName   = "airlock"
	siteOpenShiftAPI    = "config.openshift.io/v1"
	siteDockerHubHost   = "docker.io"
	siteDockerHubServer = "https://registry-1.docker.io"
)

// Write writes the configuration a site needs so that its container runtimes pull the images in
// ms from the mirror instead of their original registries. Into dir (created if missing) it writes:
//
//   - mapping.txt: one "SOURCE=TARGET@DIGEST" line per image, sorted;
//   - imagedigestmirrorset.yaml and imagetagmirrorset.yaml: OpenShift ImageDigestMirrorSet and
//     ImageTagMirrorSet objects named "airlock" (the tag set only lists repositories loaded with a tag);
//   - registries.conf: containers-registries.conf(5) v2 entries for podman, CRI-O and skopeo, one
//     [[registry]] per source repository, with pull-from-mirror "digest-only" for mirrors that only
//     received images by digest;
//   - hosts.d/<source-host>/hosts.toml: containerd registry host files, to be copied to
//     /etc/containerd/certs.d/<source-host>/hosts.toml.
//
// Mirrors on loopback hosts (127.0.0.0/8, ::1, localhost) are marked insecure (registries.conf) or
// reached over http:// (hosts.toml), as airlock itself reaches them. Output is deterministic: sorted, no
// timestamps. Each file is written atomically (temporary file, then rename). Files from an earlier run
// that this run does not write are left in place. It returns the relative paths written, slash-separated
// and sorted.
func Write(dir string, ms []Mapping) ([]string, error) {
	set, err := newSiteSet(ms)
	if err != nil {
		return nil, err
	}
	idms, err := set.mirrorSet("ImageDigestMirrorSet", "imageDigestMirrors", false)
	if err != nil {
		return nil, err
	}
	itms, err := set.mirrorSet("ImageTagMirrorSet", "imageTagMirrors", true)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		siteMappingFile:    set.mappingTxt(),
		siteIDMSFile:       idms,
		siteITMSFile:       itms,
		siteRegistriesFile: set.registriesConf(),
	}
	for host, content := range set.hostsTOML() {
		files[path.Join(siteHostsDir, host, siteHostsFile)] = content
	}

	names := slices.Sorted(maps.Keys(files))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("site files: create %s: %w", dir, err)
	}
	for _, name := range names {
		if err := writeSiteFile(filepath.Join(dir, filepath.FromSlash(name)), files[name]); err != nil {
			return nil, fmt.Errorf("site files: %w", err)
		}
	}
	return names, nil
}

// siteSet is the mappings of one load, grouped by source repository.
type siteSet struct {
	lines []string    // mapping.txt lines, sorted and distinct
	repos []*siteRepo // sorted by source repository
}

// siteRepo is one source repository and the target repositories it was loaded into.
type siteRepo struct {
	source  string          // normalized source repository: "docker.io/library/nginx"
	host    string          // source registry host: "docker.io", "registry.example.com:443"
	path    string          // repository path within host: "library/nginx"
	targets map[string]bool // target repository -> whether at least one tagged image was loaded into it
}

func newSiteSet(ms []Mapping) (*siteSet, error) {
	if len(ms) == 0 {
		return nil, errors.New("site files: no images were loaded; there is nothing to mirror")
	}
	lines := map[string]bool{}
	repos := map[string]*siteRepo{}
	for _, m := range ms {
		if err := m.check(); err != nil {
			return nil, err
		}
		lines[m.Source+"="+m.Target+"@"+m.Digest.String()] = true
		host, p := config.SplitRepository(m.SourceRepository)
		src := host + "/" + p
		r := repos[src]
		if r == nil {
			r = &siteRepo{source: src, host: host, path: p, targets: map[string]bool{}}
			repos[src] = r
		}
		r.targets[m.Target] = r.targets[m.Target] || m.Tag != ""
	}
	s := &siteSet{lines: slices.Sorted(maps.Keys(lines))}
	for _, r := range repos {
		s.repos = append(s.repos, r)
	}
	sort.Slice(s.repos, func(i, j int) bool { return s.repos[i].source < s.repos[j].source })
	return s, nil
}

func (m Mapping) check() error {
	name := m.Source
	if name == "" {
		name = m.SourceRepository + "@" + m.Digest.String()
	}
	switch {
	case m.SourceRepository == "":
		return fmt.Errorf("site files: image %q has no source repository; the load result is incomplete, run the load again", name)
	case m.Target == "":
		return fmt.Errorf("site files: image %q has no target repository; the load result is incomplete, run the load again", name)
	case !strings.Contains(strings.Trim(m.Target, "/"), "/"):
		return fmt.Errorf("site files: image %q: target %q is a registry host, not a repository (want HOST[:PORT]/PATH)", name, m.Target)
	case strings.ContainsAny(m.Target, "@ \t\n\"\\") || strings.ContainsAny(m.SourceRepository, "@ \t\n\"\\"):
		return fmt.Errorf("site files: image %q: source repository %q or target %q is not a plain repository name", name, m.SourceRepository, m.Target)
	}
	if err := m.Digest.Validate(); err != nil {
		return fmt.Errorf("site files: image %q: digest %q: %w", name, m.Digest, err)
	}
	return nil
}

func (s *siteSet) header(comment string) string {
	n := len(s.lines)
	images := "images"
	if n == 1 {
		images = "image"
	}
	return fmt.Sprintf("%s Generated by airlock from %d %s. Do not edit; generate it again after the next load.\n", comment, n, images)
}

func (s *siteSet) mappingTxt() []byte {
	var b strings.Builder
	b.WriteString(s.header("#"))
	b.WriteString("# SOURCE=TARGET@DIGEST, one line per image.\n")
	for _, l := range s.lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

type siteMirrorSet struct {
	APIVersion string                         `yaml:"apiVersion"`
	Kind       string                         `yaml:"kind"`
	Metadata   siteMirrorSetMeta              `yaml:"metadata"`
	Spec       map[string][]siteMirrorSetItem `yaml:"spec"`
}

type siteMirrorSetMeta struct {
	Name string `yaml:"name"`
}

type siteMirrorSetItem struct {
	Source  string   `yaml:"source"`
	Mirrors []string `yaml:"mirrors"`
}

// mirrorSet renders an ImageDigestMirrorSet or ImageTagMirrorSet; taggedOnly keeps only mirrors that
// received at least one tagged image.
func (s *siteSet) mirrorSet(kind, field string, taggedOnly bool) ([]byte, error) {
	items := []siteMirrorSetItem{}
	for _, r := range s.repos {
		var mirrors []string
		for _, t := range slices.Sorted(maps.Keys(r.targets)) {
			if !taggedOnly || r.targets[t] {
				mirrors = append(mirrors, t)
			}
		}
		if len(mirrors) > 0 {
			items = append(items, siteMirrorSetItem{Source: r.source, Mirrors: mirrors})
		}
	}
	obj := siteMirrorSet{
		APIVersion: siteOpenShiftAPI,
		Kind:       kind,
		Metadata:   siteMirrorSetMeta{Name: siteMirrorSetName},
		Spec:       map[string][]siteMirrorSetItem{field: items},
	}
	var b bytes.Buffer
	b.WriteString(s.header("#"))
	fmt.Fprintf(&b, "# Apply with: oc apply -f %s\n", map[bool]string{false: siteIDMSFile, true: siteITMSFile}[taggedOnly])
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(obj); err != nil {
		return nil, fmt.Errorf("site files: render %s: %w", kind, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("site files: render %s: %w", kind, err)
	}
	return b.Bytes(), nil
}

func (s *siteSet) registriesConf() []byte {
	var b strings.Builder
	b.WriteString(s.header("#"))
	b.WriteString("# containers-registries.conf(5) version 2, for podman, CRI-O, buildah and skopeo.\n")
	b.WriteString("# Append to /etc/containers/registries.conf or save as /etc/containers/registries.conf.d/50-airlock.conf.\n")
	for _, r := range s.repos {
		b.WriteString("\n[[registry]]\n")
		fmt.Fprintf(&b, "prefix = %s\n", tomlString(r.source))
		fmt.Fprintf(&b, "location = %s\n", tomlString(r.source))
		for _, t := range slices.Sorted(maps.Keys(r.targets)) {
			b.WriteString("\n[[registry.mirror]]\n")
			fmt.Fprintf(&b, "location = %s\n", tomlString(t))
			if registry.IsLoopback(targetHost(t)) {
				b.WriteString("insecure = true\n")
			}
			policy := "digest-only"
			if r.targets[t] {
				policy = "all"
			}
			fmt.Fprintf(&b, "pull-from-mirror = %s\n", tomlString(policy))
		}
	}
	return []byte(b.String())
}

// hostsTOML renders one containerd hosts.toml per source registry host, keyed by host.
func (s *siteSet) hostsTOML() map[string][]byte {
	type hostMirrors struct {
		urls     map[string]bool
		unmapped []string
	}
	hosts := map[string]*hostMirrors{}
	for _, r := range s.repos {
		h := hosts[r.host]
		if h == nil {
			h = &hostMirrors{urls: map[string]bool{}}
			hosts[r.host] = h
		}
		for _, t := range slices.Sorted(maps.Keys(r.targets)) {
			prefix, ok := strings.CutSuffix(t, "/"+r.path)
			if !ok {
				// containerd mirrors a whole registry: the repository path is appended to the mirror
				// URL unchanged, so a target that renames the path cannot be expressed.
				h.unmapped = append(h.unmapped, r.source+" -> "+t)
				continue
			}
			h.urls[mirrorURL(prefix)] = true
		}
	}
	out := map[string][]byte{}
	for host, h := range hosts {
		var b strings.Builder
		b.WriteString(s.header("#"))
		fmt.Fprintf(&b, "# containerd registry hosts for %s: copy to /etc/containerd/certs.d/%s/hosts.toml\n", host, host)
		b.WriteString("# (the CRI plugin's registry config_path must point at /etc/containerd/certs.d).\n")
		if len(h.unmapped) > 0 {
			b.WriteString("# Not mirrored here, because the target does not keep the source repository path:\n")
			for _, u := range h.unmapped {
				fmt.Fprintf(&b, "#   %s\n", u)
			}
		}
		server := "https://" + host
		if host == siteDockerHubHost {
			server = siteDockerHubServer
		}
		fmt.Fprintf(&b, "\nserver = %s\n", tomlString(server))
		for _, u := range slices.Sorted(maps.Keys(h.urls)) {
			fmt.Fprintf(&b, "\n[host.%s]\n", tomlString(u))
			b.WriteString("  capabilities = [\"pull\", \"resolve\"]\n")
			b.WriteString("  override_path = true\n")
		}
		out[host] = []byte(b.String())
	}
	return out
}

// mirrorURL turns a target prefix ("site:5000/mirror") into a containerd host URL whose path is the
// registry API root ("https://site:5000/v2/mirror"), for use with override_path.
func mirrorURL(prefix string) string {
	host, p, _ := strings.Cut(prefix, "/")
	scheme := "https"
	if registry.IsLoopback(host) {
		scheme = "http"
	}
	u := scheme + "://" + host + "/v2"
	if p != "" {
		u += "/" + p
	}
	return u
}

func targetHost(repo string) string {
	host, _, _ := strings.Cut(repo, "/")
	return host
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// writeSiteFile writes data to name atomically (atomicfile.WriteFile), creating its directory.
func writeSiteFile(name string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(name), err)
	}
	if err := atomicfile.WriteFile(name, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
