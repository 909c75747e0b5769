package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/verify"
)

type saveOptions struct {
	config     string
	output     string
	volumeSize string
	volumeSums bool
	dryRun     bool
	verify     bool
	since      string
	signKey    string
	keepGoing  bool
	pinOut     string
}

func newSaveCmd(g *globalOptions) *cobra.Command {
	o := &saveOptions{}
	cmd := &cobra.Command{
		Use:   "save -c IMAGESET -o DIR|NAME.tar",
		Short: "Mirror an image set, with its signatures, SBOMs and attestations, into an archive",
		Long: `save resolves every image of the ImageSet file, finds every signature, SBOM and attestation
attached to it (OCI 1.1 referrers API, the referrers tag schema where a registry has no API, and
cosign's sha256-<hex>.sig/.att/.sbom tags), and writes one OCI image layout archive with the trust
material the ImageSet names. Manifests are stored byte for byte; every blob is checked against its
digest as it streams.

-o DIR writes a directory; -o NAME.tar writes a tar, split into NAME.tar.000, .001, ... with
--volume-size, with the volume list NAME.tar.sha256 (each volume's size and name, in order: load and
verify find a missing or truncated volume before reading anything). --volume-sums writes each
volume's sha256 into that list instead, in sha256sum -c format, for sites that check media with
standard tools; it reads every volume once more after they are written. Running save again into the
same directory reuses the blobs already there (an interrupted save resumes).

--sign-key signs the catalog, which lists every digest of the archive and carries its trust
material, with a cosign private key: the site pins the public key (load/verify --archive-key) and
then trusts nothing in the archive that the signature does not cover. Use airlock sign to sign an
existing archive on a separate signing station.

Repositories entries are resolved by listing their tags (every page) and picking them with their
filters; --dry-run shows each tag listed, picked or dropped, with the rule that decided. Blocked
images are never saved; the report names each with its rule. Every resolution problem (a missing tag,
repository or digest, a moved tag) is reported at once, and nothing is written; with --keep-going,
what resolves is saved, the rest is listed at the end and in the catalog, and the exit status is 1.

Charts entries (Helm charts, docs/imageset.md) are fetched from their HTTP chart repository, each
.tgz checked against the digest index.yaml gives, or from OCI; each travels as an OCI chart
artifact (what helm push stores), and is rendered with Helm's engine to find the images it runs:
--dry-run lists each version picked or dropped, and each image with the template or annotation that
named it; the catalog records it, and inspect shows it.
The archive holds the resolved image set pinned by digest (imageset.pinned.yaml); --pin-out FILE
writes it to FILE too, so that save -c FILE later moves exactly the same images.`,
		Example: `  airlock save -c imageset.yaml -o /media/usb/airlock
  COSIGN_PASSWORD=... airlock save -c imageset.yaml -o /media/usb/airlock --sign-key transfer.key
  airlock save -c imageset.yaml -o /media/usb/airlock.tar --volume-size 4GiB
  airlock save -c imageset.yaml -o /media/usb/airlock.tar --volume-size 4GiB --volume-sums
  airlock save -c imageset.yaml -o out --dry-run --format json
  airlock save -c imageset.yaml -o /media/usb/airlock --keep-going --pin-out imageset.pinned.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSave(cmd, g, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.config, "config", "c", "", "ImageSet file (required)")
	f.StringVarP(&o.output, "output", "o", "", "archive to write: a directory, or NAME.tar (required unless --dry-run)")
	f.StringVar(&o.volumeSize, "volume-size", "", "split a tar archive into volumes of this size (e.g. 4GiB, 700MB)")
	f.BoolVar(&o.volumeSums, "volume-sums", false, "write each tar volume's sha256 into NAME.tar.sha256, for sha256sum -c (one more read of the volumes)")
	f.BoolVar(&o.dryRun, "dry-run", false, "resolve and discover everything, print the plan, write nothing")
	f.StringVar(&o.since, "since", "", "write a delta: only what this previous archive lacks (its catalog becomes the base)")
	f.StringVar(&o.signKey, "sign-key", "", "cosign private key that signs the archive's catalog (password from COSIGN_PASSWORD, or asked on the terminal)")
	f.BoolVar(&o.keepGoing, "keep-going", false, "save what resolves; list what does not at the end and in the catalog, and exit 1")
	f.StringVar(&o.pinOut, "pin-out", "", "also write the resolved image set, every image pinned by digest, to this file")
	f.BoolVar(&o.verify, "verify", false, "verify every image against the ImageSet's trust material before writing anything; stop if one fails")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
	return cmd
}

func runSave(cmd *cobra.Command, g *globalOptions, o *saveOptions) error {
	volSize, err := o.volumeBytes()
	if err != nil {
		return err
	}
	set, err := config.Load(o.config)
	if err != nil {
		return err
	}
	regs, err := g.registries()
	if err != nil {
		return err
	}
	opts := mirror.SaveOptions{
		Output:      o.output,
		VolumeSize:  volSize,
		VolumeSums:  o.volumeSums,
		DryRun:      o.dryRun,
		Concurrency: g.concurrency,
		Version:     version(),
		Since:       o.since,
		Retry:       g.retry(),
		Log:         g.logger(),
		KeepGoing:   o.keepGoing,
		PinOut:      o.pinOut,
		Warn:        warn(cmd),
	}
	if g.stderrIsTerminal() {
		opts.Progress = &barProgress{desc: "saving"}
		opts.PlanProgress = &barProgress{desc: "resolving", count: true}
	}
	var signedBy *verify.KeyRef
	if o.signKey != "" && !o.dryRun {
		k, err := verify.LoadSigningKey(o.signKey, signingPassword(cmd))
		if err != nil {
			return err
		}
		opts.SignKey, signedBy = k, &verify.KeyRef{Name: k.Name, Hint: k.Hint}
	}
	if o.verify {
		if opts.Trust, err = verify.TrustFromImageSet(set); err != nil {
			return err
		}
	}
	sum, err := mirror.Save(cmd.Context(), set, regs, opts)
	// A failed check (a moved tag, say) exits 1 by its error (main.run: plan.ErrCheckFailed).
	if re := (*plan.ResolutionError)(nil); errors.As(err, &re) {
		return fmt.Errorf("save: nothing written: %w", err)
	}
	if err != nil {
		return err
	}
	if err := o.report(cmd, g, sum, signedBy); err != nil {
		return err
	}
	if note := mirror.SparseSaveNotice(sum.Images); note != "" {
		fmt.Fprintln(cmd.ErrOrStderr(), note)
	}
	if len(sum.LeftOut) > 0 {
		return leftOutError(fmt.Sprintf("saved %d images", len(sum.Images)), sum.LeftOut)
	}
	return nil
}

// volumeBytes checks -o and --volume-size together and returns the volume size in bytes (0: one file).
func (o *saveOptions) volumeBytes() (int64, error) {
	if o.output == "" && !o.dryRun {
		return 0, errors.New("save: -o DIR or -o NAME.tar is required")
	}
	if o.volumeSums && !mirror.IsTarOutput(o.output) {
		return 0, fmt.Errorf("--volume-sums needs a tar output: -o NAME.tar (got %q)", o.output)
	}
	if o.volumeSize == "" {
		return 0, nil
	}
	if !mirror.IsTarOutput(o.output) {
		return 0, fmt.Errorf("--volume-size needs a tar output: -o NAME.tar (got %q)", o.output)
	}
	n, err := parseSize(o.volumeSize)
	if err != nil {
		return 0, fmt.Errorf("--volume-size: %w", err)
	}
	return n, nil
}

// report prints the summary, and who signed the catalog or how to sign it.
func (o *saveOptions) report(cmd *cobra.Command, g *globalOptions, sum *mirror.SaveSummary, signedBy *verify.KeyRef) error {
	return g.emit(cmd, struct {
		*mirror.SaveSummary
		SignedBy *verify.KeyRef `json:"signedBy,omitempty"`
	}{sum, signedBy}, func(w io.Writer) error {
		if err := printSaveSummary(w, sum); err != nil {
			return err
		}
		if signedBy != nil {
			fmt.Fprintf(w, "catalog signed by %s (key hint %s)\n", signedBy.Name, signedBy.Hint)
		} else if !o.dryRun {
			fmt.Fprintf(w, "catalog not signed: the site cannot pin this archive with --archive-key; sign it with airlock sign %s --key KEY\n", o.output)
		}
		return nil
	})
}

func printSaveSummary(w io.Writer, s *mirror.SaveSummary) error {
	var b strings.Builder
	printRepositories(&b, s.Repositories, s.DryRun)
	printCharts(&b, s.Charts, s.DryRun)
	printBlocked(&b, s.Blocked)
	if s.DryRun {
		fmt.Fprintf(&b, "plan (dry run, nothing written):\n")
		for _, img := range s.Images {
			fmt.Fprintf(&b, "  %s  %s", img.Source, img.Digest)
			if len(img.Platforms) > 0 {
				ps := make([]string, len(img.Platforms))
				for i, p := range img.Platforms {
					ps[i] = p.Platform
				}
				fmt.Fprintf(&b, "  [%s]", strings.Join(ps, ", "))
			}
			b.WriteString("\n")
		}
	} else {
		fmt.Fprintf(&b, "saved %s (catalog %s)\n", s.Archive, s.Catalog)
	}
	fmt.Fprintf(&b, "images:    %d (%d platform manifests, %d manifests in all)\n", len(s.Images), s.Platforms, s.Manifests)
	fmt.Fprintf(&b, "referrers: %d", s.Referrers)
	if s.Referrers > 0 {
		fmt.Fprintf(&b, " (%s; found by %s)", countList(s.ReferrersByKind), countList(s.ReferrersByMethod))
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "blobs:     %d, %s", s.Blobs, archive.HumanBytes(s.Bytes))
	if !s.DryRun {
		fmt.Fprintf(&b, " (%d fetched, %s; %d already in the archive)", s.Copy.Copied, archive.HumanBytes(s.Copy.BytesCopied), s.Copy.Skipped)
	}
	b.WriteString("\n")
	for _, v := range s.Volumes {
		fmt.Fprintf(&b, "volume:    %s  %s", v.Name, archive.HumanBytes(v.Size))
		if v.SHA256 != "" {
			fmt.Fprintf(&b, "  sha256:%s", v.SHA256)
		}
		b.WriteString("\n")
	}
	if s.PinnedTo != "" {
		fmt.Fprintf(&b, "pinned:    %s (every image by digest; save -c %s moves exactly these)\n", s.PinnedTo, s.PinnedTo)
	}
	fmt.Fprintf(&b, "time:      %.1fs\n", s.Seconds)
	printLeftOut(&b, s.LeftOut)
	_, err := io.WriteString(w, b.String())
	return err
}

func countList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", m[k], k)
	}
	return strings.Join(parts, ", ")
}
