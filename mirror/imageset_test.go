package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/config"
	"airlock.dev/airlock/registry"
)

// pagingRegistry is go-containerregistry's registry, whose tag list honours n and last but sends no
// Link header, with the tag list of one repository served by hand: at most max tags a page (fewer
// than n when n is larger, as a registry may), and a Link header to the next page, as distribution
// writes it. Each tag list request is recorded.
type pagingRegistry struct {
	next     http.Handler
	repo     string
	tags     []string
	max      int
	mu       sync.Mutex
	requests []string
}

func (p *pagingRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v2/"+p.repo+"/tags/list" {
		p.next.ServeHTTP(w, r)
		return
	}
	p.mu.Lock()
	p.requests = append(p.requests, r.URL.RawQuery)
	p.mu.Unlock()
	n := p.max
	if v, err := strconv.Atoi(r.URL.Query().Get("n")); err == nil && v < n {
		n = v
	}
	start := 0
	if last := r.URL.Query().Get("last"); last != "" {
		start = slices.Index(p.tags, last) + 1
	}
	end := min(start+n, len(p.tags))
	if end < len(p.tags) {
		w.Header().Set("Link", fmt.Sprintf(`</v2/%s/tags/list?last=%s&n=%d>; rel="next"`, p.repo, p.tags[end-1], n))
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"name": p.repo, "tags": p.tags[start:end]})
}

// pushTags pushes one small image to host/repo under each tag.
func pushTags(ctx context.Context, t *testing.T, regs *registry.Registries, name string, tags ...string) {
	t.Helper()
	repo, err := regs.Repository(name)
	if err != nil {
		t.Fatal(err)
	}
	cb := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}`)
	cd := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cb), Size: int64(len(cb))}
	if err := repo.Push(ctx, cd, bytes.NewReader(cb)); err != nil {
		t.Fatal(err)
	}
	for _, tag := range tags {
		// A manifest of its own for each tag, so that each tag is a distinct image.
		mb, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: []ocispec.Descriptor{}, Annotations: map[string]string{"tag": tag}})
		md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mb), Size: int64(len(mb))}
		if err := repo.PushReference(ctx, md, bytes.NewReader(mb), tag); err != nil {
			t.Fatal(err)
		}
	}
}

func startPagingRegistry(t *testing.T, max int) (string, *registry.Registries, *pagingRegistry) {
	t.Helper()
	p := &pagingRegistry{next: ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))), repo: "team/app", max: max}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	regs, err := registry.New(registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(srv.URL, "http://"), regs, p
}

func TestListTagsFollowsEveryPage(t *testing.T) {
	ctx := context.Background()
	host, regs, p := startPagingRegistry(t, 3) // the registry sends at most 3 a page, whatever n asks
	for i := range 10 {
		p.tags = append(p.tags, fmt.Sprintf("1.0.%d", i))
	}
	defer func(n int) { TagPageSize = n }(TagPageSize)
	TagPageSize = 4
	got, err := ListTags(ctx, regs, host+"/team/app", registry.Retry{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, p.tags) {
		t.Errorf("listed %v, want every tag %v", got, p.tags)
	}
	if len(p.requests) != 4 || !strings.Contains(p.requests[0], "n=4") || !strings.Contains(p.requests[3], "last=1.0.8") {
		t.Errorf("tag list requests %q: want 4 pages, the first asking n=4, the last after 1.0.8", p.requests)
	}
}

func TestPlanSetCollectsEveryProblem(t *testing.T) {
	ctx := context.Background()
	host, regs, p := startPagingRegistry(t, 100)
	p.tags = []string{"1.0.0", "1.4.2", "1.5.0-rc.1", "2.0.0"}
	pushTags(ctx, t, regs, host+"/team/app", p.tags...)
	pushTags(ctx, t, regs, host+"/team/api", "1")
	file := fmt.Sprintf(`apiVersion: airlock.dev/v1alpha1
kind: ImageSet
images:
  - ref: %[1]s/team/api:1
  - ref: %[1]s/team/api:missing
  - ref: %[1]s/team/app:1.0.0
repositories:
  - name: %[1]s/team/app
    tags:
      semver: '>=1.0.0 <2.0.0'
  - name: %[1]s/team/gone
blocked:
  - ':1\.0\.0$'
`, host)
	set, err := config.Parse("imageset.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	_, err = PlanSet(ctx, set, regs, PlanOptions{Concurrency: 2})
	re, ok := IsResolution(err)
	if !ok || len(re.Problems) != 2 {
		t.Fatalf("without KeepGoing: %v; want a ResolutionError naming the missing tag and the missing repository", err)
	}
	for _, want := range []string{`tag "missing" not found`, host + "/team/gone (ImageSet line 11): its tags could not be listed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q:\n%v", want, err)
		}
	}

	sp, err := PlanSet(ctx, set, regs, PlanOptions{Concurrency: 2, KeepGoing: true})
	if err != nil {
		t.Fatal(err)
	}
	var planned []string
	for _, pl := range sp.Plans {
		planned = append(planned, pl.Source)
	}
	want := []string{host + "/team/api:1", host + "/team/app:1.4.2"}
	if !slices.Equal(planned, want) {
		t.Errorf("planned %v, want %v (1.0.0 blocked, 1.5.0-rc.1 and 2.0.0 outside the range)", planned, want)
	}
	if len(sp.Blocked) != 1 || sp.Blocked[0].Source != host+"/team/app:1.0.0" || sp.Blocked[0].Rule != `:1\.0\.0$` {
		t.Errorf("blocked %+v", sp.Blocked)
	}
	if len(sp.LeftOut) != 2 || sp.LeftOut[0].Source != host+"/team/gone" || sp.LeftOut[1].Source != host+"/team/api:missing" {
		t.Errorf("left out %+v", sp.LeftOut)
	}
	if r := sp.Repositories[0]; r.Listed != 4 || !slices.Equal(r.Picked, []string{"1.4.2", "1.0.0"}) || len(r.Tags) != 4 {
		t.Errorf("repository report %+v", r)
	}
	if sp.Repositories[1].Error == "" {
		t.Errorf("the missing repository's report has no error: %+v", sp.Repositories[1])
	}
	if !errors.Is(&ResolutionError{Problems: []Problem{{Err: ErrCheckFailed}}}, ErrCheckFailed) {
		t.Error("a ResolutionError holding a failed check does not match ErrCheckFailed")
	}
}
