package charts

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"helm.sh/helm/v4/pkg/registry"

	"airlock.dev/airlock/vocab"
)

// provsAround returns two .prov contents whose digests sort before and after the digest of tgz,
// so both layer orders helm push can produce are exercised. helm push does not read the .prov.
func provsAround(tgz []byte) (before, after []byte) {
	d := digest.FromBytes(tgz)
	for i := 0; before == nil || after == nil; i++ {
		p := []byte(fmt.Sprintf("-----BEGIN PGP SIGNED MESSAGE-----\n%d\n", i))
		if digest.FromBytes(p) < d {
			if before == nil {
				before = p
			}
		} else if after == nil {
			after = p
		}
	}
	return before, after
}

// TestArtifactMatchesHelmPush pushes charts with Helm's own registry client into an in-process
// registry and requires NewArtifact to give the very manifest bytes and digest, and the same
// config: with and without a .prov (before and after the chart layer), with Chart.yaml
// annotations overriding the standard ones, with a "+" in the version.
func TestArtifactMatchesHelmPush(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir) // no credentials from the machine
	client, err := registry.NewClient(registry.ClientOptPlainHTTP(), registry.ClientOptWriter(io.Discard),
		registry.ClientOptCredentialsFile(filepath.Join(dir, "helm-registry.json")))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	full := testTgz(t, "app", chartFile{"Chart.yaml", `apiVersion: v2
name: app
version: 1.4.2
appVersion: "3.1"
description: An app with everything in its Chart.yaml.
home: https://app.example.com
sources:
- https://github.com/example/app
- https://github.com/example/app-charts
keywords: [app, web]
maintainers:
- name: Jo
  email: jo@example.com
- name: Sam
- email: ops@example.com
icon: https://app.example.com/icon.png
kubeVersion: ">=1.25.0-0"
type: application
dependencies:
- name: db
  version: 12.1.0
  repository: https://charts.example.com/stable
  condition: db.enabled
  alias: database
annotations:
  org.opencontainers.image.description: Overridden by an annotation.
  org.opencontainers.image.title: not-the-name
  org.opencontainers.image.version: 0.0.0
  example.com/team: web
  helm.sh/images: |
    - name: app
      image: registry.example.com/app:3.1
`}, chartFile{"values.yaml", "image: x\n"}, chartFile{"templates/cm.yaml", "kind: ConfigMap\n"})
	createdOverride := testTgz(t, "plus", chartFile{"Chart.yaml", `apiVersion: v2
name: plus
version: 2.0.0+build.1
description: "   "
annotations:
  org.opencontainers.image.created: "2001-01-01T00:00:00Z"
`})
	minimal := testTgz(t, "old", chartFile{"Chart.yaml", "name: old\nversion: 0.1.0\n"})

	created := time.Date(2024, 5, 1, 14, 30, 0, 0, time.FixedZone("CEST", 2*3600))
	for _, c := range []struct{ name, version string }{{"app", "1.4.2"}, {"plus", "2.0.0+build.1"}, {"old", "0.1.0"}} {
		tgz := map[string][]byte{"app": full, "plus": createdOverride, "old": minimal}[c.name]
		before, after := provsAround(tgz)
		for _, p := range []struct {
			name string
			prov []byte
		}{{"no prov", nil}, {"prov first", before}, {"prov last", after}} {
			t.Run(c.name+" "+p.name, func(t *testing.T) {
				ref := fmt.Sprintf("%s/charts/%s:%s", host, c.name, c.version)
				opts := []registry.PushOption{registry.PushOptCreationTime(created.UTC().Format(time.RFC3339))}
				if p.prov != nil {
					opts = append(opts, registry.PushOptProvData(p.prov))
				}
				res, err := client.Push(tgz, ref, opts...)
				if err != nil {
					t.Fatal(err)
				}
				pushed, dgst := getManifest(t, srv.URL, "charts/"+c.name, ChartTag(c.version))

				a, err := NewArtifact(tgz, p.prov, created)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(a.Manifest, pushed) {
					t.Fatalf("manifest\n%s\nhelm push\n%s", a.Manifest, pushed)
				}
				if a.Desc.Digest.String() != dgst || a.Desc.Digest.String() != res.Manifest.Digest || a.Desc.Size != int64(len(pushed)) ||
					a.Desc.MediaType != ocispec.MediaTypeImageManifest {
					t.Errorf("descriptor %+v, helm push %s (registry %s)", a.Desc, res.Manifest.Digest, dgst)
				}
				if a.Config.Digest.String() != res.Config.Digest || a.Config.MediaType != vocab.HelmConfigMediaType {
					t.Errorf("config %+v, helm push %s", a.Config, res.Config.Digest)
				}
				wantLayers := 1
				if p.prov != nil {
					wantLayers = 2
				}
				if len(a.Layers) != wantLayers || len(a.Blobs) != wantLayers+1 {
					t.Errorf("%d layers, %d blobs", len(a.Layers), len(a.Blobs))
				}
				for _, d := range append([]ocispec.Descriptor{a.Config}, a.Layers...) {
					if b := a.Blobs[d.Digest]; digest.FromBytes(b) != d.Digest || int64(len(b)) != d.Size ||
						!bytes.Equal(getBlob(t, srv.URL, "charts/"+c.name, d.Digest), b) {
						t.Errorf("blob %s differs from what helm pushed", d.Digest)
					}
				}
				if !bytes.Equal(a.Blobs[digest.FromBytes(tgz)], tgz) {
					t.Error("the chart layer is not the .tgz unchanged")
				}
			})
		}
	}

	// What the comparison covered, spelled out.
	a, err := NewArtifact(full, nil, created)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"org.opencontainers.image.created":"2024-05-01T12:30:00Z"`,
		`"org.opencontainers.image.description":"Overridden by an annotation."`,
		`"org.opencontainers.image.title":"app"`,
		`"org.opencontainers.image.version":"1.4.2"`,
		`"org.opencontainers.image.authors":"Jo (jo@example.com), Sam,  (ops@example.com)"`,
		`"org.opencontainers.image.source":"https://github.com/example/app"`,
		`"example.com/team":"web"`,
	} {
		if !strings.Contains(string(a.Manifest), want) {
			t.Errorf("manifest lacks %s:\n%s", want, a.Manifest)
		}
	}
	if strings.Contains(string(a.Manifest), `"mediaType":"application/vnd.oci.image.manifest`) || strings.Contains(string(a.Manifest), "artifactType") {
		t.Errorf("helm push writes neither mediaType nor artifactType in the manifest:\n%s", a.Manifest)
	}
	a, err = NewArtifact(createdOverride, nil, created)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(a.Manifest), `"org.opencontainers.image.created":"2001-01-01T00:00:00Z"`) ||
		strings.Contains(string(a.Manifest), "image.description") {
		t.Errorf("manifest:\n%s", a.Manifest)
	}
}

