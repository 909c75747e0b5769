package mirror

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/registry"
	"airlock.dev/airlock/verify"
)

// SaveOptions controls Save.
type SaveOptions struct {
	// Output is the archive: a directory, or NAME.tar for a tar stream.
	Output string
	// VolumeSize splits a tar archive into volumes of this many bytes; 0 writes one file.
	VolumeSize int64
	// VolumeSums writes each tar volume's sha256 into the volume list (sha256sum -c format), in one
	// read of the volumes once they are written; without it the list holds their sizes.
	VolumeSums bool
	// DryRun resolves and discovers everything, and writes nothing.
	DryRun bool
	// Concurrency bounds parallel image planning and blob transfers.
	Concurrency int
	// Version is the tool version recorded in the catalog.
	Version string
	Log     *slog.Logger
	// Progress, if set, shows bytes moved.
	Progress plan.Progress
	// PlanProgress, if set, counts images resolved (with their referrers) before anything moves.
	PlanProgress plan.Progress
	// Since names a previous archive: only what it lacks is written (a delta), and the catalog names
	// the previous catalog as its base.
	Since string
	// Retry bounds retries of failed transfers; zero means registry.DefaultRetry.
	Retry registry.Retry
	// Trust, if set, verifies every image before anything is written (save --verify): one that fails
	// stops the save, named to Warn and in the error.
	Trust *verify.Trust
	Warn  func(string)
	// SignKey, if set, signs the catalog manifest (a Sigstore bundle); the signature is attached to the
	// catalog before index.json is written, so the archive is never complete and unsigned.
	SignKey Signer
	// KeepGoing saves the images that resolve and records the others in the catalog (LeftOut),
	// instead of stopping; see PlanSet.
	KeepGoing bool
	// PinOut, if set, is a file to write the resolved image set to, every image pinned by digest (the
	// archive always holds it as imageset.pinned.yaml). Written once the archive is complete, or after
	// the plan for a dry run.
	PinOut string
}

// CopyStats counts what a save copied.
type CopyStats struct {
	Copied  int `json:"copied"`
	Skipped int `json:"skipped"`
	// Resumed counts blobs finished from a partial file an interrupted run left.
	Resumed int `json:"resumed"`
	// BytesFetched counts the bytes actually read from the source (less than BytesCopied on resume).
	BytesFetched int64 `json:"bytesFetched"`
	BytesCopied  int64 `json:"bytesCopied"`
	BytesSkipped int64 `json:"bytesSkipped"`
}

// SaveSummary reports what Save did.
type SaveSummary struct {
	Archive           string             `json:"archive"`
	Catalog           digest.Digest      `json:"catalog,omitempty"`
	DryRun            bool               `json:"dryRun,omitempty"`
	Base              digest.Digest      `json:"base,omitempty"`
	Images            []archive.Image    `json:"images"`
	Platforms         int                `json:"platforms"`
	Manifests         int                `json:"manifests"`
	Referrers         int                `json:"referrers"`
	ReferrersByKind   map[string]int     `json:"referrersByKind"`
	ReferrersByMethod map[string]int     `json:"referrersByMethod"`
	ReferrerList      []archive.Referrer `json:"referrerList,omitempty"`
	Blobs             int                `json:"blobs"`
	Bytes             int64              `json:"bytes"`
	Copy              CopyStats          `json:"copy"`
	Volumes           []archive.Volume   `json:"volumes,omitempty"`
	// Repaired lists blobs an earlier save had stored that no longer hashed to their names: each was
	// removed and fetched again.
	Repaired []digest.Digest `json:"repaired,omitempty"`
	// Repositories says, for each repositories entry, the tags listed, picked and dropped, each with
	// the rule that decided.
	Repositories []plan.RepositoryReport `json:"repositories,omitempty"`
	// Charts says, for each charts entry, the chart versions listed and picked, and the images each
	// chart runs, with why.
	Charts []plan.ChartReport `json:"charts,omitempty"`
	// Blocked lists the images the blocked list kept out, with the rule; LeftOut what did not resolve
	// (with KeepGoing), with why. The catalog records both.
	Blocked []archive.Blocked `json:"blocked,omitempty"`
	LeftOut []archive.LeftOut `json:"leftOut,omitempty"`
	// PinnedTo is the file the pinned image set was written to (PinOut).
	PinnedTo string  `json:"pinnedTo,omitempty"`
	Seconds  float64 `json:"seconds"`
}

