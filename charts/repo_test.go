package charts

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"helm.sh/helm/v4/pkg/provenance"
)

// chartFile is one file of a test chart, relative to the chart's directory.
type chartFile struct{ name, data string }

// testTgz is a chart .tgz as `helm package` lays it out: every file under DIR/, with a fixed
// modification time.
func testTgz(t *testing.T, dir string, files ...chartFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{
			Name: dir + "/" + f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg,
			ModTime: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func chartYAML(apiVersion, name, version string) chartFile {
	return chartFile{"Chart.yaml", fmt.Sprintf("apiVersion: %s\nname: %s\nversion: %s\ndescription: A test chart.\n", apiVersion, name, version)}
}

func simpleChart(t *testing.T, name, version string) []byte {
	return testTgz(t, name, chartYAML("v2", name, version),
		chartFile{"values.yaml", "image: registry.example.com/app:1\n"},
		chartFile{"templates/pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n  - name: c\n    image: {{ .Values.image }}\n"})
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// signProv makes a .prov for data named filename with Helm's own signer and a fresh key.
func signProv(t *testing.T, data []byte, filename string) []byte {
	t.Helper()
	e, err := openpgp.NewEntity("airlock test", "", "test@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	s := &provenance.Signatory{Entity: e}
	prov, err := s.ClearSign(data, filename, []byte("name: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(prov)
}

// fakeRepo is a chart repository: files by path, optional status codes by path, and a log of
// the paths requested.
type fakeRepo struct {
	mu     sync.Mutex
	files  map[string][]byte
	status map[string]int
	log    []string
}

func newFakeRepo(t *testing.T) (*fakeRepo, *httptest.Server) {
	r := &fakeRepo{files: map[string][]byte{}, status: map[string]int{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *fakeRepo) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, req.URL.Path)
	if code := r.status[req.URL.Path]; code != 0 {
		http.Error(w, "no", code)
		return
	}
	b, ok := r.files[req.URL.Path]
	if !ok {
		http.NotFound(w, req)
		return
	}
	_, _ = w.Write(b)
}

func (r *fakeRepo) requested() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

// indexYAML is an index.yaml with one entry per chart: NAME VERSION URL DIGEST.
func indexYAML(entries ...[4]string) []byte {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nentries:\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "  %s:\n  - apiVersion: v2\n    name: %s\n    version: %s\n    urls:\n    - %s\n    created: \"2024-05-01T12:30:00+02:00\"\n", e[0], e[0], e[1], e[2])
		if e[3] != "" {
			fmt.Fprintf(&b, "    digest: %s\n", e[3])
		}
	}
	return []byte(b.String())
}

// fetchOne serves index at /stable/index.yaml, fetches the index and then the first version of
// chart name from it.
func fetchOne(t *testing.T, r *fakeRepo, srv *httptest.Server, index []byte, name string) (*Fetched, error) {
	t.Helper()
	r.files["/stable/index.yaml"] = index
	idx, warnings, err := FetchIndex(context.Background(), srv.Client(), srv.URL+"/stable")
	if err != nil || len(warnings) != 0 {
		t.Fatalf("FetchIndex: %v %q", err, warnings)
	}
	return Fetch(context.Background(), srv.Client(), srv.URL+"/stable", idx.Entries[name][0])
}

func TestFetchRelativeAndAbsoluteURLs(t *testing.T) {
	r, srv := newFakeRepo(t)
	app := simpleChart(t, "app", "1.4.2")
	db := simpleChart(t, "db", "12.1.0+up1")
	r.files["/stable/charts/app-1.4.2.tgz"] = app
	r.files["/elsewhere/db-12.1.0+up1.tgz"] = db
	r.files["/stable/index.yaml"] = indexYAML(
		[4]string{"app", "1.4.2", "charts/app-1.4.2.tgz", sha256Hex(app)},
		[4]string{"db", "12.1.0+up1", srv.URL + "/elsewhere/db-12.1.0+up1.tgz", "sha256:" + strings.ToUpper(sha256Hex(db))},
	)
	idx, _, err := FetchIndex(context.Background(), srv.Client(), srv.URL+"/stable")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path string
		tgz        []byte
	}{{"app", "/stable/charts/app-1.4.2.tgz", app}, {"db", "/elsewhere/db-12.1.0+up1.tgz", db}} {
		f, err := Fetch(context.Background(), srv.Client(), srv.URL+"/stable/", idx.Entries[c.name][0])
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if f.URL != srv.URL+c.path || !bytes.Equal(f.Chart, c.tgz) || f.Digest.Encoded() != sha256Hex(c.tgz) || f.Prov != nil {
			t.Errorf("%s: fetched %s digest %s prov %d bytes", c.name, f.URL, f.Digest, len(f.Prov))
		}
		if f.Name != c.name || f.Version != idx.Entries[c.name][0].Version {
			t.Errorf("%s: name %s version %s", c.name, f.Name, f.Version)
		}
		if !f.Created.Equal(time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC)) || f.Created.Location() != time.UTC {
			t.Errorf("%s: created %v, want 2024-05-01T10:30:00Z in UTC", c.name, f.Created)
		}
	}
	want := []string{"/stable/index.yaml", "/stable/charts/app-1.4.2.tgz", "/stable/charts/app-1.4.2.tgz.prov",
		"/elsewhere/db-12.1.0+up1.tgz", "/elsewhere/db-12.1.0+up1.tgz.prov"}
	if got := r.requested(); !slices.Equal(got, want) {
		t.Errorf("requests %q, want %q", got, want)
	}
}

func TestFetchDigestMismatch(t *testing.T) {
	r, srv := newFakeRepo(t)
	app := simpleChart(t, "app", "1.4.2")
	other := sha256Hex([]byte("the chart index.yaml was made from"))
	r.files["/stable/app-1.4.2.tgz"] = app
	_, err := fetchOne(t, r, srv, indexYAML([4]string{"app", "1.4.2", "app-1.4.2.tgz", other}), "app")
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("err %v, want ErrDigestMismatch", err)
	}
	want := fmt.Sprintf("app 1.4.2 from %s/stable/app-1.4.2.tgz: the chart's sha256 is %s but index.yaml says %s; the repository or something between is serving other bytes",
		srv.URL, sha256Hex(app), other)
	if err.Error() != want {
		t.Errorf("err\n%s\nwant\n%s", err, want)
	}
}

func TestFetchNoDigest(t *testing.T) {
	for _, d := range []string{"", "md5:0123456789abcdef0123456789abcdef", "sha256:abc"} {
		r, srv := newFakeRepo(t)
		r.files["/stable/app-1.4.2.tgz"] = simpleChart(t, "app", "1.4.2")
		_, err := fetchOne(t, r, srv, indexYAML([4]string{"app", "1.4.2", "app-1.4.2.tgz", d}), "app")
		if !errors.Is(err, ErrNoDigest) || errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("digest %q: err %v, want ErrNoDigest", d, err)
		}
		if !strings.Contains(err.Error(), "app 1.4.2 from "+srv.URL+"/stable/app-1.4.2.tgz: index.yaml gives no") {
			t.Errorf("digest %q: err %v", d, err)
		}
		if got := r.requested(); !slices.Equal(got, []string{"/stable/index.yaml"}) {
			t.Errorf("digest %q: requested %q; a chart that cannot be checked is not fetched", d, got)
		}
	}
}

