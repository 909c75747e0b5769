package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"airlock.dev/airlock/mirror"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/verify"
)

// signOptions are the flags of sign: the key that signs the catalog, and the image trust given at the
// signing station that the images are verified against first.
type signOptions struct {
	key         string
	imageKeys   []string
	policy      string
	trustedRoot string
	trustFile   string
	contentOnly bool
}

func newSignCmd(g *globalOptions) *cobra.Command {
	o := &signOptions{}
	cmd := &cobra.Command{
		Use:   "sign ARCHIVE --key KEY (--image-key PUB... | --policy FILE | --trust FILE | --content-only)",
		Short: "Verify an archive's images against trust given at the signing station, then sign its catalog",
		Long: `sign attaches a signature of the archive's catalog, made with a cosign private key (--key), as cosign
v3 makes one for an image: a Sigstore bundle (DSSE over an in-toto statement naming the catalog's
digest), attached to the catalog as an OCI referrer. The catalog lists every digest of the archive
and carries its trust material, so its signature vouches for all of it once the site pins the public
key (load/verify --archive-key, or archiveKeys in the site trust file).

It is meant for a signing station separate from the connected host, and checks before it signs, so
that whoever controls the medium between the two cannot have the station vouch for what they wrote:
  1. every blob is hashed against the catalog, and index.json, the manifests and the catalog must
     agree;
  2. every image is verified, as airlock verify does with site trust, against image trust given AT
     THE SIGNING STATION, never against the archive's own keys, trusted root or policy (an archive
     never vouches for itself):
       --image-key PUB     a cosign public key the images must be signed by (repeatable)
       --policy FILE       a policy the images must satisfy
       --trusted-root FILE the Sigstore trusted_root.json for keyless signers of the policy
       --trust FILE        a site trust file; its keys, policy and trustedRoot are used (its
                           archiveKeys are not: they pin who signs archives, not images); by default
                           $AIRLOCK_TRUST, as for verify. Flags given replace the file's image trust.
     With none of them sign refuses (exit 2) and writes nothing; --content-only is the explicit
     opt-out: only step 1, as sign did before, and the report says the images were not checked.
If any image fails, nothing is signed and each failing image is named with its reason (exit 1).

For a delta archive (save --since), the images whose manifests only its base holds cannot be checked
here; they are listed as such (the site reads them from the registry the base was loaded into).

Once checked, in a directory only index.json is replaced (atomically); tar volumes are written again
with the signature added (every entry as it was, the same volume size), the volume list last. An
archive can be signed any number of times, by several keys.

The password of an encrypted key comes from COSIGN_PASSWORD when it is set (even to an empty string),
otherwise it is asked on the terminal.

Exit status: 0 signed; 1 the archive is damaged or an image failed verification (nothing signed);
2 usage or I/O error, or no image trust given (nothing signed).`,
		Example: `  # At the signing station: the images must carry a signature by the release key.
  COSIGN_PASSWORD=... airlock sign /media/usb/airlock --key transfer.key --image-key release.pub
  # The station's site trust file (keys, policy, trustedRoot), here through AIRLOCK_TRUST.
  AIRLOCK_TRUST=/etc/airlock/station.yaml airlock sign /media/usb/airlock.tar --key transfer.key
  # A policy with keyless signers, and the Sigstore trusted root it needs.
  airlock sign /media/usb/airlock --key transfer.key --policy policy.yaml --trusted-root trusted_root.json
  # Only the content hash check, the images' signatures not looked at (said so in the report).
  airlock sign /media/usb/airlock --key transfer.key --content-only
  # At the site: pin the transfer key.
  airlock verify /media/usb/airlock --archive-key transfer.pub`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSign(cmd, g, o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.key, "key", "", "cosign private key that signs the catalog (required)")
	_ = cmd.MarkFlagRequired("key")
	f.StringSliceVar(&o.imageKeys, "image-key", nil, "cosign public key the images must be signed by, given at the signing station (repeatable)")
	f.StringVar(&o.policy, "policy", "", "policy file the images must satisfy, given at the signing station")
	f.StringVar(&o.trustedRoot, "trusted-root", "", "Sigstore trusted_root.json for the policy's keyless signers")
	f.StringVar(&o.trustFile, "trust", "", "site trust file whose keys, trustedRoot and policy the images are verified against; default $"+verify.TrustEnv)
	_ = cmd.MarkFlagFilename("trust", "yaml", "yml")
	f.BoolVar(&o.contentOnly, "content-only", false, "check only that the archive agrees with its catalog (every blob hashed), not the images' signatures")
	return cmd
}

// errNoImageTrust is sign without image trust and without --content-only.
var errNoImageTrust = errors.New(`no image trust given at the signing station, and an archive never vouches for itself: the images would be signed for unchecked. Give the trust the images must satisfy with one of:
  --image-key release.pub        the key that signs the images (repeatable)
  --policy FILE                  a policy (with --trusted-root FILE for keyless signers)
  --trust FILE                   a site trust file naming keys or a policy (or set AIRLOCK_TRUST=FILE)
or, to check only that the archive agrees with its catalog, --content-only; nothing was signed`)

// imageTrust returns the image trust given at the signing station, or nil for --content-only. The
// archive's own trust material is never part of it.
func (o *signOptions) imageTrust() (*verify.Trust, error) {
	given := len(o.imageKeys) > 0 || o.policy != "" || o.trustedRoot != "" || o.trustFile != ""
	if o.contentOnly {
		if given {
			return nil, errors.New("--content-only checks no image signature: give it alone, or drop it and verify the images against --image-key, --policy, --trusted-root or --trust")
		}
		return nil, nil // AIRLOCK_TRUST is not read: the flag asks for the content only
	}
	if o.trustedRoot != "" && len(o.imageKeys) == 0 && o.policy == "" {
		return nil, errors.New("--trusted-root alone verifies nothing: give the keys (--image-key) or a policy (--policy) the images must satisfy")
	}
	a, err := verify.Anchors{Keys: o.imageKeys, Policy: o.policy, TrustedRoot: o.trustedRoot}.WithFile(o.trustFile)
	if err != nil {
		return nil, err
	}
	t, err := a.Site()
	if err != nil {
		return nil, err
	}
	if t == nil {
		if a.File != "" {
			return nil, fmt.Errorf("site trust file %s pins no image trust (keys or policy; its archiveKeys say who signs archives, not images): %w", a.File, errNoImageTrust)
		}
		return nil, errNoImageTrust
	}
	return t, nil
}

// signReport is sign's report; Signed false when the check refused the archive.
type signReport struct {
	Archive   string          `json:"archive"`
	Catalog   string          `json:"catalog"`
	Signed    bool            `json:"signed"`
	Signature string          `json:"signature,omitempty"`
	SignedBy  *verify.KeyRef  `json:"signedBy,omitempty"`
	Checked   string          `json:"checked"` // "images" or "content-only"
	Trust     string          `json:"trust,omitempty"`
	Origin    *verify.Origin  `json:"origin,omitempty"`
	Results   []verify.Result `json:"results,omitempty"`
	InBase    []string        `json:"inBase,omitempty"`
}

func runSign(cmd *cobra.Command, g *globalOptions, o *signOptions, path string) error {
	ctx := cmd.Context()
	trust, err := o.imageTrust()
	if err != nil {
		return err
	}
	k, err := verify.LoadSigningKey(o.key, signingPassword(cmd))
	if err != nil {
		return err
	}
	check, err := mirror.CheckForSigning(ctx, path, trust)
	if errors.Is(err, plan.ErrCheckFailed) {
		return fmt.Errorf("%s: not signed: %w", path, err) // exits 1: main.run
	}
	if err != nil {
		return err
	}
	rep := newSignReport(check)
	if check.Passed() {
		desc, err := mirror.SignArchive(ctx, check, k)
		if err != nil {
			return err // a failed check (plan.ErrCheckFailed) exits 1: main.run
		}
		rep.Signed, rep.Signature, rep.SignedBy = true, desc.Digest.String(), &verify.KeyRef{Name: k.Name, Hint: k.Hint}
	}
	if err := g.emit(cmd, rep, func(w io.Writer) error { return printSignReport(w, rep) }); err != nil {
		return err
	}
	if !rep.Signed {
		return plan.CheckFailed(signRefusal(check))
	}
	return nil
}

func newSignReport(c *mirror.SigningCheck) *signReport {
	rep := &signReport{Archive: c.Archive, Catalog: c.Catalog.Digest.String(), Checked: "content-only"}
	if c.Trust != nil {
		origin := c.Trust.Origin
		rep.Checked, rep.Trust, rep.Origin, rep.Results = "images", c.Trust.Source, &origin, c.Results
	}
	for _, img := range c.InBase {
		rep.InBase = append(rep.InBase, img.Source)
	}
	return rep
}

// signRefusal names each image that failed, with its reasons.
func signRefusal(c *mirror.SigningCheck) error {
	failed := c.Failed()
	var b strings.Builder
	fmt.Fprintf(&b, "%s: not signed: %d of %d images failed verification against %s", c.Archive, len(failed), len(c.Results), c.Trust.Source)
	for _, r := range failed {
		fmt.Fprintf(&b, "\n  %s (%s): %s", r.Source, r.Digest, strings.Join(reasons(r), "; "))
	}
	return errors.New(b.String())
}

// reasons are why r failed: its failures, each invalid check, and how many checks were not accepted
// (another signer's, or rejected by the policy; the report lists each).
func reasons(r verify.Result) []string {
	out := append([]string(nil), r.Failures...)
	notAccepted := 0
	for _, list := range [][]verify.Check{r.Signatures, r.Attestations, r.Referrers} {
		for _, c := range list {
			switch c.Status {
			case verify.StatusInvalid:
				out = append(out, fmt.Sprintf("%s on %s %s: invalid: %s", c.Format, c.Covers, c.Referrer, c.Reason))
			case verify.StatusUnknownSigner, verify.StatusRejected:
				notAccepted++
			}
		}
	}
	if notAccepted > 0 {
		out = append(out, fmt.Sprintf("%d signature(s) or attestation(s) not accepted: by an unknown signer or rejected by the policy (each listed in the report)", notAccepted))
	}
	if len(out) == 0 {
		out = append(out, "failed verification")
	}
	return out
}

func printSignReport(w io.Writer, rep *signReport) error {
	var b strings.Builder
	if rep.Checked == "content-only" {
		b.WriteString("content only: images' signatures not checked (--content-only); every blob hashed against the catalog\n")
	} else {
		passed := 0
		for _, r := range rep.Results {
			if r.Passed {
				passed++
			}
		}
		if passed == len(rep.Results) {
			fmt.Fprintf(&b, "images verified: %d against %s\n", passed, rep.Trust)
		} else {
			fmt.Fprintf(&b, "images failed: %d of %d against %s\n", len(rep.Results)-passed, len(rep.Results), rep.Trust)
		}
		for _, r := range rep.Results {
			verdict := "PASS"
			if !r.Passed {
				verdict = "FAIL"
			}
			fmt.Fprintf(&b, "  %s  %s  %s", verdict, r.Source, r.Digest)
			if r.Rule != "" {
				fmt.Fprintf(&b, "  (rule: %s)", r.Rule)
			}
			b.WriteString("\n")
			for _, c := range append(append(append([]verify.Check(nil), r.Signatures...), r.Attestations...), r.Referrers...) {
				if !c.Valid {
					fmt.Fprintf(&b, "      %s on %s %s: %s: %s\n", c.Format, c.Covers, c.Referrer.Encoded()[:12], c.Status, c.Reason)
				}
			}
			for _, f := range r.Failures {
				fmt.Fprintf(&b, "      failed: %s\n", f)
			}
		}
		for _, s := range rep.InBase {
			fmt.Fprintf(&b, "  BASE  %s  not in this delta archive (its base holds it): not checked here\n", s)
		}
	}
	if rep.Signed {
		fmt.Fprintf(&b, "signed %s: catalog %s, signature %s, by %s (key hint %s)\n", rep.Archive, rep.Catalog, rep.Signature, rep.SignedBy.Name, rep.SignedBy.Hint)
	} else {
		fmt.Fprintf(&b, "not signed %s: catalog %s; nothing was written\n", rep.Archive, rep.Catalog)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
