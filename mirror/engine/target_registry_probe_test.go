package engine_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
)

// The registry is asked how it takes blobs only for an image with a blob larger than the probe size:
// not for one whose largest blob is exactly that size, and for one a byte larger. Until it is asked,
// blobs up to the probe size are checked on push.
func TestRegistryTargetProbeSize(t *testing.T) {
	ctx := context.Background()
	host, regs, _ := mirrortest.StartPagingRegistry(t, 100)
	for _, tc := range []struct {
		size  int64
		asked bool
	}{{engine.ProbeSize, false}, {engine.ProbeSize + 1, true}} {
		img, err := config.ParseReference("registry.example.com/team/app:1.0")
		if err != nil {
			t.Fatal(err)
		}
		blob := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("layer"), Size: tc.size}
		ip := &plan.ImagePlan{Image: img, Source: img.String(), Root: &plan.Node{
			Desc:  ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("manifest"), Size: 2},
			Blobs: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromString("config"), Size: 2}, blob}}}
		tgt := &engine.RegistryTarget{Regs: regs, To: host + "/mirror", Retry: mirrortest.Retry}
		st, err := tgt.Store(ctx, ip)
		if err != nil {
			t.Fatal(err)
		}
		if asked := tgt.Monolithic() != 0; asked != tc.asked {
			t.Errorf("largest blob %d bytes (probe size %d): asked %v, want %v", tc.size, engine.ProbeSize, asked, tc.asked)
		}
		if tc.asked {
			continue
		}
		// Not asked: a blob up to the probe size is checked by the POST that starts its upload; a
		// byte more, by an exists-check of its own.
		cp := st.(engine.BlobPusher)
		if !cp.ChecksOnPush(ocispec.Descriptor{Size: engine.ProbeSize}) || cp.ChecksOnPush(ocispec.Descriptor{Size: engine.ProbeSize + 1}) {
			t.Errorf("checked on push: %d bytes %v, %d bytes %v; want true and false", engine.ProbeSize, cp.ChecksOnPush(ocispec.Descriptor{Size: engine.ProbeSize}),
				engine.ProbeSize+1, cp.ChecksOnPush(ocispec.Descriptor{Size: engine.ProbeSize + 1}))
		}
	}
}

// A registry not asked yet how it takes blobs learns it from the first blob up to the probe size (a
// monolithic upload tried): at exactly the probe size too, but not from a blob a byte larger (an
// upload session, which says nothing). Each blob lands.
func TestRegistryTargetLearnsFromAMonolithicUpload(t *testing.T) {
	ctx := context.Background()
	host, regs, _ := mirrortest.StartPagingRegistry(t, 100)
	for _, tc := range []struct {
		size    int
		learned bool
	}{{100, true}, {engine.ProbeSize, true}, {engine.ProbeSize + 1, false}} {
		img, err := config.ParseReference("registry.example.com/team/app:1.0")
		if err != nil {
			t.Fatal(err)
		}
		ip := &plan.ImagePlan{Image: img, Source: img.String(), Root: &plan.Node{Desc: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("m"), Size: 1}}}
		tgt := &engine.RegistryTarget{Regs: regs, To: host + "/mirror", Retry: mirrortest.Retry}
		st, err := tgt.Store(ctx, ip)
		if err != nil {
			t.Fatal(err)
		}
		b := bytes.Repeat([]byte{byte(tc.size)}, tc.size)
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(b), Size: int64(tc.size)}
		open := func(int64) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		if _, err := st.(engine.BlobPusher).PushBlob(ctx, desc, open, false); err != nil {
			t.Fatalf("%d bytes: %v", tc.size, err)
		}
		if learned := tgt.Monolithic() != 0; learned != tc.learned {
			t.Errorf("%d bytes (probe size %d): learned how the registry takes blobs %v, want %v", tc.size, engine.ProbeSize, learned, tc.learned)
		}
		if ok, err := st.Exists(ctx, desc); !ok || err != nil {
			t.Errorf("%d bytes: not there after the push (%v)", tc.size, err)
		}
	}
}
