package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/vocab"
)

// damaged is what every integrity error tells the user to do.
const damaged = "the archive is damaged or was altered; copy it again from the connected side"

// MaxManifestSize bounds a manifest or index (vocab.MaxManifestSize).
const MaxManifestSize = vocab.MaxManifestSize

// cosignTagRef matches the index.json name of a cosign legacy tag: REPO:sha256-<hex>.sig, .att, .sbom.
var cosignTagRef = regexp.MustCompile(`:sha256-[0-9a-f]{64}\.(?:sig|att|sbom)$`)

// CheckError reports an archive that failed a check: damaged, incomplete or altered.
type CheckError struct {
	Msg string
	// Digest names the content that failed, when one blob or manifest did.
	Digest digest.Digest
	// Images lists the source references of the images that content belongs to ("the catalog" for
	// the catalog and its trust files).
	Images []string
}

func (e *CheckError) Error() string { return e.Msg }

func checkErr(format string, args ...any) error {
	return &CheckError{Msg: fmt.Sprintf(format, args...)}
}

// Check compares the archive with its catalog before anything is pushed: index.json lists each image
// under its source reference with the catalog's digest and names nothing the catalog does not know;
// the catalog's descriptors have sane sizes; every image, platform and referrer manifest the catalog
// lists is in the archive (a delta archive, cat.Base set, lacks what its base holds and is not asked).
//
// Blob contents are not read here: tar volumes are hashed whole against their list by Open, and load
// hashes the blobs of a directory it is about to push with HashBlobs.
func Check(r *Reader, cat *Catalog) error {
	if err := checkCatalogSizes(cat); err != nil {
		return err
	}
	if err := checkIndex(r, cat); err != nil {
		return err
	}
	if cat.Base == "" {
		return checkPresent(r, cat)
	}
	return nil
}

func checkDesc(what string, d digest.Digest, size int64, limit int64) error {
	if err := d.Validate(); err != nil {
		return checkErr("the catalog lists %s with an invalid digest %q: %s", what, d, damaged)
	}
	if size <= 0 || size > limit {
		return checkErr("the catalog gives %s (%s) a size of %d bytes, which is not sane for a manifest (1 to %d): %s", what, d, size, limit, damaged)
	}
	return nil
}

func checkCatalogSizes(cat *Catalog) error {
	for _, l := range cat.listed() {
		if l.manifest {
			if err := checkDesc(l.what, l.desc.Digest, l.desc.Size, MaxManifestSize); err != nil {
				return err
			}
			continue
		}
		if err := l.desc.Digest.Validate(); err != nil {
			return checkErr("the catalog lists %s with an invalid digest %q: %s", l.what, l.desc.Digest, damaged)
		}
		if l.desc.Size < 0 || l.desc.Size > maxCatalogSize {
			return checkErr("the catalog gives %s (%s) a size of %d bytes, which is not sane (0 to %d): %s", l.what, l.desc.Digest, l.desc.Size, maxCatalogSize, damaged)
		}
	}
	return nil
}

// listedItem is a manifest or trust file the catalog lists, with what it is, for messages.
type listedItem struct {
	what     string
	desc     ocispec.Descriptor
	manifest bool          // an image, platform or referrer manifest; otherwise a trust file
	sparse   bool          // a platform manifest of an image a platform filter made sparse
	subject  digest.Digest // a referrer's
}

// listed returns what the catalog lists, in its order: each image and its platform manifests, the
// referrers, the trust files.
func (c *Catalog) listed() []listedItem {
	var out []listedItem
	for _, img := range c.Images {
		out = append(out, listedItem{what: "image " + img.Source, desc: ocispec.Descriptor{MediaType: img.MediaType, Digest: img.Digest, Size: img.Size}, manifest: true})
		for _, p := range img.Platforms {
			out = append(out, listedItem{what: fmt.Sprintf("platform %s of %s", p.Platform, img.Source), desc: ocispec.Descriptor{MediaType: p.MediaType, Digest: p.Digest, Size: p.Size}, manifest: true, sparse: img.Sparse})
		}
	}
	for _, ref := range c.Referrers {
		out = append(out, listedItem{what: fmt.Sprintf("referrer (%s of %s)", ref.Kind, ref.Subject), desc: ocispec.Descriptor{MediaType: ref.MediaType, Digest: ref.Digest, Size: ref.Size}, manifest: true, subject: ref.Subject})
	}
	for _, f := range c.Trust.files() {
		out = append(out, listedItem{what: "trust file " + f.Name, desc: ocispec.Descriptor{MediaType: f.MediaType, Digest: f.Digest, Size: f.Size}})
	}
	return out
}

