package charts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/opencontainers/go-digest"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/provenance"

	"airlock.dev/airlock/vocab"
)

// This file reads HTTP chart repositories (docs/helm-charts.md section 2). It does not use Helm's
// getter or ChartDownloader: Helm never checks a downloaded .tgz against index.yaml's digest
// (pkg/downloader/chart_downloader.go:DownloadTo), and its repository code writes into
// $HELM_CACHE_HOME. Here every byte stays in memory and the digest is checked.

// Size caps for what a chart repository serves (a chart .tgz: vocab.MaxChartSize).
const (
	MaxIndexSize = 64 << 20 // index.yaml
	MaxProvSize  = 1 << 20  // a .prov file (a few KiB in practice)
)

var (
	// ErrDigestMismatch is a chart whose bytes do not hash to the digest index.yaml gives.
	ErrDigestMismatch = errors.New("chart digest mismatch")
	// ErrNoDigest is an index.yaml entry without a (sha256) digest: the chart cannot be checked.
	ErrNoDigest = errors.New("index.yaml gives no digest")
	// ErrProvenance is a .prov file that does not vouch for the chart fetched: unreadable, or
	// without the chart's sum, or with another sum.
	ErrProvenance = errors.New("provenance does not match the chart")
)

// Doer sends HTTP requests; *http.Client is one.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// checkError is an error with its own text that still matches a sentinel with errors.Is.
type checkError struct {
	msg  string
	kind error
}

func (e *checkError) Error() string { return e.msg }
func (e *checkError) Unwrap() error { return e.kind }

// FetchIndex GETs repoURL's index.yaml and parses it with ParseIndex. The warnings name the
// entries dropped as invalid.
func FetchIndex(ctx context.Context, client Doer, repoURL string) (*IndexFile, []string, error) {
	u, err := ResolveReferenceURL(repoURL, "index.yaml")
	if err != nil {
		return nil, nil, fmt.Errorf("chart repository %s: %w", redact(repoURL), err)
	}
	body, status, err := get(ctx, client, u, MaxIndexSize)
	if err != nil {
		return nil, nil, fmt.Errorf("chart repository %s: %w", redact(repoURL), err)
	}
	if status != http.StatusOK {
		return nil, nil, fmt.Errorf("chart repository %s: GET %s answered %s; %s", redact(repoURL), redact(u), statusText(status), indexHint(status))
	}
	idx, warnings, err := ParseIndex(body)
	if err != nil {
		return nil, warnings, fmt.Errorf("chart repository %s: %s is not a chart repository index: %w", redact(repoURL), redact(u), err)
	}
	return idx, warnings, nil
}

func indexHint(status int) string {
	switch status {
	case http.StatusNotFound, http.StatusGone:
		return "check the repository URL: it must be the directory that holds index.yaml, the URL `helm repo add` takes"
	case http.StatusUnauthorized, http.StatusForbidden:
		return "check the credentials for the repository"
	default:
		return "check the repository URL and that the server is up"
	}
}

// Fetch fetches the chart cv describes from the repository at repoURL (cv.URLs[0], resolved
// against repoURL as Helm does) and checks it: its sha256 must equal cv.Digest (ErrDigestMismatch,
// ErrNoDigest), a .prov next to it, if any, must give that sum for NAME-VERSION.tgz
// (ErrProvenance; the signature is not checked here), and its Chart.yaml must name cv's name and
// version and be an apiVersion v1 or v2 chart.
func Fetch(ctx context.Context, client Doer, repoURL string, cv *ChartVersion) (*Fetched, error) {
	if cv == nil || cv.Metadata == nil {
		return nil, errors.New("no index.yaml entry given")
	}
	what := cv.Name + " " + cv.Version
	if len(cv.URLs) == 0 || cv.URLs[0] == "" {
		return nil, fmt.Errorf("%s: index.yaml gives no URL for the chart", what)
	}
	u, err := ResolveReferenceURL(repoURL, cv.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	what += " from " + redact(u)
	want, err := indexDigest(cv.Digest)
	if err != nil {
		return nil, &checkError{msg: what + ": " + err.Error(), kind: ErrNoDigest}
	}

	h := sha256.New()
	data, status, err := getHashed(ctx, client, u, vocab.MaxChartSize, h)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("%s: the repository answered %s; check that it still serves the charts its index.yaml names", what, statusText(status))
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != want {
		return nil, &checkError{
			msg:  fmt.Sprintf("%s: the chart's sha256 is %s but index.yaml says %s; the repository or something between is serving other bytes", what, got, cv.Digest),
			kind: ErrDigestMismatch,
		}
	}

	prov, err := fetchProv(ctx, client, u, what)
	if err != nil {
		return nil, err
	}
	if prov != nil {
		if err := checkProv(prov, cv.Name+"-"+cv.Version+".tgz", chartFileName(u), got); err != nil {
			return nil, &checkError{msg: fmt.Sprintf("%s: %s.prov: %v", what, redact(u), err), kind: ErrProvenance}
		}
	}

	ch, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: not a Helm chart: %w", what, err)
	}
	if err := checkLoaded(ch.Metadata, cv.Name, cv.Version); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}

	return &Fetched{
		Name:    cv.Name,
		Version: cv.Version,
		URL:     redact(u), // a password in the URL is not recorded
		Chart:   data,
		Digest:  digest.NewDigestFromEncoded(digest.SHA256, got),
		Prov:    prov,
		Created: cv.Created.UTC(),
	}, nil
}

