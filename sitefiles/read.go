package sitefiles

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// ReadMapping reads the mapping.txt that Write wrote into dir: one Mapping per line, its source
// repository normalized as the container runtimes name it ("docker.io/library/nginx"). An error
// names the file and line.
func ReadMapping(dir string) ([]Mapping, error) {
	file := filepath.Join(dir, siteMappingFile)
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w (write it with load --site-files %s)", err, dir)
	}
	var out []Mapping
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m, err := parseMappingLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %q: %w; want SOURCE=TARGET@DIGEST, as load --site-files writes it", file, n, line, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no images listed", file)
	}
	return out, nil
}

func parseMappingLine(line string) (Mapping, error) {
	source, target, ok := strings.Cut(line, "=")
	at := strings.LastIndex(target, "@")
	if !ok || at < 0 {
		return Mapping{}, fmt.Errorf("no '=' or no '@'")
	}
	named, err := reference.ParseNormalizedNamed(source)
	if err != nil {
		return Mapping{}, fmt.Errorf("source: %w", err)
	}
	m := Mapping{Source: source, SourceRepository: reference.TrimNamed(named).String(), Target: target[:at], Digest: digest.Digest(target[at+1:])}
	if tagged, ok := named.(reference.Tagged); ok {
		m.Tag = tagged.Tag()
	}
	if _, err := reference.ParseNamed(m.Target); err != nil {
		return Mapping{}, fmt.Errorf("target: %w", err)
	}
	return m, m.check()
}
