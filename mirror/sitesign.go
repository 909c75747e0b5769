package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/referrers"
	"airlock.dev/airlock/registry"
	"airlock.dev/airlock/verify"
	"airlock.dev/airlock/vocab"
)

// SiteSigner signs at the site's door (verify.SigningKey): a cosign legacy signature payload, and an
// in-toto statement as a DSSE envelope and as a Sigstore bundle; and tells its own signatures found
// on the site.
type SiteSigner interface {
	SignPayload(payload []byte) (string, error)
	SignedPayload(payload []byte, sig string) bool
	SignStatement(statement []byte) ([]byte, error)
	SignedStatement(envelope []byte) []byte
	SignStatementBundle(statement []byte) ([]byte, error)
	SignedBundleStatement(bundle []byte) []byte
}

// SiteSignature is one signature or attestation the site wrote on load or copy, or found there.
type SiteSignature struct {
	// Image is the source reference; Digest the manifest signed (the image's root, or a platform
	// manifest); Kind "sig" (a cosign legacy signature), "att" (the import attestation, legacy) or
	// "bundle" (the import attestation as a Sigstore bundle referrer); Tag where it is,
	// REPOSITORY:sha256-<hex>.sig or .att, or REPOSITORY@DIGEST of the bundle's referrer manifest.
	Image  string        `json:"image"`
	Digest digest.Digest `json:"digest"`
	Kind   string        `json:"kind"`
	Tag    string        `json:"tag"`
	// Action is "written", or "present" when the tag holds the site's own already.
	Action string `json:"action"`
}

// Layers of cosign's legacy signatures and attestations, and the import attestation's predicate type.
const (
	simpleSigningLayer   = "application/vnd.dev.cosign.simplesigning.v1+json"
	dsseLayer            = "application/vnd.dsse.envelope.v1+json"
	signatureAnnotation  = "dev.cosignproject.cosign/signature"
	predicateAnnotation  = "predicateType"
	inTotoStatementType  = "https://in-toto.io/Statement/v1"
	maxAttestationLayers = 64 // site attestations read back to find the site's own, at most
)

// siteImport is what the import attestation records of one run: the trust verified against and
// each image's result, and for load the archive's catalog.
type siteImport struct {
	// namedBy says who vouches for the source reference recorded: "the image set", or the catalog,
	// signed by a pinned archive key or not (then the name is the archive's word only).
	namedBy string
	trust   *verify.Trust
	results map[string]verify.Result // by source reference
	catalog digest.Digest
	version string
	time    time.Time
}

