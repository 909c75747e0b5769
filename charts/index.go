package charts

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"sigs.k8s.io/yaml"
)

// This file decodes a chart repository's index.yaml as helm.sh/helm/v4/pkg/repo/v1 does
// (index.go:loadIndex), without importing that package: it pulls in Helm's plugin runtime
// (wazero, extism), cli-runtime and kustomize, 24 MB of binary for one YAML type
// (docs/helm-charts.md section 6). charts/index_test.go checks the result against pkg/repo/v1.

// ErrNoAPIVersion is an index.yaml without apiVersion, refused as pkg/repo/v1 refuses it.
var ErrNoAPIVersion = errors.New("no API version specified")

// ErrEmptyIndex is an empty index.yaml.
var ErrEmptyIndex = errors.New("empty index.yaml file")

// IndexFile is a chart repository's index.yaml (pkg/repo/v1/index.go:IndexFile, same JSON tags).
type IndexFile struct {
	// ServerInfo is chartmuseum's; kept so strict decoding accepts its indexes.
	ServerInfo  map[string]any             `json:"serverInfo,omitempty"`
	APIVersion  string                     `json:"apiVersion"`
	Generated   time.Time                  `json:"generated"`
	Entries     map[string][]*ChartVersion `json:"entries"`
	PublicKeys  []string                   `json:"publicKeys,omitempty"`
	Annotations map[string]string          `json:"annotations,omitempty"`
}

// ChartVersion is one chart version in index.yaml (pkg/repo/v1/index.go:ChartVersion, same JSON
// tags): the chart's Chart.yaml metadata and where to fetch it.
type ChartVersion struct {
	*chart.Metadata
	URLs    []string  `json:"urls"`
	Created time.Time `json:"created"`
	Removed bool      `json:"removed,omitempty"`
	Digest  string    `json:"digest,omitempty"`

	// Deprecated fields Helm ignores; present so strict decoding accepts old indexes.
	ChecksumDeprecated      string `json:"checksum,omitempty"`
	EngineDeprecated        string `json:"engine,omitempty"`
	TillerVersionDeprecated string `json:"tillerVersion,omitempty"`
	URLDeprecated           string `json:"url,omitempty"`
}

// ParseIndex decodes index.yaml (YAML, strictly, or JSON) as Helm's loadIndex does: entries that
// are empty or whose metadata does not validate are dropped, each with a warning in the returned
// list; each chart's versions are sorted newest first (versions that are not semver last); an
// index without apiVersion is refused with ErrNoAPIVersion.
func ParseIndex(data []byte) (*IndexFile, []string, error) {
	if len(data) == 0 {
		return nil, nil, ErrEmptyIndex
	}
	i := &IndexFile{}
	var err error
	if json.Valid(data) {
		err = json.Unmarshal(data, i)
	} else {
		err = yaml.UnmarshalStrict(data, i)
	}
	if err != nil {
		return nil, nil, err
	}

	var warnings []string
	names := make([]string, 0, len(i.Entries))
	for name := range i.Entries {
		names = append(names, name)
	}
	sort.Strings(names) // warnings in a stable order
	for _, name := range names {
		cvs := i.Entries[name]
		// Backwards, removing in place, as loadIndex does (slices.Backward over the original
		// slice header: removal only moves entries already visited).
		for idx, v := range slices.Backward(cvs) {
			if v == nil {
				warnings = append(warnings, fmt.Sprintf("skipping an empty entry for chart %q", name))
				cvs = append(cvs[:idx], cvs[idx+1:]...)
				continue
			}
			if v.Metadata == nil {
				v.Metadata = &chart.Metadata{}
			}
			if v.APIVersion == "" {
				v.APIVersion = chart.APIVersionV1
			}
			if err := v.Validate(); ignoreSkippableValidationError(err) != nil {
				warnings = append(warnings, fmt.Sprintf("skipping an invalid entry for chart %q version %q: %v", name, v.Version, err))
				cvs = append(cvs[:idx], cvs[idx+1:]...)
			}
		}
		i.Entries[name] = cvs
	}
	i.sortEntries()
	if i.APIVersion == "" {
		return nil, warnings, ErrNoAPIVersion
	}
	return i, warnings, nil
}

// sortEntries sorts each chart's versions newest first, as pkg/repo/v1 SortEntries does
// (sort.Sort(sort.Reverse(ChartVersions)), the same unstable sort and the same Less).
func (i *IndexFile) sortEntries() {
	for _, versions := range i.Entries {
		sort.Sort(sort.Reverse(chartVersions(versions)))
	}
}

type chartVersions []*ChartVersion

func (c chartVersions) Len() int      { return len(c) }
func (c chartVersions) Swap(i, j int) { c[i], c[j] = c[j], c[i] }
func (c chartVersions) Less(a, b int) bool {
	// A version that does not parse sorts first here, so last once reversed.
	i, err := semver.NewVersion(c[a].Version)
	if err != nil {
		return true
	}
	j, err := semver.NewVersion(c[b].Version)
	if err != nil {
		return false
	}
	return i.LessThan(j)
}

// ignoreSkippableValidationError is pkg/repo/v1/index.go:ignoreSkippableChartValidationError:
// duplicate dependency names are tolerated (JFrog strips aliases, helm/helm#12748).
func ignoreSkippableValidationError(err error) error {
	var verr chart.ValidationError
	if !errors.As(err, &verr) {
		return err
	}
	if strings.HasPrefix(verr.Error(), "validation: more than one dependency with name or alias") {
		return nil
	}
	return err
}

// ResolveReferenceURL resolves ref against base as Helm does for chart URLs in index.yaml
// (pkg/repo/v1/chartrepo.go:ResolveReferenceURL): an absolute ref is returned unchanged; otherwise
// base gets a trailing slash, ref is resolved against it, and base's query is kept.
func ResolveReferenceURL(base, ref string) (string, error) {
	parsedRef, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("failed to parse %s as URL: %w", ref, err)
	}
	if parsedRef.IsAbs() {
		return ref, nil
	}
	parsedBase, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("failed to parse %s as URL: %w", base, err)
	}
	parsedBase.RawPath = strings.TrimSuffix(parsedBase.RawPath, "/") + "/"
	parsedBase.Path = strings.TrimSuffix(parsedBase.Path, "/") + "/"
	resolved := parsedBase.ResolveReference(parsedRef)
	resolved.RawQuery = parsedBase.RawQuery
	return resolved.String(), nil
}
