package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/verify"
)

// KeptCatalog is a catalog the site kept at PREFIX/airlock/catalog with a signature that verified
// against a pinned archive key: when it was created and which tags it set.
type KeptCatalog struct {
	Digest  digest.Digest
	Created time.Time
	// Tags maps each tag it set, as a target reference (HOST/PREFIX/team/app:1.4.2 under the current
	// mapping), to the digest it set it to.
	Tags map[string]digest.Digest
}

// keptTag matches the tags load keeps catalogs under: the creation time, and (since catalogs are kept
// under names they cannot collide on) the digest.
var keptTag = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z(-[0-9a-f]{64})?$`)

// maxKeptCatalogBytes bounds a kept catalog's manifest and its signatures' manifests and bundles.
const maxKeptCatalogBytes = archive.MaxManifestSize

// noRollback refuses each plan whose tag a kept signed catalog newer than cat set to another digest:
// an older archive, signed as validly as it was, must not move a tag back to what it once named. It
// returns the plans that may go on and one reason per refused image, naming both catalogs.
func (o *LoadOptions) noRollback(ctx context.Context, plans []*plan.ImagePlan, cat *archive.Catalog, catDesc ocispec.Descriptor) ([]*plan.ImagePlan, []string, error) {
	read := o.Kept
	if read == nil && o.Publish.Target == nil {
		read = o.readKept
	}
	if read == nil {
		return plans, nil, nil
	}
	kept, err := read(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read the catalogs kept at %s/%s (the record a rollback is found in): %w", strings.TrimSuffix(o.Publish.To, "/"), plan.CatalogRepository, err)
	}
	var pass []*plan.ImagePlan
	var refused []string
	for _, p := range plans {
		if why, err := o.rollback(p, kept, cat, catDesc); err != nil {
			return nil, nil, err
		} else if why != "" {
			refused = append(refused, why)
			continue
		}
		pass = append(pass, p)
	}
	return pass, refused, nil
}

// rollback says why loading p would move its tag back, or "".
func (o *LoadOptions) rollback(p *plan.ImagePlan, kept []KeptCatalog, cat *archive.Catalog, catDesc ocispec.Descriptor) (string, error) {
	if p.Image.Tag == "" {
		return "", nil
	}
	name, err := engine.TargetRepository(o.Publish.To, o.Publish.KeepHost, p.Image)
	if err != nil {
		return "", err
	}
	ref := name + ":" + p.Image.Tag
	// What this archive's catalog says the tag names: the image's digest, also when --sparse-index=
	// flatten tags its one platform manifest instead (kept catalogs name the image's digest too).
	want := p.Root.Desc.Digest
	for _, img := range cat.Images {
		if img.Source == p.Source {
			want = img.Digest
		}
	}
	var newest *KeptCatalog
	for i := range kept {
		k := &kept[i]
		if _, ok := k.Tags[ref]; ok && k.Digest != catDesc.Digest && k.Created.After(cat.Created) && (newest == nil || k.Created.After(newest.Created)) {
			newest = k
		}
	}
	if newest == nil || newest.Tags[ref] == want {
		return "", nil
	}
	return fmt.Sprintf("%s (%s): rollback refused: %s was set to %s by catalog %s (created %s), newer than this archive's catalog %s (created %s); load a newer archive, or pass --allow-older to move the tag back",
		p.Source, want, ref, newest.Tags[ref], newest.Digest, newest.Created.UTC().Format(time.RFC3339), catDesc.Digest, cat.Created.UTC().Format(time.RFC3339)), nil
}

// readKept reads the catalogs kept at PREFIX/airlock/catalog and returns those a pinned archive key
// signed. A kept catalog that cannot be read or carries no valid signature is left out (with a warning
// for the first): only a pinned key's word says which tags were set when.
func (o *LoadOptions) readKept(ctx context.Context) ([]KeptCatalog, error) {
	keys, err := verify.LoadKeys(o.Anchors.ArchiveKeys)
	if err != nil {
		return nil, err
	}
	name := strings.TrimSuffix(o.Publish.To, "/") + "/" + plan.CatalogRepository
	tags, err := plan.ListTags(ctx, o.Regs, name, o.Publish.Retry)
	var er *errcode.ErrorResponse
	if errors.As(err, &er) && er.StatusCode == http.StatusNotFound {
		return nil, nil // nothing kept yet
	}
	if err != nil {
		return nil, err
	}
	// A client of its own: its referrers capability is found out, not set (the site registry may have
	// no referrers API; the catalog's signatures are then listed in the tag schema).
	repo, err := o.Regs.Probe(name)
	if err != nil {
		return nil, err
	}
	var out []KeptCatalog
	for _, tag := range tags {
		if !keptTag.MatchString(tag) {
			continue
		}
		k, err := o.readKeptOne(ctx, repo, tag, keys)
		if err != nil {
			if o.Warn != nil {
				o.Warn(fmt.Sprintf("load: kept catalog %s:%s not used to find rollbacks: %v", name, tag, err))
			}
			continue
		}
		if k != nil {
			out = append(out, *k)
		}
	}
	return out, nil
}

// readKeptOne reads the catalog kept under tag; nil when no pinned key signed it.
func (o *LoadOptions) readKeptOne(ctx context.Context, repo *remote.Repository, tag string, keys []*verify.Key) (*KeptCatalog, error) {
	desc, err := repo.Resolve(ctx, tag)
	if err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := fetchJSON(ctx, repo, desc, maxKeptCatalogBytes, &m); err != nil {
		return nil, err
	}
	var sigs []archive.CatalogSignature
	err = repo.Referrers(ctx, desc, archive.BundleMediaType, func(refs []ocispec.Descriptor) error {
		for _, d := range refs {
			if d.Size > maxKeptCatalogBytes {
				continue
			}
			mb, err := archive.ReadVerified(ctx, repo, d, maxKeptCatalogBytes)
			if err != nil {
				return err
			}
			layer, _, err := archive.ParseSignatureManifest(mb, desc.Digest)
			if err != nil || layer.Size > maxKeptCatalogBytes {
				continue
			}
			b, err := archive.ReadVerified(ctx, repo, layer, maxKeptCatalogBytes)
			if err != nil {
				return err
			}
			sigs = append(sigs, archive.CatalogSignature{Manifest: d, Bundle: b})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("signatures: %w", err)
	}
	signed := false
	for _, s := range verify.CheckCatalogSignatures(sigs, desc.Digest, keys) {
		signed = signed || s.Valid
	}
	if !signed {
		return nil, nil
	}
	var cat archive.Catalog
	for _, l := range m.Layers {
		if l.MediaType == archive.CatalogMediaType {
			if err := fetchJSON(ctx, repo, l, 64<<20, &cat); err != nil {
				return nil, err
			}
		}
	}
	k := &KeptCatalog{Digest: desc.Digest, Created: cat.Created, Tags: map[string]digest.Digest{}}
	for _, img := range cat.Images {
		ci, err := config.ParseReference(img.Source)
		if err != nil || ci.Tag == "" {
			continue
		}
		ci.Target = img.Target // signed: its targets were the site's to follow
		name, err := engine.TargetRepository(o.Publish.To, o.Publish.KeepHost, ci)
		if err != nil {
			continue
		}
		k.Tags[name+":"+ci.Tag] = img.Digest
	}
	return k, nil
}

// fetchJSON reads desc (at most limit bytes, checked against its digest) into v.
func fetchJSON(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor, limit int64, v any) error {
	if desc.Size > limit {
		return fmt.Errorf("%s is %d bytes, over the %d-byte limit", desc.Digest, desc.Size, limit)
	}
	b, err := archive.ReadVerified(ctx, f, desc, limit)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
