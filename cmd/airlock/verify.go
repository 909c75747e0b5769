package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror"
	"airlock.dev/airlock/verify"
)

type verifyOptions struct {
	keys        []string
	policy      string
	trustedRoot string
	archive     string
	imageSet    string
	keepHost    bool
}

func newVerifyCmd(g *globalOptions) *cobra.Command {
	o := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify ARCHIVE | HOST[:PORT]/PREFIX",
		Short: "Verify signatures and attestations offline against the bundled trust roots and policy",
		Long: `verify checks every image of an archive, or of the site registry after a load, against the trust
material: cosign public keys, the Sigstore trusted root (keyless signatures) and the policy, as stored
in the archive, or as given with --key, --trusted-root and --policy. It makes no network call except
to the registry named.

Sigstore bundles attached as OCI referrers (cosign v3), legacy cosign .sig signatures and .att
attestations are checked. A signature counts only for the digest it signs: the index, or one platform
manifest (an image passes when its index is signed, or every platform manifest saved is). An
attestation is not a signature. Without a policy, every image must carry a valid signature by one of
the keys. --key replaces the archive's keys and policy.

For a registry, name the images with --archive (its catalog, trust material and digests) or with -c
(an ImageSet and its trust section); they are mapped to the registry as load maps them.

Exit status: 0 every image passes; 1 an image fails; 2 usage or I/O error.`,
		Example: `  airlock verify /media/usb/airlock
  airlock verify registry.site:5000/mirror --archive /media/usb/airlock
  airlock verify /media/usb/airlock --key release.pub --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.validate(); err != nil {
				return err
			}
			results, trust, err := runVerify(cmd.Context(), g, o, args[0])
			if err != nil {
				return err
			}
			return reportVerify(cmd, g, trust, results)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.keys, "key", nil, "cosign public key (PEM); replaces the archive's keys and policy (repeatable)")
	f.StringVar(&o.policy, "policy", "", "policy file; replaces the archive's policy")
	f.StringVar(&o.trustedRoot, "trusted-root", "", "Sigstore trusted_root.json; replaces the archive's")
	f.StringVar(&o.archive, "archive", "", "for a registry: the archive whose catalog names the images and holds the trust material")
	f.StringVarP(&o.imageSet, "config", "c", "", "for a registry: the ImageSet naming the images and the trust material")
	f.BoolVar(&o.keepHost, "keep-host", false, "the registry keeps source hosts as path elements (as load --keep-host)")
	return cmd
}

func runVerify(ctx context.Context, g *globalOptions, o *verifyOptions, target string) ([]verify.Result, *verify.Trust, error) {
	var plans []*mirror.ImagePlan
	var trust *verify.Trust
	archivePath := ""
	switch {
	case isArchivePath(target):
		archivePath = target
	case o.archive != "":
		archivePath = o.archive
	case o.imageSet == "":
		return nil, nil, fmt.Errorf("verify %s: name the images with --archive ARCHIVE or -c IMAGESET", target)
	}
	var cat *archive.Catalog
	if archivePath != "" {
		r, err := archive.Open(ctx, archivePath)
		if err != nil {
			return nil, nil, err
		}
		defer r.Close()
		if cat, _, err = r.Catalog(ctx); err != nil {
			return nil, nil, err
		}
		if trust, err = verify.TrustFromArchive(ctx, r, cat); err != nil {
			return nil, nil, err
		}
		if archivePath == target {
			if plans, err = mirror.PlansFromArchive(ctx, r, cat); err != nil {
				return nil, nil, &checkError{err}
			}
		}
	}
	if o.imageSet != "" && archivePath == "" {
		set, err := config.Load(o.imageSet)
		if err != nil {
			return nil, nil, err
		}
		if trust, err = verify.TrustFromImageSet(set); err != nil {
			return nil, nil, err
		}
		for _, img := range set.Images {
			cat = appendImage(cat, img)
		}
	}
	if err := o.override(trust); err != nil {
		return nil, nil, err
	}
	if plans == nil {
		regs, err := g.registries()
		if err != nil {
			return nil, nil, err
		}
		if plans, err = planOnRegistry(ctx, g, regs, cat, target, o.keepHost); err != nil {
			return nil, nil, err
		}
	}
	return trust.Plans(ctx, plans), trust, nil
}

// override applies --key, --policy and --trusted-root.
func (o *verifyOptions) override(t *verify.Trust) error {
	if len(o.keys) == 0 && o.policy == "" && o.trustedRoot == "" {
		return nil
	}
	f, err := verify.TrustFromFiles(o.keys, o.trustedRoot, o.policy)
	if err != nil {
		return err
	}
	if len(o.keys) > 0 || o.policy != "" {
		t.Keys, t.Policy = f.Keys, f.Policy
	}
	if f.TrustedRoot != nil {
		t.TrustedRoot = f.TrustedRoot
	}
	var given []string
	for flag, set := range map[string]bool{"--key": len(o.keys) > 0, "--policy": o.policy != "", "--trusted-root": o.trustedRoot != ""} {
		if set {
			given = append(given, flag)
		}
	}
	sort.Strings(given)
	t.Source += " with " + strings.Join(given, ", ")
	return nil
}

func appendImage(cat *archive.Catalog, img config.Image) *archive.Catalog {
	if cat == nil {
		cat = &archive.Catalog{}
	}
	cat.Images = append(cat.Images, archive.Image{Source: img.String(), Repository: img.RepositoryRef(), Tag: img.Tag, Digest: img.Digest, Target: img.Target})
	return cat
}

// planOnRegistry finds each catalog image in the registry (mapped as load maps it; by tag and, when
// the catalog pins it, by digest) and discovers its referrers there.
func planOnRegistry(ctx context.Context, g *globalOptions, regs *mirror.Registries, cat *archive.Catalog, to string, keepHost bool) ([]*mirror.ImagePlan, error) {
	planner := &mirror.Planner{Registries: regs, Referrers: config.Referrers{Enabled: true, All: true}, Log: g.logger()}
	var plans []*mirror.ImagePlan
	for _, img := range cat.Images {
		src, err := config.ParseReference(img.Source)
		if err != nil {
			return nil, err
		}
		src.Target = img.Target
		name, err := mirror.TargetRepository(to, keepHost, src)
		if err != nil {
			return nil, err
		}
		host, path, _ := strings.Cut(name, "/")
		at := config.Image{Registry: host, Repository: path, Tag: src.Tag, Digest: img.Digest}
		if at.Digest == "" {
			at.Digest = src.Digest
		}
		p, err := planner.Plan(ctx, at)
		if err != nil {
			if errors.Is(err, mirror.ErrCheckFailed) {
				return nil, &checkError{err}
			}
			return nil, err
		}
		p.Image, p.Source = src, img.Source
		plans = append(plans, p)
	}
	return plans, nil
}

func reportVerify(cmd *cobra.Command, g *globalOptions, trust *verify.Trust, results []verify.Result) error {
	failed := 0
	for _, r := range results {
		if !r.Passed {
			failed++
		}
	}
	var err error
	if g.format == "json" {
		enc := json.NewEncoder(out(cmd))
		enc.SetIndent("", "  ")
		err = enc.Encode(struct {
			Trust   string          `json:"trust"`
			Passed  bool            `json:"passed"`
			Results []verify.Result `json:"results"`
		}{trust.Source, failed == 0, results})
	} else {
		err = printVerify(out(cmd), trust, results)
	}
	if err != nil {
		return err
	}
	if failed > 0 {
		return &checkError{fmt.Errorf("%d of %d images failed verification", failed, len(results))}
	}
	return nil
}

func printVerify(w io.Writer, trust *verify.Trust, results []verify.Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "trust: %s\n\n", trust.Source)
	for _, r := range results {
		verdict := "PASS"
		if !r.Passed {
			verdict = "FAIL"
		}
		fmt.Fprintf(&b, "%s  %s  %s", verdict, r.Source, r.Digest)
		if r.Rule != "" {
			fmt.Fprintf(&b, "  (rule: %s)", r.Rule)
		}
		b.WriteString("\n")
		for _, c := range r.Signatures {
			printCheck(&b, "signature", c)
		}
		for _, c := range r.Attestations {
			printCheck(&b, "attestation", c)
		}
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "      failed: %s\n", f)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func printCheck(b *strings.Builder, what string, c verify.Check) {
	state := "valid, by " + c.Signer
	if !c.Valid {
		state = "INVALID: " + c.Reason
	}
	pt := ""
	if what == "attestation" {
		pt = " " + c.PredicateType
	}
	fmt.Fprintf(b, "      %-11s on %-12s %-10s%s  %s  %s\n", what, c.Covers, c.Format, pt, c.Referrer.Encoded()[:12], state)
}
