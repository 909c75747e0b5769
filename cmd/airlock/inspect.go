package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/verify"
)

func newInspectCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect ARCHIVE",
		Short: "Show what an archive holds: images, platforms, referrers, trust material",
		Long: `inspect reads the catalog of an archive (a directory, NAME.tar, or NAME.tar.000) and prints
the tree image -> platforms -> referrers, with each referrer's kind, artifact type, how it was found
and its digest, and each signature of the catalog with the key hint it claims (verify checks them).
Tar volumes are checked against their list (names, sizes, order) and their tar headers indexed;
nothing is hashed whole, so it is quick on a large archive (load and verify hash every byte).
--format json prints the catalog itself, with its signatures.`,
		Example: `  airlock inspect /media/usb/airlock
  airlock inspect /media/usb/airlock.tar.000 --format json`,
		Args: cobra.ExactArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveDefault
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInspect(cmd, g, args[0])
		},
	}
}

// inspectSignature is a catalog signature as inspect shows it: not verified (verify does that), only
// named by the key hint it claims.
type inspectSignature struct {
	Digest  digest.Digest `json:"digest"`
	KeyHint string        `json:"keyHint"`
}

func catalogSignatures(cmd *cobra.Command, r *archive.Reader, catDigest digest.Digest) ([]inspectSignature, error) {
	sigs, err := r.CatalogSignatures(cmd.Context(), catDigest)
	if err != nil {
		return nil, plan.CheckFailed(err)
	}
	out := []inspectSignature{}
	for _, s := range sigs {
		out = append(out, inspectSignature{s.Manifest.Digest, verify.BundleKeyHint(s.Bundle)})
	}
	return out, nil
}

