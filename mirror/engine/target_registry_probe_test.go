package engine_test

import (
	"context"
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
		cp := st.(engine.CheckingPusher)
		if !cp.ChecksOnPush(ocispec.Descriptor{Size: engine.ProbeSize}) || cp.ChecksOnPush(ocispec.Descriptor{Size: engine.ProbeSize + 1}) {
			t.Errorf("checked on push: %d bytes %v, %d bytes %v; want true and false", engine.ProbeSize, cp.ChecksOnPush(ocispec.Descriptor{Size: engine.ProbeSize}),
				engine.ProbeSize+1, cp.ChecksOnPush(ocispec.Descriptor{Size: engine.ProbeSize + 1}))
		}
	}
}
