package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"airlock.dev/airlock/mirror"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/verify"
)

// warn writes what the operator must read to stderr.
func warn(cmd *cobra.Command) func(string) {
	return func(s string) { fmt.Fprintln(cmd.ErrOrStderr(), s) }
}

type loadOptions struct {
	publishOptions
	trust       trustOptions
	verifyFirst bool
	noCatalog   bool
	allowOlder  bool
	signKey     string
	keyring     string
	sparse      sparseOptions
}

func newLoadCmd(g *globalOptions) *cobra.Command {
	o := &loadOptions{}
	cmd := &cobra.Command{
		Use:   "load ARCHIVE --to HOST[:PORT]/PREFIX",
		Short: "Push an archive into the site registry, digests unchanged, referrers attached",
		Long: `load checks an archive (a directory, NAME.tar, or the first volume NAME.tar.000; volumes are
checked against their list NAME.tar.sha256 first, which finds a missing, truncated or misordered
volume early, and then read in place, never extracted) and pushes every image into the site
registry with every digest unchanged. Every blob is hashed against its digest before anything is
pushed (tar volumes: when they are opened, one read of the stream per core); a mismatch pushes
nothing.

Trust pinned at the site (see airlock verify --help):
  --archive-key PUB   the catalog must carry a valid signature by one of these keys, and every digest
                      it lists is hashed, before anything is pushed: a forged, unsigned or damaged
                      archive pushes nothing
  --verify            also verify each image's signatures first; load only those that pass (needs
                      --archive-key, --key/--policy or --trust; --key, --policy, --trusted-root, --keyring imply it)
  --keyring FILE      Helm charts must carry a .prov signed by a key of this OpenPGP keyring (as verify)
  --trust FILE        a site trust file (default: $AIRLOCK_TRUST)
With nothing pinned, load still copies and says that nothing was verified.

registry.example.com/team/app:1.4.2 lands at PREFIX/team/app:1.4.2 (--keep-host: at
PREFIX/registry.example.com/team/app:1.4.2; an image's own "target" in the ImageSet wins, when a
pinned archive key signed the catalog). An unsigned catalog decides nothing its manifests can tell:
its targets are ignored, a referrer's kind comes from its manifest, and the only referrer tags are
cosign's sha256-<hex of the subject>.sig/.att/.sbom.

Order: blobs (blobs this run pushed to another repository of the same registry are mounted), platform
manifests, indexes, referrers after their subjects, tags last. Where the registry has the OCI 1.1
referrers API, referrers are pushed as they are; where it has not, the sha256-<hex> tag-schema index is
kept up to date (nothing is ever deleted). Content the registry has is not pushed again, so a second or
interrupted load is cheap to run again. Afterwards every manifest and tag is read back and compared.

An image saved with a platform filter keeps its index as it was, listing only the platforms saved (a
sparse index), so a signature on the index still verifies. Registries in their stock configuration
may refuse it (distribution unless validation.manifests.indexes.platforms is none; zot; Harbor): that
image then fails, nothing of it tagged, and the message says so. --sparse-index=flatten tags the one
platform manifest saved instead (digest unchanged, its own signatures and referrers carried); the
index and what is attached to it are left behind, and listed. With more than one platform saved,
flatten refuses before anything is pushed.

An image that cannot be pushed (a blob or manifest the registry refuses) fails only itself: the
others are still pushed, and each is reported. --keep-going makes that explicit: every failure is
listed again at the end of the report (and under "failures" in JSON), and the exit status is 1. An
archive that fails its checks still pushes nothing. Images the archive lacks because it was saved
with --keep-going, and images its image set blocked, are named in the report.

The catalog, with the signatures that verified against a pinned archive key, is kept at
PREFIX/airlock/catalog, tagged by its creation time and digest: the site's record of what came in and
who signed it (cosign verify --key works on it). With --archive-key, the kept catalogs a pinned key
signed are read first: a tag that a newer one set to another digest is not moved back by an older
archive (that image is refused, naming both catalogs; --allow-older moves it back).

--sign-key SITE.key signs, with the site's cosign key, every image that passed verification against
the trust pinned here (it implies --verify; with nothing pinned, load refuses before anything is
pushed): a cosign legacy signature on the image's manifest and on each platform manifest, at
REPOSITORY:sha256-<hex>.sig, naming the site repository. An upstream signature there keeps its
layers and the site's is appended after them, as cosign appends; a tag that holds the site's
signature already is left as it is, so a second load signs nothing again. Check it with
cosign verify --key SITE.pub --insecure-ignore-tlog=true REPOSITORY@DIGEST.`,
		Example: `  airlock load /media/usb/airlock --to registry.site:5000/mirror --archive-key transfer.pub
  airlock load /media/usb/airlock.tar.000 --to registry.site:5000/mirror --archive-key transfer.pub --verify
  airlock load /media/usb/airlock --to registry.site:5000/mirror --dry-run
  COSIGN_PASSWORD=... airlock load /media/usb/airlock --to registry.site:5000/mirror --archive-key transfer.pub --sign-key site.key`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLoad(cmd, g, o, args[0])
		},
	}
	o.addFlags(cmd)
	addSiteTrustFlags(cmd, &o.trust, &o.keyring)
	cmd.Flags().BoolVar(&o.verifyFirst, "verify", false, "verify each image against the pinned trust first; load only those that pass")
	cmd.Flags().BoolVar(&o.noCatalog, "no-catalog", false, "do not keep the catalog at PREFIX/airlock/catalog")
	cmd.Flags().StringVar(&o.signKey, "sign-key", "", "cosign private key of the site: sign every image that passed verification (password from COSIGN_PASSWORD, or asked on the terminal)")
	cmd.Flags().BoolVar(&o.allowOlder, "allow-older", false, "let this archive move a tag that a newer signed catalog kept at the site set (a rollback); refused by default")
	o.sparse.addFlag(cmd)
	return cmd
}

