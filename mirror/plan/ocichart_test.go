package plan_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"

	"airlock.dev/airlock/charts"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/registry"
)

// TestPlanSetOCIChart: an OCI chart's tag is resolved once, for rendering and saving both (a tag that
// moved in between would otherwise render one chart and save another), and the chart is saved under
// its tag; with findImages: false it is still carried, its content layer not read.
func TestPlanSetOCIChart(t *testing.T) {
	ctx := context.Background()
	var tagGets, layerGets atomic.Int32
	var layerPath string
	next := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/charts/app/manifests/1.4.2":
			tagGets.Add(1)
		case layerPath != "" && r.URL.Path == layerPath:
			layerGets.Add(1)
		}
		next.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	regs, err := registry.New(registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	art := pushChart(ctx, t, regs, host+"/charts/app", "1.4.2")
	layerPath = "/v2/charts/app/blobs/" + art.Layers[0].Digest.String()

	for _, findImages := range []bool{true, false} {
		tagGets.Store(0)
		layerGets.Store(0)
		yml := fmt.Sprintf("apiVersion: airlock.dev/v1alpha1\nkind: ImageSet\nblocked: ['^src\\.example/']\ncharts:\n  - ref: oci://%s/charts/app:1.4.2\n    values: {image: {tag: '1.0'}}\n    findImages: %v\n", host, findImages)
		set, err := config.Parse(filepath.Join(t.TempDir(), "imageset.yaml"), []byte(yml))
		if err != nil {
			t.Fatal(err)
		}
		sp, err := plan.PlanSet(ctx, set, regs, plan.PlanOptions{Retry: mirrortest.Retry})
		if err != nil {
			t.Fatalf("findImages %v: %v", findImages, err)
		}
		want := host + "/charts/app:1.4.2"
		if len(sp.Plans) != 1 || sp.Plans[0].Source != want || sp.Plans[0].Root.Desc.Digest != art.Desc.Digest {
			t.Fatalf("findImages %v: plans %+v; want the chart %s as %s", findImages, sp.Plans, art.Desc.Digest, want)
		}
		wantLayer, wantBlocked := int32(1), 6
		if !findImages {
			wantLayer, wantBlocked = 0, 0
		}
		if n := tagGets.Load(); n != 1 {
			t.Errorf("findImages %v: the chart's tag asked %d times, want once", findImages, n)
		}
		if n := layerGets.Load(); n != wantLayer {
			t.Errorf("findImages %v: the chart's content layer read %d times, want %d", findImages, n, wantLayer)
		}
		if len(sp.Blocked) != wantBlocked {
			t.Errorf("findImages %v: blocked %+v, want the %d images the chart runs", findImages, sp.Blocked, wantBlocked)
		}
	}
}

// pushChart pushes charts/testdata/charts/app as helm push would, tagged tag, into repository name.
func pushChart(ctx context.Context, t *testing.T, regs *registry.Registries, name, tag string) *charts.Artifact {
	t.Helper()
	ch, err := loader.LoadDir("../../charts/testdata/charts/app")
	if err != nil {
		t.Fatal(err)
	}
	file, err := chartutil.Save(ch, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tgz, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	art, err := charts.NewArtifact(tgz, nil, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := regs.Repository(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range append([]ocispec.Descriptor{art.Config}, art.Layers...) {
		if err := repo.Push(ctx, d, bytes.NewReader(art.Blobs[d.Digest])); err != nil {
			t.Fatal(err)
		}
	}
	if err := repo.PushReference(ctx, art.Desc, bytes.NewReader(art.Manifest), tag); err != nil {
		t.Fatal(err)
	}
	return art
}
