package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"

	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/referrers"
	"airlock.dev/airlock/registry"
	"airlock.dev/airlock/verify"
	"airlock.dev/airlock/vocab"
)

// SiteSigner signs at the site's door (verify.SigningKey): a cosign legacy signature payload, and
// whether a signature found on the site is its own.
type SiteSigner interface {
	SignPayload(payload []byte) (string, error)
	SignedPayload(payload []byte, sig string) bool
}

// SiteSignature is one manifest the site signed on load, or found signed by it already.
type SiteSignature struct {
	// Image is the source reference; Digest the manifest signed (the image's root, or a platform
	// manifest); Tag where the signature is, REPOSITORY:sha256-<hex>.sig.
	Image  string        `json:"image"`
	Digest digest.Digest `json:"digest"`
	Tag    string        `json:"tag"`
	// Action is "written", or "present" when the tag holds the site's signature already.
	Action string `json:"action"`
}

// simpleSigningLayer is the media type of a cosign legacy signature layer; the annotation holds the
// signature of the layer's bytes (the payload).
const (
	simpleSigningLayer  = "application/vnd.dev.cosign.simplesigning.v1+json"
	signatureAnnotation = "dev.cosignproject.cosign/signature"
)

// siteSign adds the site's cosign legacy signature to every manifest of each plan (the root and each
// platform manifest it holds), where the enforcing engines look: the sha256-<hex>.sig tag in the image's
// own repository on the target. The signed payload names the target repository (no tag) and the digest.
// An upstream signature at that tag keeps its layers, the site's is appended after them (as cosign
// appends), and the upstream manifest is still pushed by its digest. A tag that holds the site's
// signature already is left as it is (the engine keeps a tag that holds the planned layers and more),
// and one that holds more signatures than planned is grown, never stripped. It asks each tag once.
func siteSign(ctx context.Context, target engine.Target, plans []*plan.ImagePlan, key SiteSigner) ([]SiteSignature, error) {
	var out []SiteSignature
	for _, ip := range plans {
		st, err := target.Store(ctx, ip)
		if err != nil {
			return out, err
		}
		tg, ok := st.(engine.Tagger)
		if !ok {
			return out, fmt.Errorf("site signatures: %s cannot hold tags", st.Name())
		}
		blobs := map[digest.Digest][]byte{}
		for _, n := range (&plan.ImagePlan{Root: ip.Root}).Nodes() {
			s, err := signManifest(ctx, tg, st.Name(), ip, n, key, blobs)
			if err != nil {
				return out, fmt.Errorf("site signature of %s (%s): %w", ip.Source, n.Desc.Digest, err)
			}
			out = append(out, s)
		}
		if len(blobs) > 0 {
			ip.Content = withBlobs{ip.Content, blobs}
		}
	}
	return out, nil
}

// signAndPublish publishes plans, signed first by the site (siteSign) when key is set, and lists the
// signatures of the images that landed.
func signAndPublish(ctx context.Context, plans []*plan.ImagePlan, regs *registry.Registries, opts PublishOptions, key SiteSigner) (*PublishReport, []SiteSignature, error) {
	var signed []SiteSignature
	if key != nil && !opts.DryRun {
		var err error
		if signed, err = siteSign(ctx, opts.target(regs), plans, key); err != nil {
			return nil, nil, err
		}
	}
	rep, err := Publish(ctx, plans, regs, opts)
	if rep != nil {
		signed = signedLanded(signed, rep.Images)
	}
	return rep, signed, err
}

// signedLanded keeps the signatures of the images that landed.
func signedLanded(signed []SiteSignature, images []engine.ImageReport) []SiteSignature {
	failed := map[string]bool{}
	for _, ir := range images {
		failed[ir.Source] = ir.Status == "failed"
	}
	var out []SiteSignature
	for _, s := range signed {
		if !failed[s.Image] {
			out = append(out, s)
		}
	}
	return out
}

