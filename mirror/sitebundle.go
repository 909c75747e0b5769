package mirror

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/referrers"
	"airlock.dev/airlock/vocab"
)

// emptyConfig is the OCI empty descriptor's content, the config of a bundle referrer (as cosign v3
// writes it).
var emptyConfig = []byte("{}")

// bundleAt plans the site's Sigstore bundle over the import statement of the image's root, as cosign
// v3 attaches an attestation (`cosign attest --key --new-bundle-format`): a referrer of the root whose
// artifactType and one layer are the bundle, with an empty config and the bundle annotations. Engines
// that find any bundle among an image's referrers read bundles only (Kyverno, cosign v3): an image
// whose upstream signatures are bundles would otherwise show them none of the site's. The engine
// attaches it as the target supports (the referrers API, or the tag-schema index). A root the target
// lists a bundle of already, which the site signed over an import statement of this root, gets none
// (Action "present").
func (c *cosignTags) bundleAt(ctx context.Context, key SiteSigner, statement []byte) (SiteSignature, error) {
	root := c.ip.Root
	res := SiteSignature{Image: c.ip.Source, Digest: root.Desc.Digest, Kind: "bundle", Action: "written"}
	if d, ok, err := c.siteBundle(ctx, key); err != nil {
		return res, err
	} else if ok {
		res.Tag, res.Action = c.name+"@"+d.String(), "present"
		return res, nil
	}
	b, err := key.SignStatementBundle(statement)
	if err != nil {
		return res, err
	}
	layer := ocispec.Descriptor{MediaType: vocab.BundleMediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	cd := ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: digest.FromBytes(emptyConfig), Size: int64(len(emptyConfig))}
	mb, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, ArtifactType: vocab.BundleMediaType,
		Config: cd, Layers: []ocispec.Descriptor{layer},
		Subject:     &ocispec.Descriptor{MediaType: root.Desc.MediaType, Digest: root.Desc.Digest, Size: root.Desc.Size},
		Annotations: map[string]string{vocab.AnnotationBundleContent: "dsse-envelope", vocab.AnnotationBundlePredicateType: vocab.ImportPredicateType},
	})
	if err != nil {
		return res, err
	}
	c.blobs[layer.Digest], c.blobs[cd.Digest] = b, emptyConfig
	node := &plan.Node{
		Desc:     ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mb), Size: int64(len(mb))},
		Manifest: mb, Repository: root.Repository, Blobs: []ocispec.Descriptor{cd, layer},
		Referrer: &referrers.Found{Subject: root.Desc.Digest, Method: referrers.API},
		Kind:     referrers.KindAttestation, ArtifactType: vocab.BundleMediaType,
	}
	node.Referrer.Descriptor = node.Desc
	c.ip.Referrers = append(c.ip.Referrers, node)
	res.Tag = c.name + "@" + node.Desc.Digest.String()
	return res, nil
}

// siteBundle looks, among the referrers the target lists for the root, at the bundles (annotated
// with the import predicate type, or else of the bundle's artifactType; all are listed, as some
// registries' referrers API gives the config's media type as every artifactType: go-containerregistry's;
// at most maxAttestationLayers, each manifest and bundle bounded and hashed) for one the site key
// signed over an import statement of the root, and returns its digest.
func (c *cosignTags) siteBundle(ctx context.Context, key SiteSigner) (digest.Digest, bool, error) {
	var found digest.Digest
	read := 0
	err := c.tg.Referrers(ctx, c.ip.Root.Desc, "", func(page []ocispec.Descriptor) error {
		for _, d := range page {
			pt, annotated := d.Annotations[vocab.AnnotationBundlePredicateType]
			if found != "" || read >= maxAttestationLayers || !(annotated && pt == vocab.ImportPredicateType || !annotated && d.ArtifactType == vocab.BundleMediaType) {
				continue
			}
			read++
			mb, err := archive.ReadVerified(ctx, c.tg, d, vocab.MaxManifestSize)
			if err != nil {
				continue
			}
			s, err := vocab.ParseSuccessors(d.MediaType, mb)
			if err != nil || len(s.Layers) != 1 || s.Layers[0].MediaType != vocab.BundleMediaType {
				continue
			}
			b, err := archive.ReadVerified(ctx, c.tg, s.Layers[0], vocab.MaxManifestSize)
			if err == nil && c.importOfRoot(key.SignedBundleStatement(b)) {
				found = d.Digest
			}
		}
		return nil
	})
	if err != nil {
		return "", false, fmt.Errorf("list the bundles of %s in %s: %w", c.ip.Root.Desc.Digest, c.name, err)
	}
	return found, found != "", nil
}

// importOfRoot reports whether statement (nil when the site did not sign it) is an import statement
// whose one subject is the image's root.
func (c *cosignTags) importOfRoot(statement []byte) bool {
	var st struct {
		Subject []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
		PredicateType string `json:"predicateType"`
	}
	return statement != nil && json.Unmarshal(statement, &st) == nil && st.PredicateType == vocab.ImportPredicateType &&
		len(st.Subject) == 1 && st.Subject[0].Digest["sha256"] == c.ip.Root.Desc.Digest.Encoded()
}