// indexDigest is index.yaml's digest as lowercase hex: bare hex as `helm repo index` writes it
// (provenance.Digest) or "sha256:hex".
func indexDigest(d string) (string, error) {
	d = strings.TrimSpace(d)
	if d == "" {
		return "", errors.New("index.yaml gives no digest; the chart cannot be checked")
	}
	hexPart := d
	if alg, after, ok := strings.Cut(d, ":"); ok {
		if alg != "sha256" {
			return "", fmt.Errorf("index.yaml gives no sha256 digest (it gives %q); the chart cannot be checked", d)
		}
		hexPart = after
	}
	hexPart = strings.ToLower(hexPart)
	if len(hexPart) != sha256.Size*2 {
		return "", fmt.Errorf("index.yaml gives no sha256 digest (it gives %q); the chart cannot be checked", d)
	}
	if _, err := hex.DecodeString(hexPart); err != nil {
		return "", fmt.Errorf("index.yaml gives no sha256 digest (it gives %q); the chart cannot be checked", d)
	}
	return hexPart, nil
}

// fetchProv GETs chartURL+".prov", the name Helm's ChartDownloader uses. 404 (or 410) is no
// provenance: nil, nil.
func fetchProv(ctx context.Context, client Doer, chartURL, what string) ([]byte, error) {
	pu := provURL(chartURL)
	body, status, err := get(ctx, client, pu, MaxProvSize)
	if err != nil {
		return nil, fmt.Errorf("%s: provenance: %w", what, err)
	}
	switch status {
	case http.StatusOK:
		return body, nil
	case http.StatusNotFound, http.StatusGone:
		return nil, nil
	default:
		return nil, fmt.Errorf("%s: GET %s answered %s; a repository without provenance for the chart answers 404 Not Found", what, redact(pu), statusText(status))
	}
}

// provURL is chartURL with ".prov" appended to its path (before any query).
func provURL(chartURL string) string {
	u, err := url.Parse(chartURL)
	if err != nil {
		return chartURL + ".prov"
	}
	u.Path += ".prov"
	if u.RawPath != "" {
		u.RawPath += ".prov"
	}
	return u.String()
}

// chartFileName is the last element of chartURL's path, the name `helm pull --verify` looks up in
// the .prov file.
func chartFileName(chartURL string) string {
	u, err := url.Parse(chartURL)
	if err != nil {
		return ""
	}
	return path.Base(u.Path)
}

// checkProv checks, without a key, that the clearsigned .prov gives sha256:sum for the chart: as
// provenance.Signatory.Verify reads it (clearsign.Decode, then ParseMessageBlock on the plaintext),
// under name (NAME-VERSION.tgz, what `helm package --sign` writes) or, failing that, fileName (the
// URL's last element, what `helm pull --verify` looks up).
func checkProv(prov []byte, name, fileName, sum string) error {
	block, _ := clearsign.Decode(prov)
	if block == nil {
		return errors.New("no PGP signed message in it")
	}
	sums := &provenance.SumCollection{}
	if err := provenance.ParseMessageBlock(block.Plaintext, nil, sums); err != nil {
		return fmt.Errorf("cannot read its sums: %w", err)
	}
	got, ok := sums.Files[name]
	if !ok && fileName != "" {
		got, ok = sums.Files[fileName]
		if ok {
			name = fileName
		}
	}
	if !ok {
		return fmt.Errorf("it gives no sum for %s", name)
	}
	if got != "sha256:"+sum {
		return fmt.Errorf("its sum for %s is %s but the chart's sha256 is %s", name, got, sum)
	}
	return nil
}

// checkLoaded refuses a chart whose Chart.yaml is not the index entry's, or is a v3 chart.
func checkLoaded(md *chart.Metadata, name, version string) error {
	if md == nil {
		return errors.New("not a Helm chart: no Chart.yaml")
	}
	switch md.APIVersion {
	case chart.APIVersionV1, chart.APIVersionV2:
	default:
		return fmt.Errorf("chart apiVersion %s is not supported", md.APIVersion)
	}
	if md.Name != name || md.Version != version {
		return fmt.Errorf("its Chart.yaml says %s %s, not what index.yaml says; the repository's index does not describe the chart it serves", md.Name, md.Version)
	}
	return nil
}

// get GETs u and reads at most limit bytes of the body; a longer body is an error.
func get(ctx context.Context, client Doer, u string, limit int64) ([]byte, int, error) {
	return getHashed(ctx, client, u, limit, nil)
}

// getHashed is get that also writes the body into h as it streams, when h is not nil. The body of
// a response other than 200 is discarded.
func getHashed(ctx context.Context, client Doer, u string, limit int64, h hash.Hash) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", redact(u), err)
	}
	resp, err := client.Do(req)
	if err != nil {
		// net/http's url.Error repeats the URL, and airlock's client names it already.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if strings.HasPrefix(err.Error(), "GET "+u) {
			return nil, 0, err
		}
		return nil, 0, fmt.Errorf("GET %s: %w", redact(u), err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, resp.StatusCode, nil
	}
	var r io.Reader = io.LimitReader(resp.Body, limit+1)
	if h != nil {
		r = io.TeeReader(r, h)
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 && resp.ContentLength <= limit {
		buf.Grow(int(resp.ContentLength))
	}
	n, err := io.Copy(&buf, r)
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("GET %s: reading the body: %w", redact(u), err)
	}
	if n > limit {
		return nil, resp.StatusCode, fmt.Errorf("GET %s: the body is larger than %d MiB", redact(u), limit>>20)
	}
	return buf.Bytes(), resp.StatusCode, nil
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return fmt.Sprintf("HTTP %d", code)
}

// redact hides a password in u, as url.URL.Redacted does.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Redacted()
}
