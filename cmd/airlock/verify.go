package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/verify"
)

type verifyOptions struct {
	trust    trustOptions
	archive  string
	imageSet string
	keepHost bool
	keyring  string
}

func newVerifyCmd(g *globalOptions) *cobra.Command {
	o := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify ARCHIVE | HOST[:PORT]/PREFIX",
		Short: "Verify signatures and attestations offline, against trust pinned at the site",
		Long: `verify checks every image of an archive, or of the site registry after a load, against trust
pinned at the site. It makes no network call except to the registry named.

Trust comes from the site, never from the archive alone:
  --archive-key PUB   the archive's catalog must carry a valid signature by one of these keys; the
                      signed catalog then vouches for its keys, trusted root, policy and every digest
  --key, --policy, --trusted-root
                      the images are verified against these only; nothing of the archive's trust
                      material is used (combine with --archive-key: the transfer is signed by one
                      key, the images by another)
  --trust FILE        a site trust file naming any of them (default: $AIRLOCK_TRUST)
With none of them, verify refuses (exit 2); --insecure-archive-trust lets the archive vouch for
itself, with a warning. Every report says where its trust came from, with key hints.

For an archive, every blob the catalog lists (layers included) is hashed against its digest, and
index.json, the manifests and the catalog must agree.

Sigstore bundles attached as OCI referrers (cosign v3), legacy cosign .sig signatures and .att
attestations are checked. A signature counts only for the digest it signs: the index, or one platform
manifest (an image passes when its index is signed, or every platform manifest saved is). An
attestation is not a signature. Without a policy, every image must carry a valid signature by one of
the keys.

Helm charts (the OCI chart artifacts of an ImageSet's charts: entries) are verified as images are, and
with --keyring FILE, an OpenPGP keyring pinned at the site (binary or armored: gpg --export KEYID >
FILE), also by their Helm provenance: every chart must carry its provenance file (.prov) as a layer,
signed by a key of the keyring over the chart's .tgz, exactly as helm verify checks it. A chart
without one fails, named. The keyring can be pinned in the site trust file instead (keyring: FILE);
the flag wins. Without it, charts are verified as images only.

For a registry, name the images with --archive (its catalog, trust material and digests) or with -c
(an ImageSet and its trust section); they are mapped to the registry as load maps them.

Exit status: 0 every image passes; 1 an image fails, the archive is damaged or altered, or no pinned
key signed it; 2 usage or I/O error, or nothing pinned to verify against.`,
		Example: `  airlock verify /media/usb/airlock --archive-key transfer.pub
  airlock verify registry.site:5000/mirror --archive /media/usb/airlock --archive-key transfer.pub
  airlock verify /media/usb/airlock --key release.pub --format json
  airlock verify /media/usb/airlock --archive-key transfer.pub --keyring charts.gpg
  AIRLOCK_TRUST=/etc/airlock/trust.yaml airlock verify /media/usb/airlock`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd, g, o, args[0])
		},
	}
	addSiteTrustFlags(cmd, &o.trust, &o.keyring)
	f := cmd.Flags()
	f.StringVar(&o.archive, "archive", "", "for a registry: the archive whose catalog names the images and holds the trust material")
	f.StringVarP(&o.imageSet, "config", "c", "", "for a registry: the ImageSet naming the images and the trust material")
	f.BoolVar(&o.keepHost, "keep-host", false, "the registry keeps source hosts as path elements (as load --keep-host)")
	return cmd
}

// runVerify verifies the images of target (mirror.VerifyTarget) with the flags' trust, and reports.
func runVerify(cmd *cobra.Command, g *globalOptions, o *verifyOptions, target string) error {
	anchors, err := o.trust.anchors()
	if err != nil {
		return err
	}
	if o.keyring != "" {
		anchors.Keyring = o.keyring // the flag wins over the site trust file's
	}
	results, trust, err := mirror.VerifyTarget(cmd.Context(), target, mirror.VerifyOptions{
		Anchors: anchors, Archive: o.archive, ImageSet: o.imageSet, KeepHost: o.keepHost,
		Registries: g.registries, Log: g.logger(), Warn: warn(cmd),
	})
	if err != nil {
		return err
	}
	failed := 0
	for _, r := range results {
		if !r.Passed {
			failed++
		}
	}
	report := struct {
		Trust   string          `json:"trust"`
		Origin  verify.Origin   `json:"origin"`
		Passed  bool            `json:"passed"`
		Results []verify.Result `json:"results"`
	}{trust.Source, trust.Origin, failed == 0, results}
	if err := g.emit(cmd, report, func(w io.Writer) error { return printVerify(w, trust, results) }); err != nil {
		return err
	}
	if failed > 0 {
		return plan.CheckFailed(fmt.Errorf("%d of %d images failed verification", failed, len(results)))
	}
	return nil
}

func printVerify(w io.Writer, trust *verify.Trust, results []verify.Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "trust: %s\n", trust.Source)
	for _, s := range trust.Origin.ArchiveSignatures {
		state := "valid, by " + s.Signer
		if !s.Valid {
			state = "not valid: " + s.Reason
		}
		fmt.Fprintf(&b, "  archive signature %s  key hint %s  %s\n", s.Digest.Encoded()[:12], s.KeyHint, state)
	}
	b.WriteString("\n")
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
		for _, c := range r.Referrers {
			what := "signature"
			if c.PredicateType != "" && c.PredicateType != archive.CosignSignPredicateType {
				what = "attestation"
			}
			printCheck(&b, what, c)
		}
		if r.Provenance != nil {
			printProvenance(&b, r.Provenance)
		}
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "      failed: %s\n", f)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func printCheck(b *strings.Builder, what string, c verify.Check) {
	var state string
	switch {
	case c.Valid:
		state = "valid, by " + c.Signer
		if c.Tlog {
			state += " (tlog)"
		}
	case c.Status == verify.StatusUnknownSigner:
		state = "UNKNOWN SIGNER: " + c.Reason
	case c.Status == verify.StatusRejected:
		state = "REJECTED: " + c.Reason
	default:
		state = "INVALID: " + c.Reason
	}
	pt := ""
	if what == "attestation" {
		pt = " " + c.PredicateType
	}
	fmt.Fprintf(b, "      %-11s on %-17s %-10s%s  %s  %s\n", what, c.Covers, c.Format, pt, c.Referrer.Encoded()[:12], state)
}

// addSiteTrustFlags adds the trust flags of a command that reads an archive, and --keyring (verify,
// load).
func addSiteTrustFlags(cmd *cobra.Command, trust *trustOptions, keyring *string) {
	trust.addFlags(cmd, true)
	cmd.Flags().StringVar(keyring, "keyring", "", "OpenPGP keyring pinned at the site (binary or armored): every Helm chart must carry a provenance file (.prov) signed by one of its keys; replaces the site trust file's keyring")
	_ = cmd.MarkFlagFilename("keyring")
}

// printProvenance prints the check of a Helm chart's provenance; why it failed is among the failures.
func printProvenance(b *strings.Builder, p *verify.Provenance) {
	layer := "no .prov layer"
	if p.Layer != "" {
		layer = ".prov " + p.Layer.Encoded()[:12]
	}
	state := "NOT VERIFIED"
	if p.Valid {
		state = "signed by " + p.Signer + " (key " + p.Key + ")"
	}
	fmt.Fprintf(b, "      provenance  %s  %s  %s\n", p.Chart, layer, state)
}