// signManifest plans the site's signature of manifest n of ip, in repository repo, unless the tag has
// it; the new blobs go into blobs.
func signManifest(ctx context.Context, tg engine.Tagger, repo string, ip *plan.ImagePlan, n *plan.Node, key SiteSigner, blobs map[digest.Digest][]byte) (SiteSignature, error) {
	tag := "sha256-" + n.Desc.Digest.Encoded() + ".sig"
	res := SiteSignature{Image: ip.Source, Digest: n.Desc.Digest, Tag: repo + ":" + tag, Action: "written"}
	var upstream *plan.Node
	for _, r := range ip.Referrers {
		if r.Referrer != nil && r.Referrer.Method == referrers.CosignTag && r.Referrer.Tag == tag {
			upstream = r
		}
	}
	var layers []ocispec.Descriptor
	if upstream != nil {
		s, err := vocab.ParseSuccessors("", upstream.Manifest)
		if err != nil {
			return res, fmt.Errorf("the upstream signature %s: %w", upstream.Desc.Digest, err)
		}
		layers = s.Layers
	}
	payload := verify.SimpleSigningPayload(repo, n.Desc.Digest)
	_, cur, err := tg.FetchTagged(ctx, tag)
	switch {
	case errors.Is(err, errdef.ErrNotFound):
	case err != nil:
		return res, fmt.Errorf("read %s: %w", res.Tag, err)
	default:
		have, err := vocab.ParseSuccessors("", cur)
		if err == nil && vocab.LayersStartWith(have.Layers, layers) {
			if hasSiteLayer(have.Layers, payload, key) {
				res.Action = "present"
				return res, nil
			}
			layers = have.Layers // signatures added there since: kept, the site's appended
		}
	}
	sig, err := key.SignPayload(payload)
	if err != nil {
		return res, err
	}
	layer := ocispec.Descriptor{MediaType: simpleSigningLayer, Digest: digest.FromBytes(payload), Size: int64(len(payload)),
		Annotations: map[string]string{signatureAnnotation: sig}}
	layers = append(append([]ocispec.Descriptor(nil), layers...), layer)
	config := signatureConfig(layers)
	cd := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}
	mb, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: layers})
	if err != nil {
		return res, err
	}
	blobs[layer.Digest], blobs[cd.Digest] = payload, config
	node := &plan.Node{
		Desc:     ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mb), Size: int64(len(mb))},
		Manifest: mb, Repository: n.Repository, Blobs: append([]ocispec.Descriptor{cd}, layers...),
		Referrer: &referrers.Found{Subject: n.Desc.Digest, Method: referrers.CosignTag, Tag: tag},
		Kind:     referrers.KindSignature, ArtifactType: simpleSigningLayer,
	}
	node.Referrer.Descriptor = node.Desc
	if upstream != nil {
		untagged := *upstream.Referrer
		untagged.Tag = "" // pushed by its digest; the tag names the manifest that holds its layers and the site's
		upstream.Referrer = &untagged
	}
	ip.Referrers = append(ip.Referrers, node)
	return res, nil
}

// hasSiteLayer reports whether one of layers is the site's signature of payload.
func hasSiteLayer(layers []ocispec.Descriptor, payload []byte, key SiteSigner) bool {
	d := digest.FromBytes(payload)
	for _, l := range layers {
		if l.MediaType == simpleSigningLayer && l.Digest == d && key.SignedPayload(payload, l.Annotations[signatureAnnotation]) {
			return true
		}
	}
	return false
}

// signatureConfig is the image config of a signature manifest, as go-containerregistry's empty image
// with the layers appended writes it (cosign's): one diff_id and one empty history entry per layer.
func signatureConfig(layers []ocispec.Descriptor) []byte {
	type history struct {
		Created string `json:"created"`
	}
	var c struct {
		Architecture string    `json:"architecture"`
		Created      string    `json:"created"`
		History      []history `json:"history"`
		OS           string    `json:"os"`
		RootFS       struct {
			Type    string          `json:"type"`
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
		Config struct{} `json:"config"`
	}
	c.Created, c.RootFS.Type = "0001-01-01T00:00:00Z", "layers"
	for _, l := range layers {
		c.History = append(c.History, history{Created: "0001-01-01T00:00:00Z"})
		c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, l.Digest)
	}
	b, _ := json.Marshal(c) // strings only
	return b
}

// withBlobs serves the blobs a run made (the site's signatures) before those of the plan's source.
type withBlobs struct {
	plan.Source
	blobs map[digest.Digest][]byte
}

func (s withBlobs) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if b, ok := s.blobs[desc.Digest]; ok {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	return s.Source.Fetch(ctx, desc)
}
