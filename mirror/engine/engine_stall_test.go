package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/registry"
)

// stallingRegistry is go-containerregistry's registry, but the first request that matches stalls:
// an answer holds after half its body, an upload is read 64 KiB and then no more. Held requests wait
// for the test's end. gone counts held answers the client gave up on.
type stallingRegistry struct {
	next    http.Handler
	match   func(r *http.Request) bool
	release chan struct{}

	Mu      sync.Mutex
	stalled bool
	gone    int
	layer   []byte // sent for a stalled answer
}

func (s *stallingRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.Mu.Lock()
	first := !s.stalled && s.match(r)
	s.stalled = s.stalled || first
	s.Mu.Unlock()
	switch {
	case !first:
		s.next.ServeHTTP(w, r)
		return
	case r.Method == http.MethodGet:
		w.Header().Set("Content-Length", fmt.Sprint(len(s.layer)))
		w.Write(s.layer[:len(s.layer)/2])
		w.(http.Flusher).Flush()
	default:
		io.CopyN(io.Discard, r.Body, 64<<10)
	}
	select {
	case <-r.Context().Done():
		s.Mu.Lock()
		s.gone++
		s.Mu.Unlock()
	case <-s.release:
	}
}

func startStalling(t *testing.T, layer []byte, match func(*http.Request) bool) (string, *stallingRegistry) {
	t.Helper()
	s := &stallingRegistry{next: ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))), match: match, release: make(chan struct{}), layer: layer}
	srv := httptest.NewServer(s)
	t.Cleanup(func() { close(s.release); srv.Close() })
	return strings.TrimPrefix(srv.URL, "http://"), s
}

// TestCopyCutsStalledTransfers: a blob copied between registries whose source stops sending, or whose
// target stops reading, is cut after --stall-timeout by the registry client (the engine keeps no
// watchdog of its own) and copied again by the engine's retry; the image lands whole.
func TestCopyCutsStalledTransfers(t *testing.T) {
	const d = time.Second
	layer := bytes.Repeat([]byte("airlock!"), 4<<20) // 32 MiB: more than the socket buffers hold
	ld := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer), Size: int64(len(layer))}
	stallSource := func(r *http.Request) bool {
		return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+ld.Digest.String())
	}
	stallTarget := func(r *http.Request) bool { return r.ContentLength > 1<<20 }
	for _, tc := range []struct {
		name     string
		src, dst func(*http.Request) bool
	}{
		{"download", stallSource, func(*http.Request) bool { return false }},
		{"upload", func(*http.Request) bool { return false }, stallTarget},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			t.Setenv("DOCKER_CONFIG", t.TempDir())
			srcHost, src := startStalling(t, layer, tc.src)
			dstHost, dst := startStalling(t, layer, tc.dst)
			regs, err := registry.New(registry.Options{StallTimeout: d})
			if err != nil {
				t.Fatal(err)
			}
			pushLayerImage(ctx, t, regs, srcHost+"/team/app", layer)
			img, err := config.ParseReference(srcHost + "/team/app:1")
			if err != nil {
				t.Fatal(err)
			}
			retry := registry.Retry{Attempts: 4, Base: time.Millisecond, Max: time.Millisecond}
			ip, err := (&plan.Planner{Registries: regs, Retry: retry}).Plan(ctx, img)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			rep, err := Copy(ctx, []*plan.ImagePlan{ip}, &RegistryTarget{Regs: regs, To: dstHost + "/mirror", Retry: retry}, CopyOptions{Retry: retry})
			if err != nil || rep.Images[0].Status != "pushed" || rep.Blobs.Failed != 0 {
				t.Fatalf("copy through a stalled %s: %v, %+v", tc.name, err, rep)
			}
			if took := time.Since(start); took < d {
				t.Errorf("done after %s: the stall was cut sooner than --stall-timeout %s", took, d)
			}
			src.Mu.Lock()
			dst.Mu.Lock()
			stalled, gone := src.stalled, src.gone
			if tc.name == "upload" {
				stalled = dst.stalled
			}
			dst.Mu.Unlock()
			src.Mu.Unlock()
			if !stalled {
				t.Fatalf("no %s stalled", tc.name)
			}
			if tc.name == "download" && gone != 1 {
				t.Errorf("the client gave up on %d stalled downloads, want 1", gone)
			}
			repo, err := regs.Repository(dstHost + "/mirror/team/app")
			if err != nil {
				t.Fatal(err)
			}
			rc, err := repo.Blobs().Fetch(ctx, ld)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, layer) {
				t.Errorf("the target's layer: %d bytes, %v; want the layer", len(got), err)
			}
		})
	}
}

// pushLayerImage pushes an image with one layer to name, tagged 1.
func pushLayerImage(ctx context.Context, t *testing.T, regs *registry.Registries, name string, layer []byte) {
	t.Helper()
	repo, err := regs.Repository(name)
	if err != nil {
		t.Fatal(err)
	}
	push := func(mt string, b []byte) ocispec.Descriptor {
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
		if err := repo.Push(ctx, d, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	ld := push(ocispec.MediaTypeImageLayer, layer)
	cd := push(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}`))
	mb, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: []ocispec.Descriptor{ld}})
	md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mb), Size: int64(len(mb))}
	if err := repo.PushReference(ctx, md, bytes.NewReader(mb), "1"); err != nil {
		t.Fatal(err)
	}
}