func TestFetchProvenance(t *testing.T) {
	app := simpleChart(t, "app", "1.4.2")
	index := indexYAML([4]string{"app", "1.4.2", "app-1.4.2.tgz", sha256Hex(app)})
	cases := []struct {
		name    string
		prov    []byte
		status  int
		wantErr string // "" for success
		sentry  error
	}{
		{name: "present", prov: signProv(t, app, "app-1.4.2.tgz")},
		{name: "absent", status: http.StatusNotFound},
		{name: "gone", status: http.StatusGone},
		{name: "wrong sum", prov: signProv(t, simpleChart(t, "app", "9.9.9"), "app-1.4.2.tgz"),
			wantErr: "app-1.4.2.tgz.prov: its sum for app-1.4.2.tgz is sha256:", sentry: ErrProvenance},
		{name: "other file", prov: signProv(t, app, "something-else.tgz"),
			wantErr: "app-1.4.2.tgz.prov: it gives no sum for app-1.4.2.tgz", sentry: ErrProvenance},
		{name: "not signed", prov: []byte("files:\n  app-1.4.2.tgz: sha256:" + sha256Hex(app) + "\n"),
			wantErr: "no PGP signed message", sentry: ErrProvenance},
		{name: "server error", status: http.StatusInternalServerError,
			wantErr: "app-1.4.2.tgz.prov answered 500 Internal Server Error; a repository without provenance for the chart answers 404"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, srv := newFakeRepo(t)
			r.files["/stable/app-1.4.2.tgz"] = app
			if c.prov != nil {
				r.files["/stable/app-1.4.2.tgz.prov"] = c.prov
			}
			if c.status != 0 {
				r.status["/stable/app-1.4.2.tgz.prov"] = c.status
			}
			f, err := fetchOne(t, r, srv, index, "app")
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				if c.sentry != nil && !errors.Is(err, c.sentry) {
					t.Errorf("err %v is not %v", err, c.sentry)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(f.Prov, c.prov) {
				t.Errorf("prov %d bytes, want %d", len(f.Prov), len(c.prov))
			}
		})
	}
}

// TestFetchProvenanceURLName: a .prov that names the chart by its URL's last element, as
// `helm pull --verify` looks it up, is accepted too.
func TestFetchProvenanceURLName(t *testing.T) {
	app := simpleChart(t, "app", "1.4.2")
	sum := sha256Hex(app)
	if err := checkProv(signProv(t, app, "download.tgz"), "app-1.4.2.tgz", "download.tgz", sum); err != nil {
		t.Error(err)
	}
	if err := checkProv(signProv(t, app, "download.tgz"), "app-1.4.2.tgz", "other.tgz", sum); err == nil || !strings.Contains(err.Error(), "no sum for app-1.4.2.tgz") {
		t.Errorf("err %v", err)
	}
	if got := chartFileName("https://charts.example.com/dl/download.tgz?token=x"); got != "download.tgz" {
		t.Errorf("chartFileName %q", got)
	}
	if got := provURL("https://charts.example.com/dl/app-1.4.2.tgz?token=x"); got != "https://charts.example.com/dl/app-1.4.2.tgz.prov?token=x" {
		t.Errorf("provURL %q", got)
	}
}

