package config

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// The shape of a pinned ImageSet file, in the order its fields are written.
type (
	pinnedFile struct {
		APIVersion string          `yaml:"apiVersion"`
		Kind       string          `yaml:"kind"`
		Images     []pinnedImage   `yaml:"images,omitempty"`
		Charts     []pinnedChart   `yaml:"charts,omitempty"`
		Blocked    []string        `yaml:"blocked,omitempty"`
		Referrers  pinnedReferrers `yaml:"referrers"`
		Trust      *pinnedTrust    `yaml:"trust,omitempty"`
		Policy     string          `yaml:"policy,omitempty"`
	}
	pinnedImage struct {
		Ref       string   `yaml:"ref"`
		Platforms []string `yaml:"platforms,omitempty,flow"`
		Target    string   `yaml:"target,omitempty"`
	}
	pinnedChart struct {
		Ref        string   `yaml:"ref,omitempty"`
		Repo       string   `yaml:"repo,omitempty"`
		Name       string   `yaml:"name,omitempty"`
		Version    string   `yaml:"version,omitempty"`
		Digest     string   `yaml:"digest,omitempty"`
		FindImages bool     `yaml:"findImages"`
		Platforms  []string `yaml:"platforms,omitempty,flow"`
		Target     string   `yaml:"target,omitempty"`
	}
	pinnedReferrers struct {
		Enabled       bool     `yaml:"enabled"`
		ArtifactTypes []string `yaml:"artifactTypes"`
	}
	pinnedTrust struct {
		Keys        []string `yaml:"keys,omitempty"`
		TrustedRoot string   `yaml:"trustedRoot,omitempty"`
	}
)

// Pinned returns an ImageSet file, to be written at path, that lists exactly images, each pinned
// by digest ("ref: registry/repository:tag@sha256:..."), so that a later save from that file
// reproduces the same set. images is the resolved set, each with its Digest set: the entries of
// Images and the images of each repository's picked tags (Expand gives both, then set each
// Digest). The repositories section is not written (its picked tags are images now); blocked,
// referrers, trust and policy are kept. A trust or policy file in the directory of path or below
// it is written relative to that directory, so a pinned file written beside the original reads
// like it and still works when moved together with its trust files; any other is written as an
// absolute path. The output is checked by parsing it; an image without a digest, an image listed
// twice or an empty list is an error.
//
// charts are the chart versions resolved, one Chart per version picked: an HTTP chart with its
// exact Version and its index Digest, an OCI chart with a Ref that has a digest. Each is written
// with findImages: false and its platforms and target only (values and the rest are not needed:
// the images it brought are in images), so a save from the pinned file carries the same chart
// bytes without rendering again. A chart that is not pinned so, or is listed twice, is an error.
func (s *ImageSet) Pinned(path string, images []Image, charts ...Chart) ([]byte, error) {
	if len(images) == 0 && len(charts) == 0 {
		return nil, fmt.Errorf("pinned image set for %s: no images resolved; nothing to pin", path)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("pinned image set: resolving directory of %s: %w", path, err)
	}
	rel := func(p string) string {
		if r, err := filepath.Rel(dir, p); err == nil && filepath.IsLocal(r) {
			return r
		}
		return p
	}
	out := pinnedFile{APIVersion: APIVersion, Kind: Kind, Referrers: pinnedReferrersOf(s.Referrers)}
	seen := make(map[string]bool, len(images))
	for _, img := range images {
		ref := img.String()
		switch {
		case img.Digest == "":
			return nil, fmt.Errorf("pinned image set: %s has no digest; pin only images resolved to a digest", ref)
		case seen[ref]:
			return nil, fmt.Errorf("pinned image set: %s is listed twice; pass each image once (Expand drops repeats)", ref)
		}
		seen[ref] = true
		out.Images = append(out.Images, pinnedImage{Ref: ref, Platforms: platformStrings(img.Platforms), Target: img.Target})
	}
	seenCharts := make(map[string]bool, len(charts))
	for _, c := range charts {
		pc, key, err := pinnedChartOf(c)
		switch {
		case err != nil:
			return nil, err
		case seenCharts[key]:
			return nil, fmt.Errorf("pinned image set: chart %s is listed twice; pass each chart version once", key)
		}
		seenCharts[key] = true
		out.Charts = append(out.Charts, pc)
	}
	for _, re := range s.BlockedRules {
		out.Blocked = append(out.Blocked, re.String())
	}
	if len(s.Trust.Keys) > 0 || s.Trust.TrustedRoot != "" {
		out.Trust = &pinnedTrust{}
		for _, k := range s.Trust.Keys {
			out.Trust.Keys = append(out.Trust.Keys, rel(k))
		}
		if s.Trust.TrustedRoot != "" {
			out.Trust.TrustedRoot = rel(s.Trust.TrustedRoot)
		}
	}
	if s.Policy != "" {
		out.Policy = rel(s.Policy)
	}
	return encodePinned(path, s.Path, out)
}

// pinnedChartOf writes one resolved chart version, and returns the key that tells versions apart.
func pinnedChartOf(c Chart) (pinnedChart, string, error) {
	pc := pinnedChart{Platforms: platformStrings(c.Platforms), Target: c.Target}
	if c.Ref != nil {
		if c.Ref.Digest == "" {
			return pc, "", fmt.Errorf("pinned image set: chart %s has no digest; pin only charts resolved to a digest", c)
		}
		pc.Ref = c.String()
		return pc, pc.Ref, nil
	}
	if !exactVersion(c.Version) || c.Digest == "" {
		return pc, "", fmt.Errorf("pinned image set: chart %s (version %q, digest %q) is not pinned; pass each picked version with its exact version and index digest", c, c.Version, c.Digest)
	}
	pc.Repo, pc.Name, pc.Version, pc.Digest = c.Repo, c.Name, trimExact(c.Version), c.Digest
	return pc, c.String() + " " + strings.TrimPrefix(pc.Version, "v"), nil
}

// pinnedReferrersOf writes referrers as a user would: "*" for all, and "default" for the default
// types when the list starts with them (parsing expands it back to the same list).
func pinnedReferrersOf(r Referrers) pinnedReferrers {
	out := pinnedReferrers{Enabled: r.Enabled, ArtifactTypes: slices.Clone(r.ArtifactTypes)}
	n := len(DefaultArtifactTypes)
	switch {
	case r.All:
		out.ArtifactTypes = []string{ArtifactTypesAll}
	case len(r.ArtifactTypes) >= n && slices.Equal(r.ArtifactTypes[:n], DefaultArtifactTypes):
		out.ArtifactTypes = append([]string{ArtifactTypesDefault}, r.ArtifactTypes[n:]...)
	}
	if len(out.ArtifactTypes) == 0 {
		// Only a set built in code has no types (a file always names one); any list reads back, and
		// "default" is what a file without artifactTypes means.
		out.ArtifactTypes = []string{ArtifactTypesDefault}
	}
	return out
}

// encodePinned writes out with a header comment and checks that the result parses.
func encodePinned(path, from string, out pinnedFile) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Pinned by airlock from %q: every image by digest, repositories expanded into the tags\n", from)
	b.WriteString("# they picked. A save from this file moves exactly these images.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("pinned image set: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("pinned image set: %w", err)
	}
	if _, err := Parse(path, b.Bytes()); err != nil {
		return nil, fmt.Errorf("pinned image set does not read back (a bug in airlock; please report it): %w", err)
	}
	return b.Bytes(), nil
}