// IsTarOutput reports whether the output names a tar archive rather than a directory.
func IsTarOutput(out string) bool { return strings.HasSuffix(out, ".tar") }

// Save resolves set, discovers every referrer and writes the archive with its catalog and trust
// material. Tags (index.json) and the catalog are written last: an interrupted save leaves no
// index.json naming a catalog, and running it again reuses the blobs already stored, each only once
// it is known to be right (hashed when stored, or again now if its file changed since: see
// archive.Layout.Exists); a stored blob that is wrong is fetched again.
func Save(ctx context.Context, set *config.ImageSet, regs *registry.Registries, opts SaveOptions) (*SaveSummary, error) {
	start := time.Now()
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Concurrency < 1 {
		opts.Concurrency = 8
	}
	trust, err := readTrust(set)
	if err != nil {
		return nil, err
	}
	var local plan.Source
	if !IsTarOutput(opts.Output) && opts.Output != "" {
		local = archive.LocalBlobs(opts.Output) // an earlier save into the same directory
	}
	sp, err := plan.PlanSet(ctx, set, regs, plan.PlanOptions{Concurrency: opts.Concurrency, Log: opts.Log, Retry: opts.Retry, Local: local, Progress: opts.PlanProgress, KeepGoing: opts.KeepGoing})
	if err != nil {
		return nil, err
	}
	if len(sp.Plans) == 0 && !opts.DryRun {
		return nil, fmt.Errorf("%s: the image set resolved to no image: nothing to save (save --dry-run shows which rule dropped each tag and which blocked each image)", set.Path)
	}
	if opts.Trust != nil {
		if _, _, err := gate(ctx, opts.Trust, sp.Plans, opts.Warn); err != nil {
			return nil, fmt.Errorf("save --verify: nothing written: %w", err)
		}
	}
	cat := catalogOf(sp.Plans, opts.Version)
	cat.LeftOut, cat.Blocked = sp.LeftOut, sp.Blocked
	for _, r := range sp.Charts {
		cat.Charts = append(cat.Charts, r.Charts...)
	}
	inBase := func(ocispec.Descriptor) bool { return false }
	if opts.Since != "" {
		base, err := archive.OpenBase(ctx, opts.Since)
		if err != nil {
			return nil, fmt.Errorf("--since: %w", err)
		}
		defer base.Close()
		cat.Base = base.Digest
		cat.Contents = mergeDigests(cat.Contents, base.Contents)
		inBase = func(d ocispec.Descriptor) bool { return base.Has(ctx, d) }
	}
	sum := summarize(cat, opts.Output)
	sum.Base, sum.DryRun = cat.Base, opts.DryRun
	sum.Repositories, sum.Charts, sum.Blocked, sum.LeftOut = sp.Repositories, sp.Charts, sp.Blocked, sp.LeftOut
	if !opts.DryRun {
		pinned, err := pinnedFile(set, sp.Plans, pinnedCharts(set, sp.Charts)...)
		if err != nil {
			return nil, err
		}
		trust = append(trust, *pinned)
		if err := writeArchive(ctx, sp.Plans, cat, trust, inBase, opts, sum); err != nil {
			return nil, err
		}
		for _, d := range sum.Repaired {
			opts.Log.Warn("a stored blob did not hash to its name: removed and fetched again", "archive", opts.Output, "digest", d)
		}
	}
	if opts.PinOut != "" && len(sp.Plans) > 0 {
		if err := writePinned(set, sp.Plans, opts.PinOut, pinnedCharts(set, sp.Charts)...); err != nil {
			return nil, err
		}
		sum.PinnedTo = opts.PinOut
	}
	sum.Seconds = time.Since(start).Seconds()
	return sum, nil
}

