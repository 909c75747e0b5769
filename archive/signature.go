package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/vocab"
)

// Catalog signatures: a Sigstore bundle over the catalog manifest's digest, attached to it as an OCI
// referrer exactly as `cosign sign --key` (cosign v3) attaches one to an image, so that cosign itself
// can verify the catalog once it is on a registry.
const (
	BundleMediaType               = vocab.BundleMediaType
	AnnotationCatalogSignature    = vocab.AnnotationCatalogSignature
	AnnotationBundlePredicateType = vocab.AnnotationBundlePredicateType
	AnnotationBundleContent       = vocab.AnnotationBundleContent
	CosignSignPredicateType       = vocab.CosignSignPredicateType
)

// maxSignatures bounds the catalog signatures read from one archive.
const maxSignatures = 64

// SignatureManifest returns the referrer manifest that attaches the Sigstore bundle b to subject, in
// the shape cosign v3 pushes: artifactType and one layer of the bundle media type, the empty config,
// the bundle content and predicate type annotations.
func SignatureManifest(subject ocispec.Descriptor, b []byte, created time.Time) (manifest []byte, layer ocispec.Descriptor, err error) {
	layer = ocispec.Descriptor{MediaType: BundleMediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	empty := ocispec.DescriptorEmptyJSON
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: BundleMediaType,
		Config:       ocispec.Descriptor{MediaType: empty.MediaType, ArtifactType: BundleMediaType, Digest: empty.Digest, Size: empty.Size},
		Layers:       []ocispec.Descriptor{layer},
		Subject:      &ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations: map[string]string{
			ocispec.AnnotationCreated:     created.UTC().Format(time.RFC3339),
			AnnotationBundleContent:       "dsse-envelope",
			AnnotationBundlePredicateType: CosignSignPredicateType,
		},
	}
	manifest, err = json.Marshal(m)
	return manifest, layer, err
}

// AttachCatalogSignature stores the bundle b as a signature of the catalog catDesc (see
// SignatureManifest) and lists it in index.json, marked with AnnotationCatalogSignature. Call it after
// WriteCatalog and before Commit.
func (l *Layout) AttachCatalogSignature(ctx context.Context, catDesc ocispec.Descriptor, b []byte, created time.Time) (ocispec.Descriptor, error) {
	blobs, entry, err := catalogSignature(catDesc, b, created)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	for _, bl := range blobs {
		if err := l.PushBytes(ctx, bl.desc, bl.b); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("store catalog signature: %w", err)
		}
	}
	l.AddEntry(entry)
	entry.Annotations = nil
	return entry, nil
}

// blobBytes is a blob held in memory.
type blobBytes struct {
	desc ocispec.Descriptor
	b    []byte
}

// catalogSignature returns what attaching the Sigstore bundle b to the catalog catDesc stores, in
// order (the empty config, the bundle, and last the referrer manifest SignatureManifest writes), and
// the index.json entry that lists the manifest as a signature of the catalog.
func catalogSignature(catDesc ocispec.Descriptor, b []byte, created time.Time) ([]blobBytes, ocispec.Descriptor, error) {
	mb, layer, err := SignatureManifest(catDesc, b, created)
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: BundleMediaType, Digest: digest.FromBytes(mb), Size: int64(len(mb))}
	empty := ocispec.DescriptorEmptyJSON
	entry := desc
	entry.Annotations = map[string]string{AnnotationCatalogSignature: catDesc.Digest.String(), AnnotationSubject: catDesc.Digest.String()}
	return []blobBytes{{empty, empty.Data}, {layer, b}, {desc, mb}}, entry, nil
}

// isCatalogSignature reports whether an index.json entry is marked as a signature of the catalog.
func isCatalogSignature(d ocispec.Descriptor) bool {
	_, ok := d.Annotations[AnnotationCatalogSignature]
	return ok
}

// CatalogSignature is one signature attached to an archive's catalog: its referrer manifest and the
// bundle it carries, both read and checked against their digests.
type CatalogSignature struct {
	Manifest ocispec.Descriptor
	Bundle   []byte
	// PredicateType is what the referrer manifest's annotation claims; only the verified bundle counts.
	PredicateType string
}