// siteSign adds, where the enforcing engines look, the site's cosign legacy signature to every
// manifest of each plan (the root and each platform manifest it holds) and the import attestation
// to its root: the sha256-<hex>.sig and .att tags in the image's own repository on the target. The
// signed payload names the target repository (no tag) and the digest. What is at such a tag keeps
// its layers and the site's is appended after them (as cosign appends): the upstream signature's, or
// the target's when it holds those and more; the upstream manifest is still pushed by its digest. A
// tag that holds the site's own already is left as it is (the engine keeps a tag that holds the
// planned layers and more). It reads each tag once: what it read is returned, for the engine's
// preflight (engine.CopyOptions.TagsRead), which then does not ask again.
func siteSign(ctx context.Context, target engine.Target, plans []*plan.ImagePlan, key SiteSigner, imp siteImport) ([]SiteSignature, []engine.TagRead, error) {
	var out []SiteSignature
	var read []engine.TagRead
	for _, ip := range plans {
		st, err := target.Store(ctx, ip)
		if err != nil {
			return out, read, err
		}
		tg, ok := st.(engine.Tagger)
		if !ok {
			return out, read, fmt.Errorf("site signatures: %s cannot hold tags", st.Name())
		}
		c := &cosignTags{tg: tg, name: st.Name(), ip: ip, blobs: map[digest.Digest][]byte{}, read: &read}
		for _, n := range (&plan.ImagePlan{Root: ip.Root}).Nodes() {
			payload := verify.SimpleSigningPayload(st.Name(), n.Desc.Digest)
			s, err := c.appendAt(ctx, n, "sig", func(layers []ocispec.Descriptor) bool { return hasSiteSignature(layers, payload, key) }, func() (ocispec.Descriptor, []byte, error) {
				sig, err := key.SignPayload(payload)
				return ocispec.Descriptor{MediaType: simpleSigningLayer, Annotations: map[string]string{signatureAnnotation: sig}}, payload, err
			})
			if err != nil {
				return out, read, fmt.Errorf("site signature of %s (%s): %w", ip.Source, n.Desc.Digest, err)
			}
			out = append(out, s)
		}
		statement, err := importStatement(st.Name(), ip, imp) // one statement, as .att and as bundle
		if err != nil {
			return out, read, fmt.Errorf("import attestation of %s: %w", ip.Source, err)
		}
		s, err := c.appendAt(ctx, ip.Root, "att", func(layers []ocispec.Descriptor) bool { return c.hasSiteAttestation(ctx, layers, key) }, func() (ocispec.Descriptor, []byte, error) {
			env, err := key.SignStatement(statement)
			return ocispec.Descriptor{MediaType: dsseLayer, Annotations: map[string]string{predicateAnnotation: vocab.ImportPredicateType, signatureAnnotation: ""}}, env, err
		})
		if err != nil {
			return out, read, fmt.Errorf("import attestation of %s: %w", ip.Source, err)
		}
		out = append(out, s)
		s, err = c.bundleAt(ctx, key, statement)
		if err != nil {
			return out, read, fmt.Errorf("import attestation bundle of %s: %w", ip.Source, err)
		}
		out = append(out, s)
		if len(c.blobs) > 0 {
			ip.Content = withBlobs{ip.Content, c.blobs}
		}
	}
	return out, read, nil
}