// renderTree draws image -> platforms -> referrers (recursively) from the catalog.
func renderTree(path string, catDigest digest.Digest, c *archive.Catalog, sigs []inspectSignature) string {
	bySubject := map[digest.Digest][]archive.Referrer{}
	for _, r := range c.Referrers {
		bySubject[r.Subject] = append(bySubject[r.Subject], r)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n  catalog %s, written %s by %s %s\n", path, catDigest, c.Created.Format("2006-01-02 15:04:05Z"), c.Tool.Name, c.Tool.Version)
	if len(sigs) == 0 {
		b.WriteString("  not signed (airlock sign ARCHIVE --key KEY; the site pins the key with --archive-key)\n")
	}
	for _, s := range sigs {
		fmt.Fprintf(&b, "  signature %s, key hint %s (not verified here: airlock verify --archive-key)\n", s.Digest, s.KeyHint)
	}
	b.WriteString("\n")
	for _, img := range c.Images {
		kind := "manifest"
		if len(img.Platforms) > 0 {
			kind = fmt.Sprintf("index, %d platform(s)", len(img.Platforms))
			if img.Sparse {
				kind += " kept of more (sparse)"
			}
		}
		fmt.Fprintf(&b, "%s\n  %s (%s)\n", img.Source, img.Digest, kind)
		type item struct {
			label string
			d     digest.Digest
		}
		var walk func(items []item, prefix string, seen map[digest.Digest]bool)
		walk = func(items []item, prefix string, seen map[digest.Digest]bool) {
			for i, it := range items {
				branch, next := "├── ", "│   "
				if i == len(items)-1 {
					branch, next = "└── ", "    "
				}
				fmt.Fprintf(&b, "%s%s%s\n", prefix, branch, it.label)
				if seen[it.d] {
					continue
				}
				seen[it.d] = true
				var children []item
				for _, r := range bySubject[it.d] {
					children = append(children, item{label: referrerLabel(r), d: r.Digest})
				}
				walk(children, prefix+next, seen)
			}
		}
		var top []item
		for _, p := range img.Platforms {
			top = append(top, item{label: fmt.Sprintf("%s  %s", p.Platform, p.Digest), d: p.Digest})
		}
		for _, r := range bySubject[img.Digest] {
			top = append(top, item{label: referrerLabel(r), d: r.Digest})
		}
		walk(top, "  ", map[digest.Digest]bool{img.Digest: true})
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "trust:\n")
	if len(c.Trust.Keys) == 0 && c.Trust.TrustedRoot == nil && c.Trust.Policy == nil {
		b.WriteString("  none\n")
	}
	for _, k := range c.Trust.Keys {
		fmt.Fprintf(&b, "  key           %s  %s\n", k.Name, k.Digest)
	}
	if f := c.Trust.TrustedRoot; f != nil {
		fmt.Fprintf(&b, "  trusted root  %s  %s\n", f.Name, f.Digest)
	}
	if f := c.Trust.Policy; f != nil {
		fmt.Fprintf(&b, "  policy        %s  %s\n", f.Name, f.Digest)
	}
	renderResolution(&b, c)
	t := c.Totals
	fmt.Fprintf(&b, "\ntotals: %d images, %d manifests, %d referrers, %d blobs, %s\n", t.Images, t.Manifests, t.Referrers, t.Blobs, archive.HumanBytes(t.Bytes))
	return b.String()
}

// renderResolution lists the pinned image set, the images the blocked list kept out and those left
// out because they did not resolve (save --keep-going).
func renderResolution(b *strings.Builder, c *archive.Catalog) {
	if f := c.Trust.ImageSet; f != nil {
		fmt.Fprintf(b, "  image set     %s  %s\n", f.Name, f.Digest)
	}
	if len(c.Charts) > 0 {
		fmt.Fprintf(b, "\ncharts (%d, each with the images it runs and why):\n", len(c.Charts))
		for _, ch := range c.Charts {
			fmt.Fprintf(b, "  from %s\n", ch.Entry)
			printChart(b, ch, "  ")
		}
	}
	if len(c.Blocked) > 0 {
		fmt.Fprintf(b, "\nblocked (%d, kept out by the image set's blocked list):\n", len(c.Blocked))
		for _, x := range c.Blocked {
			fmt.Fprintf(b, "  %s  (rule %s", x.Source, x.Rule)
			if len(x.Charts) > 0 {
				fmt.Fprintf(b, "; run by chart %s", strings.Join(x.Charts, ", "))
			}
			b.WriteString(")\n")
		}
	}
	if len(c.LeftOut) > 0 {
		fmt.Fprintf(b, "\nleft out (%d, did not resolve when saved with --keep-going):\n", len(c.LeftOut))
		for _, l := range c.LeftOut {
			fmt.Fprintf(b, "  %s\n    %s\n", l.Source, l.Reason)
		}
	}
}

func referrerLabel(r archive.Referrer) string {
	how := r.FoundBy
	if r.Tag != "" {
		how += " " + r.Tag
	}
	return fmt.Sprintf("%s  %s  (%s)  %s", r.Kind, r.ArtifactType, how, r.Digest)
}

func runInspect(cmd *cobra.Command, g *globalOptions, path string) error {
	r, err := plan.OpenArchiveIndex(cmd.Context(), path)
	if err != nil {
		return err
	}
	defer r.Close()
	cat, desc, err := r.Catalog(cmd.Context())
	if err != nil {
		return err
	}
	// Index and catalog must agree; blobs are not hashed here (load and verify do).
	if err := archive.Check(r, cat); err != nil {
		return plan.CheckFailed(err)
	}
	sigs, err := catalogSignatures(cmd, r, desc.Digest)
	if err != nil {
		return err
	}
	return g.emit(cmd, struct {
		archive.CatalogFile
		Signatures []inspectSignature `json:"signatures"`
	}{archive.CatalogFile{Digest: desc.Digest, Catalog: *cat}, sigs}, func(w io.Writer) error {
		_, err := io.WriteString(w, renderTree(path, desc.Digest, cat, sigs))
		return err
	})
}