// checkIndex compares index.json with the catalog.
func checkIndex(r *Reader, cat *Catalog) error {
	disagree := func(format string, args ...any) error {
		return checkErr("index.json disagrees with the catalog: "+format+": "+damaged, args...)
	}
	images := map[string]digest.Digest{}
	known := map[digest.Digest]bool{}
	for _, img := range cat.Images {
		images[img.Source] = img.Digest
		known[img.Digest] = true
	}
	refs := map[digest.Digest]bool{}
	for _, ref := range cat.Referrers {
		refs[ref.Digest] = true
	}
	listed := map[string]bool{}
	var catalogs []digest.Digest
	for _, d := range r.Index.Manifests {
		if err := d.Digest.Validate(); err != nil {
			return disagree("it lists an invalid digest %q", d.Digest)
		}
		name, named := d.Annotations[ocispec.AnnotationRefName]
		switch want, isImage := images[name]; {
		case named && name == CatalogRefName:
			catalogs = append(catalogs, d.Digest)
		case named && isImage:
			if d.Digest != want {
				return disagree("it lists %s as %s, the catalog says %s", name, d.Digest, want)
			}
			listed[name] = true
		case named && cosignTagRef.MatchString(name):
			if !refs[d.Digest] {
				return disagree("it names the cosign tag %s as %s, which the catalog lists as no referrer", name, d.Digest)
			}
		case named:
			return disagree("it lists %q (%s), which the catalog does not", name, d.Digest)
		case isCatalogSignature(d):
			// A signature of the catalog: CatalogSignatures checks what it names and refers to.
		default:
			if !refs[d.Digest] && !known[d.Digest] {
				return disagree("it lists %s, which the catalog does not", d.Digest)
			}
		}
	}
	if len(catalogs) > 1 {
		return disagree("it names %d catalogs (%s)", len(catalogs), catalogs)
	}
	for _, img := range cat.Images {
		if !listed[img.Source] {
			return disagree("it does not list %s (the catalog says %s)", img.Source, img.Digest)
		}
	}
	return nil
}

// checkPresent checks that every manifest the catalog lists is in the archive, at its size.
func checkPresent(r *Reader, cat *Catalog) error {
	has := func(what string, d digest.Digest, size int64) error {
		fi, err := fs.Stat(r.fsys, blobName(d))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return checkErr("the catalog lists %s %s, but the archive lacks it: the archive is incomplete, damaged or was altered; copy it again from the connected side", what, d)
		case err != nil:
			return fmt.Errorf("%s %s: %w", what, d, err)
		case fi.Size() != size:
			return checkErr("%s %s is %d bytes in the archive, the catalog says %d: %s", what, d, fi.Size(), size, damaged)
		}
		return nil
	}
	for _, l := range cat.listed() {
		if l.sparse {
			continue
		}
		if err := has(l.what, l.desc.Digest, l.desc.Size); err != nil {
			return err
		}
	}
	return nil
}

func blobName(d digest.Digest) string {
	return path.Join(ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

// OwnedBlob is a blob (or manifest) to hash, with the source reference of the image it belongs to.
type OwnedBlob struct {
	Desc  ocispec.Descriptor
	Image string
}

// HashBlobs hashes the blobs named, a few at a time (as VerifyContents does), and checks each against
// its digest and size; blobs this Reader already read whole and found right (the manifests a plan was
// rebuilt from) are not read again. load runs it on everything it is about to push from a directory
// archive, before pushing anything. A mismatch names the images the blob belongs to.
func HashBlobs(ctx context.Context, r *Reader, blobs []OwnedBlob) error {
	var jobs []hashJob
	var done []digest.Digest
	owners := map[digest.Digest][]string{}
	for _, b := range blobs {
		d := b.Desc.Digest
		_, seen := owners[d]
		if !slices.Contains(owners[d], b.Image) {
			owners[d] = append(owners[d], b.Image)
		}
		if seen || r.isChecked(d) {
			continue
		}
		if err := d.Validate(); err != nil {
			return checkErr("%s: %s names blob %q, not a valid digest: %s", r.Path, b.Image, d, damaged)
		}
		jobs = append(jobs, hashJob{d: d, size: b.Desc.Size, what: "blob"})
		done = append(done, d)
	}
	if err := hashInParallel(ctx, r, jobs, func(d digest.Digest) []string { return owners[d] }); err != nil {
		return err
	}
	r.markChecked(done)
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