// CatalogSignatures reads the signatures index.json attaches to the catalog catDigest. A signature
// entry whose manifest is unreadable, does not refer to the catalog or is not exactly the shape
// SignatureManifest writes is an error: the archive was altered. Which of them are valid, and by which
// key, is for the site's pinned keys to say (verify.CheckCatalogSignatures).
func (r *Reader) CatalogSignatures(ctx context.Context, catDigest digest.Digest) ([]CatalogSignature, error) {
	var out []CatalogSignature
	for _, d := range r.Index.Manifests {
		if !isCatalogSignature(d) {
			continue
		}
		if len(out) == maxSignatures {
			return nil, checkErr("%s: index.json lists more than %d catalog signatures: %s", r.Path, maxSignatures, damaged)
		}
		if d.Annotations[AnnotationCatalogSignature] != catDigest.String() {
			return nil, checkErr("%s: index.json lists a signature (%s) of catalog %s, but the catalog is %s: %s", r.Path, d.Digest, d.Annotations[AnnotationCatalogSignature], catDigest, damaged)
		}
		if d.MediaType != ocispec.MediaTypeImageManifest {
			return nil, checkErr("%s: catalog signature %s is a %q, not an OCI image manifest: %s", r.Path, d.Digest, d.MediaType, damaged)
		}
		mb, err := ReadVerified(ctx, r, d, MaxManifestSize)
		if err != nil {
			return nil, &CheckError{Msg: fmt.Sprintf("%s: catalog signature %s: %v", r.Path, d.Digest, err)}
		}
		layer, predicateType, err := ParseSignatureManifest(mb, catDigest)
		if err != nil {
			return nil, checkErr("%s: catalog signature %s: %v: %s", r.Path, d.Digest, err, damaged)
		}
		b, err := ReadVerified(ctx, r, layer, MaxManifestSize)
		if err != nil {
			return nil, &CheckError{Msg: fmt.Sprintf("%s: catalog signature %s: bundle: %v", r.Path, d.Digest, err)}
		}
		out = append(out, CatalogSignature{Manifest: d, Bundle: b, PredicateType: predicateType})
	}
	return out, nil
}