// signAndPublish publishes plans, signed first by the site (siteSign) when key is set, and lists the
// signatures of the images that landed.
func signAndPublish(ctx context.Context, plans []*plan.ImagePlan, regs *registry.Registries, opts PublishOptions, key SiteSigner, imp siteImport) (*PublishReport, []SiteSignature, error) {
	var signed []SiteSignature
	if key != nil && !opts.DryRun {
		var err error
		if signed, opts.tagsRead, err = siteSign(ctx, opts.target(regs), plans, key, imp); err != nil {
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

// cosignTags plans what the site appends at the cosign tags of one image in the store tg, named name.
type cosignTags struct {
	tg    engine.Tagger
	name  string
	ip    *plan.ImagePlan
	blobs map[digest.Digest][]byte // the new blobs, served to the engine (withBlobs)
	read  *[]engine.TagRead        // the tags read, for the engine's preflight
}

// appendAt plans, at the cosign tag of manifest n with kind ("sig" or "att"), a manifest that holds
// what is there and one more layer, made by newLayer, unless present says the layers there hold the
// site's already.
func (c *cosignTags) appendAt(ctx context.Context, n *plan.Node, kind string, present func([]ocispec.Descriptor) bool, newLayer func() (ocispec.Descriptor, []byte, error)) (SiteSignature, error) {
	tag := "sha256-" + n.Desc.Digest.Encoded() + "." + kind
	res := SiteSignature{Image: c.ip.Source, Digest: n.Desc.Digest, Kind: kind, Tag: c.name + ":" + tag, Action: "written"}
	var upstream *plan.Node
	for _, r := range c.ip.Referrers {
		if r.Referrer != nil && r.Referrer.Method == referrers.CosignTag && r.Referrer.Tag == tag {
			upstream = r
		}
	}
	var layers []ocispec.Descriptor
	if upstream != nil {
		s, err := vocab.ParseSuccessors("", upstream.Manifest)
		if err != nil {
			return res, fmt.Errorf("the upstream %s %s: %w", kind, upstream.Desc.Digest, err)
		}
		layers = s.Layers
	}
	curDesc, cur, err := c.tg.FetchTagged(ctx, tag)
	switch {
	case errors.Is(err, errdef.ErrNotFound):
		*c.read = append(*c.read, engine.TagRead{Store: c.name, Tag: tag})
	case err != nil:
		return res, fmt.Errorf("read %s: %w", res.Tag, err)
	default:
		*c.read = append(*c.read, engine.TagRead{Store: c.name, Tag: tag, Found: true, Desc: curDesc, Manifest: cur})
		have, err := vocab.ParseSuccessors("", cur)
		if err == nil && vocab.LayersStartWith(have.Layers, layers) {
			if present(have.Layers) {
				res.Action = "present"
				return res, nil
			}
			layers = have.Layers // signatures added there since: kept, the site's appended
		}
	}
	layer, b, err := newLayer()
	if err != nil {
		return res, err
	}
	layer.Digest, layer.Size = digest.FromBytes(b), int64(len(b))
	layers = append(append([]ocispec.Descriptor(nil), layers...), layer)
	config := signatureConfig(layers)
	cd := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}
	mb, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: layers})
	if err != nil {
		return res, err
	}
	c.blobs[layer.Digest], c.blobs[cd.Digest] = b, config
	node := &plan.Node{
		Desc:     ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mb), Size: int64(len(mb))},
		Manifest: mb, Repository: n.Repository, Blobs: append([]ocispec.Descriptor{cd}, layers...),
		Referrer: &referrers.Found{Subject: n.Desc.Digest, Method: referrers.CosignTag, Tag: tag},
		Kind:     map[string]string{"sig": referrers.KindSignature, "att": referrers.KindAttestation}[kind], ArtifactType: layer.MediaType,
	}
	node.Referrer.Descriptor = node.Desc
	if upstream != nil {
		untagged := *upstream.Referrer
		untagged.Tag = "" // pushed by its digest; the tag names the manifest that holds its layers and the site's
		upstream.Referrer = &untagged
	}
	c.ip.Referrers = append(c.ip.Referrers, node)
	return res, nil
}

// hasSiteSignature reports whether one of layers is the site's signature of payload.
func hasSiteSignature(layers []ocispec.Descriptor, payload []byte, key SiteSigner) bool {
	d := digest.FromBytes(payload)
	for _, l := range layers {
		if l.MediaType == simpleSigningLayer && l.Digest == d && key.SignedPayload(payload, l.Annotations[signatureAnnotation]) {
			return true
		}
	}
	return false
}

// hasSiteAttestation reports whether one of layers is an import attestation of the image's root that
// the site signed: each candidate is read from the store (at most maxAttestationLayers, each bounded
// and hashed).
func (c *cosignTags) hasSiteAttestation(ctx context.Context, layers []ocispec.Descriptor, key SiteSigner) bool {
	read := 0
	for _, l := range layers {
		if l.MediaType != dsseLayer || l.Annotations[predicateAnnotation] != vocab.ImportPredicateType || read >= maxAttestationLayers {
			continue
		}
		read++
		env, err := archive.ReadVerified(ctx, c.tg, l, vocab.MaxManifestSize)
		if err == nil && c.importOfRoot(key.SignedStatement(env)) {
			return true
		}
	}
	return false
}

// archiveRef is, in the import attestation, the archive an image was loaded from: its catalog's
// digest and the pinned archive keys whose signature of the catalog verified (none: nothing pinned
// vouched for the catalog).
type archiveRef struct {
	Catalog  digest.Digest   `json:"catalog"`
	SignedBy []archiveSigner `json:"signedBy,omitempty"`
}

// archiveSigner is a pinned archive key, by its file name and the key hint its signature gives.
type archiveSigner struct {
	Key  string `json:"key"`
	Hint string `json:"keyHint,omitempty"`
}