// writeArchive copies plans into the archive (a layout directory, or straight into tar volumes), then stores the trust files, the catalog and its signature, and writes index.json last.
func writeArchive(ctx context.Context, plans []*plan.ImagePlan, cat *archive.Catalog, trust []trustFile, inBase func(ocispec.Descriptor) bool, opts SaveOptions, sum *SaveSummary) error {
	// Before the first byte: refuse, with both numbers, a run the disk cannot hold.
	if err := archive.CheckSpace(opts.Output, needSpace(plans, inBase, opts.Output)); err != nil {
		return err
	}
	var target engine.Target
	var layout *archive.Layout
	var tarTarget *engine.TarTarget
	if IsTarOutput(opts.Output) {
		t, err := engine.NewTarTarget(opts.Output, opts.VolumeSize, engine.TarContent(plans, inBase))
		if err != nil {
			return err
		}
		defer t.Abort()
		t.Sums = opts.VolumeSums
		tarTarget, target, layout = t, t, t.Layout
	} else {
		l, err := archive.CreateLayout(opts.Output)
		if err != nil {
			return err
		}
		target, layout = &engine.LayoutTarget{Layout: l}, l
	}
	rep, err := engine.Copy(ctx, plans, target, engine.CopyOptions{Concurrency: opts.Concurrency, Log: opts.Log, Progress: opts.Progress, Retry: opts.Retry, Skip: inBase})
	if rep != nil {
		sum.Copy = CopyStats{Copied: rep.Blobs.Pushed, Skipped: rep.Blobs.Skipped, Resumed: rep.Resumed, BytesFetched: rep.BytesFetched, BytesCopied: rep.Blobs.BytesPushed, BytesSkipped: rep.Blobs.BytesSkipped}
	}
	if err != nil {
		return err
	}
	if cat.Trust, err = storeTrust(ctx, layout, trust); err != nil {
		return err
	}
	catDesc, err := layout.WriteCatalog(ctx, cat)
	if err != nil {
		return err
	}
	if opts.SignKey != nil {
		bundle, err := opts.SignKey.SignDigest(catDesc.Digest)
		if err != nil {
			return err
		}
		if _, err := layout.AttachCatalogSignature(ctx, catDesc, bundle, time.Now()); err != nil {
			return err
		}
	}
	sum.Repaired = layout.Repaired()
	if err := layout.Commit(); err != nil {
		return err
	}
	sum.Catalog = catDesc.Digest
	if tarTarget != nil {
		opts.Log.Info("writing tar", "archive", opts.Output, "volumeSize", opts.VolumeSize) // Save set opts.Log
		if sum.Volumes, err = tarTarget.Finish(ctx); err != nil {
			return err
		}
	}
	return nil
}

// catalogOf builds the catalog (without trust material).
func catalogOf(plans []*plan.ImagePlan, version string) *archive.Catalog {
	cat := &archive.Catalog{
		Tool:    archive.Tool{Name: "airlock", Version: version},
		Created: time.Now().UTC().Truncate(time.Second),
	}
	manifests := map[digest.Digest]bool{}
	blobSeen := map[digest.Digest]bool{}
	refSeen := map[string]bool{}
	for _, p := range plans {
		img := archive.Image{
			Source:     p.Source,
			Repository: p.Image.RepositoryRef(),
			Tag:        p.Image.Tag,
			Digest:     p.Root.Desc.Digest,
			MediaType:  p.Root.Desc.MediaType,
			Size:       p.Root.Desc.Size,
			Sparse:     p.Sparse,
			Target:     p.Image.Target,
		}
		for _, c := range p.Root.Children {
			if c.Platform != "" {
				img.Platforms = append(img.Platforms, archive.Platform{Platform: c.Platform, Digest: c.Desc.Digest, MediaType: c.Desc.MediaType, Size: c.Desc.Size})
			}
		}
		cat.Images = append(cat.Images, img)
		for _, n := range p.Nodes() {
			manifests[n.Desc.Digest] = true
			for _, b := range n.Blobs {
				if !blobSeen[b.Digest] {
					blobSeen[b.Digest] = true
					cat.Totals.Bytes += b.Size
				}
			}
		}
		for _, r := range p.Referrers {
			key := r.Desc.Digest.String() + r.Referrer.Subject.String()
			if refSeen[key] {
				continue
			}
			refSeen[key] = true
			cat.Referrers = append(cat.Referrers, archive.Referrer{
				Digest:       r.Desc.Digest,
				MediaType:    r.Desc.MediaType,
				Size:         r.Desc.Size,
				ArtifactType: r.ArtifactType,
				Kind:         r.Kind,
				Subject:      r.Referrer.Subject,
				Repository:   r.Repository,
				FoundBy:      string(r.Referrer.Method),
				Tag:          r.Referrer.Tag,
			})
		}
	}
	cat.Contents = mergeDigests(slices.Collect(maps.Keys(manifests)), slices.Collect(maps.Keys(blobSeen)))
	cat.Totals.Images = len(cat.Images)
	cat.Totals.Manifests = len(manifests)
	cat.Totals.Referrers = len(cat.Referrers)
	cat.Totals.Blobs = len(blobSeen)
	return cat
}