func TestFetchChartYAMLMustMatchIndex(t *testing.T) {
	cases := []struct {
		name string
		tgz  []byte
		want string
	}{
		{"other name", testTgz(t, "app", chartYAML("v2", "evil", "1.4.2")), "its Chart.yaml says evil 1.4.2, not what index.yaml says"},
		{"other version", testTgz(t, "app", chartYAML("v2", "app", "1.4.3")), "its Chart.yaml says app 1.4.3, not what index.yaml says"},
		{"apiVersion v3", testTgz(t, "app", chartYAML("v3", "app", "1.4.2")), "chart apiVersion v3 is not supported"},
		{"not a chart", []byte("<html>hello</html>"), "not a Helm chart"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, srv := newFakeRepo(t)
			r.files["/stable/app-1.4.2.tgz"] = c.tgz
			_, err := fetchOne(t, r, srv, indexYAML([4]string{"app", "1.4.2", "app-1.4.2.tgz", sha256Hex(c.tgz)}), "app")
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "app 1.4.2 from "+srv.URL) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}
}

func TestFetchIndexErrors(t *testing.T) {
	r, srv := newFakeRepo(t)
	_, _, err := FetchIndex(context.Background(), srv.Client(), srv.URL+"/nothing/here")
	want := fmt.Sprintf("chart repository %s/nothing/here: GET %s/nothing/here/index.yaml answered 404 Not Found; check the repository URL: it must be the directory that holds index.yaml", srv.URL, srv.URL)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err\n%v\nwant\n%s", err, want)
	}

	r.status["/private/index.yaml"] = http.StatusUnauthorized
	_, _, err = FetchIndex(context.Background(), srv.Client(), srv.URL+"/private/")
	if err == nil || !strings.Contains(err.Error(), "answered 401 Unauthorized; check the credentials") {
		t.Errorf("err %v", err)
	}

	r.files["/html/index.yaml"] = []byte("<html><body>hello</body></html>\n")
	_, _, err = FetchIndex(context.Background(), srv.Client(), srv.URL+"/html")
	if err == nil || !strings.Contains(err.Error(), "/html/index.yaml is not a chart repository index") {
		t.Errorf("err %v", err)
	}

	r.files["/old/index.yaml"] = []byte("entries: {}\n")
	_, _, err = FetchIndex(context.Background(), srv.Client(), srv.URL+"/old")
	if !errors.Is(err, ErrNoAPIVersion) {
		t.Errorf("err %v, want ErrNoAPIVersion", err)
	}

	_, _, err = FetchIndex(context.Background(), srv.Client(), "http://user:secret@127.0.0.1:1/repo")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("err %v should not show the password", err)
	}
}

func TestFetchChartMissing(t *testing.T) {
	r, srv := newFakeRepo(t)
	_, err := fetchOne(t, r, srv, indexYAML([4]string{"app", "1.4.2", "app-1.4.2.tgz", sha256Hex(nil)}), "app")
	want := fmt.Sprintf("app 1.4.2 from %s/stable/app-1.4.2.tgz: the repository answered 404 Not Found", srv.URL)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err %v, want %s", err, want)
	}
}

// TestFetchBodyCap: a body one byte over the cap is refused, one at the cap is read.
func TestFetchBodyCap(t *testing.T) {
	r, srv := newFakeRepo(t)
	r.files["/big"] = bytes.Repeat([]byte("x"), 1<<20+1)
	if _, _, err := get(context.Background(), srv.Client(), srv.URL+"/big", 1<<20); err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Errorf("err %v", err)
	}
	b, status, err := get(context.Background(), srv.Client(), srv.URL+"/big", 1<<20+1)
	if err != nil || status != http.StatusOK || len(b) != 1<<20+1 {
		t.Errorf("%d bytes, %d, %v", len(b), status, err)
	}
}

// The .prov is next to the chart: its name is the chart URL's path and ".prov", before any query,
// and an escaped path stays escaped.
func TestProvURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://charts.example.com/stable/app-1.4.2.tgz":        "https://charts.example.com/stable/app-1.4.2.tgz.prov",
		"https://charts.example.com/dl/app-1.4.2.tgz?token=abc":  "https://charts.example.com/dl/app-1.4.2.tgz.prov?token=abc",
		"https://charts.example.com/team%2Fstable/app-1.4.2.tgz": "https://charts.example.com/team%2Fstable/app-1.4.2.tgz.prov",
	} {
		if got := provURL(in); got != want {
			t.Errorf("provURL(%s) = %s, want %s", in, got, want)
		}
	}
}