// importStatement is the in-toto statement of the import attestation of ip into repo: what came in,
// from where, verified against what, by whom, and when (docs/site-signatures.md, section 3).
func importStatement(repo string, ip *plan.ImagePlan, imp siteImport) ([]byte, error) {
	type ref struct {
		Reference string        `json:"reference"`
		Digest    digest.Digest `json:"digest,omitempty"`
		NamedBy   string        `json:"namedBy,omitempty"`
	}
	type platform struct {
		Platform string        `json:"platform,omitempty"` // as the index names it, when it does
		Digest   digest.Digest `json:"digest"`
	}
	type verification struct {
		Trust        string   `json:"trust"`
		Origin       string   `json:"origin,omitempty"`
		Rule         string   `json:"rule,omitempty"`
		Signers      []string `json:"signers,omitempty"`
		Attestations []string `json:"attestations,omitempty"`
	}
	pred := struct {
		Source       ref               `json:"source"`
		Target       ref               `json:"target"`
		Platforms    []platform        `json:"platforms,omitempty"`
		Archive      *archiveRef       `json:"archive,omitempty"`
		Verification verification      `json:"verification"`
		Importer     map[string]string `json:"importer"`
		Time         string            `json:"time"`
	}{
		Source:   ref{Reference: ip.Source, Digest: ip.Root.Desc.Digest, NamedBy: imp.namedBy},
		Target:   ref{Reference: repo + tagSuffix(ip.Image.Tag)},
		Importer: map[string]string{"name": "airlock", "version": imp.version},
		Time:     imp.time.UTC().Format(time.RFC3339),
	}
	for _, ch := range ip.Root.Children {
		pred.Platforms = append(pred.Platforms, platform{ch.Platform, ch.Desc.Digest})
	}
	if imp.catalog != "" {
		pred.Archive = &archiveRef{Catalog: imp.catalog}
		if imp.trust != nil {
			for _, s := range imp.trust.Origin.ArchiveSignatures {
				if s.Valid {
					pred.Archive.SignedBy = append(pred.Archive.SignedBy, archiveSigner{s.Signer, s.KeyHint})
				}
			}
		}
	}
	if imp.trust != nil {
		pred.Verification.Trust, pred.Verification.Origin = imp.trust.Source, imp.trust.Origin.Kind
	}
	res := imp.results[ip.Source]
	pred.Verification.Rule = res.Rule
	for _, c := range res.Signatures {
		if c.Valid {
			pred.Verification.Signers = append(pred.Verification.Signers, c.Signer)
		}
	}
	for _, c := range res.Attestations {
		if c.Valid {
			pred.Verification.Attestations = append(pred.Verification.Attestations, c.PredicateType)
		}
	}
	return json.Marshal(struct {
		Type          string `json:"_type"`
		Subject       []any  `json:"subject"`
		PredicateType string `json:"predicateType"`
		Predicate     any    `json:"predicate"`
	}{inTotoStatementType, []any{map[string]any{"name": repo, "digest": map[string]string{"sha256": ip.Root.Desc.Digest.Encoded()}}}, vocab.ImportPredicateType, pred})
}

func tagSuffix(tag string) string {
	if tag == "" {
		return ""
	}
	return ":" + tag
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

// FetchFrom keeps the source's Range reads (engine.RangeFetcher, a registry source in copy): a blob
// resumed after a cut is not read again from its first byte because the run also made blobs.
func (s withBlobs) FetchFrom(ctx context.Context, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	if rf, ok := s.Source.(engine.RangeFetcher); ok {
		if _, made := s.blobs[desc.Digest]; !made {
			return rf.FetchFrom(ctx, desc, offset)
		}
	}
	rc, err := s.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	if _, err := io.CopyN(io.Discard, rc, offset); err != nil {
		rc.Close()
		return nil, err
	}
	return rc, nil
}