func summarize(cat *archive.Catalog, out string) *SaveSummary {
	s := &SaveSummary{
		Archive:           out,
		Images:            cat.Images,
		Manifests:         cat.Totals.Manifests,
		Referrers:         cat.Totals.Referrers,
		ReferrersByKind:   map[string]int{},
		ReferrersByMethod: map[string]int{},
		ReferrerList:      cat.Referrers,
		Blobs:             cat.Totals.Blobs,
		Bytes:             cat.Totals.Bytes,
	}
	for _, img := range cat.Images {
		s.Platforms += len(img.Platforms)
	}
	for _, r := range cat.Referrers {
		s.ReferrersByKind[r.Kind]++
		s.ReferrersByMethod[r.FoundBy]++
	}
	return s
}

// trustFile is a trust file read from disk (or the pinned image set), to be stored in the archive;
// its media type says which of the catalog's trust files it is.
type trustFile struct {
	name, mediaType string
	data            []byte
}

// readTrust reads the trust material the ImageSet names, before any network work, so a missing key
// fails fast. The ImageSet is stored pinned, once it is resolved (see pinnedFile).
func readTrust(set *config.ImageSet) ([]trustFile, error) {
	var files []trustFile
	read := func(field, p, mt string) error {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("%s: %s: %w; fix the path (relative paths are relative to the ImageSet file)", set.Path, field, err)
		}
		files = append(files, trustFile{name: filepath.Base(p), mediaType: mt, data: b})
		return nil
	}
	for i, k := range set.Trust.Keys {
		if err := read(fmt.Sprintf("trust.keys[%d]", i), k, archive.KeyMediaType); err != nil {
			return nil, err
		}
	}
	if set.Trust.TrustedRoot != "" {
		if err := read("trust.trustedRoot", set.Trust.TrustedRoot, archive.TrustedRootMediaType); err != nil {
			return nil, err
		}
	}
	if set.Policy != "" {
		if err := read("policy", set.Policy, archive.PolicyMediaType); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// storeTrust adds each trust file to the layout and names it in the catalog's Trust by its media
// type; the keys sorted by name (stably: two of one name stay in the ImageSet's order).
func storeTrust(ctx context.Context, l *archive.Layout, files []trustFile) (archive.Trust, error) {
	var out archive.Trust
	for _, f := range files {
		af, err := l.AddFile(ctx, f.name, f.mediaType, f.data)
		if err != nil {
			return out, err
		}
		switch f.mediaType {
		case archive.KeyMediaType:
			out.Keys = append(out.Keys, af)
		case archive.TrustedRootMediaType:
			out.TrustedRoot = &af
		case archive.PolicyMediaType:
			out.Policy = &af
		case archive.ImageSetMediaType:
			out.ImageSet = &af
		}
	}
	sort.SliceStable(out.Keys, func(i, j int) bool { return out.Keys[i].Name < out.Keys[j].Name })
	return out, nil
}

// mergeDigests returns the sorted union of a and b.
func mergeDigests(a, b []digest.Digest) []digest.Digest {
	set := map[digest.Digest]bool{}
	for _, d := range append(append([]digest.Digest(nil), a...), b...) {
		set[d] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// needSpace estimates the bytes a save still has to write: every manifest and blob of the plans that
// is neither in the base nor already stored in the output directory at its size. Tar volumes hold each
// once (see TarTarget); what partial volumes of an earlier run hold is counted as still to write.
func needSpace(plans []*plan.ImagePlan, inBase func(ocispec.Descriptor) bool, output string) int64 {
	stored := output
	seen := map[digest.Digest]bool{}
	var n int64
	for _, p := range plans {
		for _, node := range p.Nodes() {
			for _, d := range append([]ocispec.Descriptor{node.Desc}, node.Blobs...) {
				if seen[d.Digest] || inBase(d) || d.Digest.Validate() != nil {
					continue
				}
				seen[d.Digest] = true
				if fi, err := os.Stat(archive.BlobPath(stored, d.Digest)); err == nil && fi.Size() == d.Size {
					continue
				}
				n += d.Size
			}
		}
	}
	return n
}