// ParseSignatureManifest reads a catalog signature's referrer manifest mb, which must have exactly the
// shape SignatureManifest writes: an OCI image manifest with the empty config, one Sigstore bundle
// layer, catDigest as its subject, and no field besides. It returns the bundle layer and the predicate
// type its annotation claims.
func ParseSignatureManifest(mb []byte, catDigest digest.Digest) (layer ocispec.Descriptor, predicateType string, err error) {
	var m struct {
		SchemaVersion int                  `json:"schemaVersion"`
		MediaType     string               `json:"mediaType"`
		ArtifactType  string               `json:"artifactType"`
		Config        ocispec.Descriptor   `json:"config"`
		Layers        []ocispec.Descriptor `json:"layers"`
		Subject       *ocispec.Descriptor  `json:"subject"`
		Annotations   map[string]string    `json:"annotations"`
	}
	dec := json.NewDecoder(bytes.NewReader(mb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return layer, "", fmt.Errorf("not a signature manifest of the shape airlock writes: %v", err)
	}
	if dec.More() {
		return layer, "", errors.New("not a signature manifest: data after the JSON object")
	}
	empty := ocispec.DescriptorEmptyJSON
	switch {
	case m.SchemaVersion != 2 || m.MediaType != ocispec.MediaTypeImageManifest:
		return layer, "", fmt.Errorf("schema version %d, media type %q: not an OCI image manifest", m.SchemaVersion, m.MediaType)
	case m.ArtifactType != BundleMediaType:
		return layer, "", fmt.Errorf("artifact type %q, not %s", m.ArtifactType, BundleMediaType)
	case m.Config.MediaType != empty.MediaType || m.Config.Digest != empty.Digest || m.Config.Size != empty.Size:
		return layer, "", fmt.Errorf("config %s (%s), not the empty config", m.Config.Digest, m.Config.MediaType)
	case len(m.Layers) != 1 || m.Layers[0].MediaType != BundleMediaType:
		return layer, "", fmt.Errorf("%d layers: a signature has exactly one, a Sigstore bundle (%s)", len(m.Layers), BundleMediaType)
	case m.Subject == nil || m.Subject.Digest != catDigest:
		return layer, "", fmt.Errorf("not a referrer of catalog %s", catDigest)
	}
	return m.Layers[0], m.Annotations[AnnotationBundlePredicateType], nil
}

// Sign attaches a signature to the catalog of the archive at p: a directory, or tar volumes (NAME.tar,
// NAME.tar.000). sign is given the catalog's descriptor and returns the Sigstore bundle.
//   - A directory: the signature's blobs are stored, then index.json is replaced atomically; nothing
//     else is touched.
//   - Tar volumes: only the stream's tail is written again. index.json is the stream's last entry;
//     from where it starts, the signature's blobs and a new index.json are written. The volume that
//     holds that point is copied up to it (in the kernel, where the file system can), the new tail
//     goes after, and it and any new volume replace the old ones, the volume list last; the volumes
//     before it are neither read nor written (a run stopped half way leaves volumes that disagree
//     with their list, which load and verify refuse).
func Sign(ctx context.Context, p string, sign func(catDesc ocispec.Descriptor) ([]byte, error)) (ocispec.Descriptor, error) {
	r, err := Open(ctx, p)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer r.Close()
	_, catDesc, err := r.Catalog(ctx)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	b, err := sign(catDesc)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if len(r.Volumes) > 0 {
		return signVolumes(r, catDesc, b)
	}
	l, err := CreateLayout(p)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	for _, d := range r.Index.Manifests {
		l.AddEntry(d)
	}
	desc, err := l.AttachCatalogSignature(ctx, catDesc, b, time.Now())
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return desc, l.Commit()
}

// signVolumes writes the tail of r's tar stream again, from where index.json starts, with the
// signature b of catDesc added (see Sign).
func signVolumes(r *Reader, catDesc ocispec.Descriptor, b []byte) (ocispec.Descriptor, error) {
	base := BaseName(r.Path)
	var size int64 // one file NAME.tar
	switch {
	case len(r.Volumes) > 1:
		size = r.Volumes[0].Size
	case r.Volumes[0].Name != filepath.Base(base):
		size = 1 << 62 // one volume NAME.tar.000: keep the name
	}
	blobs, entry, err := catalogSignature(catDesc, b, time.Now())
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	idx := r.Index
	idx.Manifests = append(append([]ocispec.Descriptor(nil), r.Index.Manifests...), entry)
	ib, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	tfs, ok := r.fsys.(*tarFS)
	if !ok {
		return ocispec.Descriptor{}, fmt.Errorf("sign %s: not read from tar volumes", r.Path)
	}
	tail, err := tfs.indexStart()
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("sign %s: %w", r.Path, err)
	}
	first := 0 // the volume that holds the tail's start
	if size > 0 {
		first = int(tail / size)
	}
	vf := &volumeFiles{base: base, size: size}
	vf.remove() // partial volumes an earlier run left
	fail := func(err error) (ocispec.Descriptor, error) {
		vf.remove()
		return ocispec.Descriptor{}, fmt.Errorf("sign %s: %w", r.Path, err)
	}
	if err := copyHead(filepath.Join(filepath.Dir(base), r.Volumes[first].Name), vf.partial(first), tail-int64(first)*size); err != nil {
		return fail(err)
	}
	pos := tail
	for _, bl := range blobs {
		name := blobName(bl.desc.Digest)
		if _, ok := tfs.files[name]; ok {
			continue
		}
		tfs.files[name] = tarEntry{}
		if pos, err = vf.appendEntry(pos, name, bl.b); err != nil {
			return fail(err)
		}
	}
	if pos, err = vf.appendEntry(pos, ocispec.ImageIndexFile, ib); err != nil {
		return fail(err)
	}
	if err := vf.WriteAt(make([]byte, 1024), pos); err != nil { // the end-of-archive marker
		return fail(err)
	}
	old := r.Volumes
	r.Close()                                                                 // the new volumes replace these
	if _, err := vf.finish(pos+1024, hasSums(old), old[:first]); err != nil { // a list with sums keeps them
		return ocispec.Descriptor{}, fmt.Errorf("sign %s: %w", r.Path, err)
	}
	entry.Annotations = nil
	return entry, nil
}

// copyHead copies the first n bytes of file from into a new file to (copy_file_range on Linux: in the
// kernel, or shared blocks where the file system can).
func copyHead(from, to string, n int64) error {
	src, err := openRegular(from, "volume "+filepath.Base(from), volumeFix)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return &LocalWriteError{Path: to, Err: err}
	}
	copied, err := io.Copy(dst, io.LimitReader(src, n))
	if err = errors.Join(err, dst.Close()); err != nil {
		return &LocalWriteError{Path: to, Err: err, Need: n - copied}
	}
	if copied != n {
		return fmt.Errorf("%s: %d bytes, shorter than the %d the stream needs from it: %w", from, copied, n, io.ErrUnexpectedEOF)
	}
	return nil
}