func runLoad(cmd *cobra.Command, g *globalOptions, o *loadOptions, path string) error {
	anchors, err := o.trust.anchors()
	if err != nil {
		return err
	}
	if o.keyring != "" {
		anchors.Keyring = o.keyring // the flag wins over the site trust file's
	}
	regs, err := g.registries()
	if err != nil {
		return err
	}
	var signKey mirror.SiteSigner
	if o.signKey != "" {
		if !anchors.Pinned() {
			return mirror.ErrSignUnverified
		}
		k, err := verify.LoadSigningKey(o.signKey, signingPassword(cmd))
		if err != nil {
			return err
		}
		signKey = k
	}
	res, err := mirror.Load(cmd.Context(), path, mirror.LoadOptions{
		Publish:      o.publishOpts(g, "loading"),
		Anchors:      anchors,
		VerifyImages: o.verifyFirst || anchors.Keyring != "",
		SparseIndex:  o.sparse.mode,
		KeepCatalog:  !o.noCatalog,
		AllowOlder:   o.allowOlder,
		Regs:         regs,
		Warn:         warn(cmd),
		SignKey:      signKey,
		Version:      version(),
	})
	if res == nil || res.Report == nil {
		return err
	}
	for _, r := range res.Refused {
		fmt.Fprintf(cmd.ErrOrStderr(), "refused, %s\n", r)
	}
	extra := publishExtra{Blocked: res.Catalog.Blocked, ArchiveLeftOut: res.Catalog.LeftOut, Flattened: res.Flattened, SiteSigned: res.SiteSigned}
	if err := finishPublish(cmd, g, &o.publishOptions, res.Report, err, res.Trust, extra); err != nil {
		return err
	}
	if res.KeptAt != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "catalog kept at %s with %d verified signature(s)\n", res.KeptAt, res.KeptSigs)
	}
	if len(res.Refused) > 0 {
		return plan.CheckFailed(fmt.Errorf("%d image(s) not loaded, the others were:\n  %s", len(res.Refused), strings.Join(res.Refused, "\n  ")))
	}
	return nil
}
