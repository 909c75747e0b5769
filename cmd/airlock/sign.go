package main

import (
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror"
	"airlock.dev/airlock/verify"
)

func newSignCmd(g *globalOptions) *cobra.Command {
	var keyPath string
	cmd := &cobra.Command{
		Use:   "sign ARCHIVE --key KEY",
		Short: "Sign an existing archive's catalog with a cosign private key",
		Long: `sign attaches a signature of the archive's catalog, made with a cosign private key, as cosign v3
makes one for an image: a Sigstore bundle (DSSE over an in-toto statement naming the catalog's
digest), attached to the catalog as an OCI referrer. The catalog lists every digest of the archive
and carries its trust material, so its signature vouches for all of it once the site pins the public
key (load/verify --archive-key, or archiveKeys in the site trust file).

It is meant for a signing station separate from the connected host: the archive is checked against
its catalog, every blob hashed, before it is signed. In a directory only index.json is replaced
(atomically); tar volumes are written again with the signature added (every entry as it was, the same
volume size), the volume list last. An archive can be signed any number of times, by several keys.

The password of an encrypted key comes from COSIGN_PASSWORD when it is set (even to an empty string),
otherwise it is asked on the terminal.`,
		Example: `  COSIGN_PASSWORD=... airlock sign /media/usb/airlock --key transfer.key
  airlock verify /media/usb/airlock --archive-key transfer.pub`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.validate(); err != nil {
				return err
			}
			return runSign(cmd, g, args[0], keyPath)
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "cosign private key (required)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

func runSign(cmd *cobra.Command, g *globalOptions, path, keyPath string) error {
	ctx := cmd.Context()
	k, sign, err := signer(cmd, keyPath)
	if err != nil {
		return err
	}
	// Sign only what agrees with its catalog, every byte hashed: the signature vouches for every digest
	// the catalog lists.
	r, err := mirror.OpenArchive(ctx, path)
	if err != nil {
		return err
	}
	cat, _, err := r.Catalog(ctx)
	if err == nil {
		err = archive.VerifyContents(ctx, r, cat)
	}
	r.Close()
	if err != nil {
		return &checkError{fmt.Errorf("%s: not signed: %w", path, err)}
	}
	var catDigest string
	desc, err := archive.Sign(ctx, path, func(d ocispec.Descriptor) ([]byte, error) {
		catDigest = d.Digest.String()
		return sign(d)
	})
	if err != nil {
		return err
	}
	res := struct {
		Archive   string        `json:"archive"`
		Catalog   string        `json:"catalog"`
		Signature string        `json:"signature"`
		SignedBy  verify.KeyRef `json:"signedBy"`
	}{path, catDigest, desc.Digest.String(), verify.KeyRef{Name: k.Name, Hint: k.Hint}}
	if g.format == "json" {
		enc := json.NewEncoder(out(cmd))
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	_, err = fmt.Fprintf(out(cmd), "signed %s: catalog %s, signature %s, by %s (key hint %s)\n", path, catDigest, res.Signature, k.Name, k.Hint)
	return err
}