// TestArtifactCreatedDefault: without a time, created is the Chart.yaml's mtime in the .tgz, so
// the same .tgz always gives the same artifact.
func TestArtifactCreatedDefault(t *testing.T) {
	tgz := simpleChart(t, "app", "1.4.2") // files dated 2024-05-01T12:00:00Z
	a, err := NewArtifact(tgz, nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewArtifact(tgz, nil, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Manifest, b.Manifest) || a.Desc.Digest != b.Desc.Digest {
		t.Errorf("zero created:\n%s\nChart.yaml mtime:\n%s", a.Manifest, b.Manifest)
	}
	if _, err := NewArtifact([]byte("not a chart"), nil, time.Time{}); err == nil || !strings.Contains(err.Error(), "not a Helm chart") {
		t.Errorf("err %v", err)
	}
}

func TestArtifactChartTag(t *testing.T) {
	for in, want := range map[string]string{"1.4.2": "1.4.2", "2.0.0+build.1": "2.0.0_build.1", "1.0.0-rc.1+a+b": "1.0.0-rc.1_a_b"} {
		if got := ChartTag(in); got != want {
			t.Errorf("ChartTag(%q) = %q, want %q", in, got, want)
		}
	}
}

func getManifest(t *testing.T, base, repo, tag string) ([]byte, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", ocispec.MediaTypeImageManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET manifest %s:%s: %s %v", repo, tag, resp.Status, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != ocispec.MediaTypeImageManifest {
		t.Errorf("pushed as %s", ct)
	}
	return b, resp.Header.Get("Docker-Content-Digest")
}

func getBlob(t *testing.T, base, repo string, d digest.Digest) []byte {
	t.Helper()
	resp, err := http.Get(base + "/v2/" + repo + "/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET blob %s: %s %v", d, resp.Status, err)
	}
	return b
}
