package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"airlock.dev/airlock/verify"
)

// trustOptions are the flags that pin trust at the site (verify, load, copy).
type trustOptions struct {
	archiveKeys []string
	keys        []string
	policy      string
	trustedRoot string
	file        string
	insecure    bool
}

// addFlags adds the trust flags; archive is false for commands that read no archive (copy).
func (o *trustOptions) addFlags(cmd *cobra.Command, archive bool) {
	f := cmd.Flags()
	if archive {
		f.StringSliceVar(&o.archiveKeys, "archive-key", nil, "public key that may sign archives: the catalog must carry a valid signature by one of these (repeatable)")
		f.BoolVar(&o.insecure, "insecure-archive-trust", false, "with nothing pinned, let the archive vouch for itself (its own keys, trusted root and policy); prints a warning")
	}
	f.StringSliceVar(&o.keys, "key", nil, "cosign public key the images must be signed by; with --policy and --trusted-root, replaces all of the archive's trust material (repeatable)")
	f.StringVar(&o.policy, "policy", "", "policy file the images must satisfy; replaces the archive's trust material")
	f.StringVar(&o.trustedRoot, "trusted-root", "", "Sigstore trusted_root.json for keyless signatures; replaces the archive's")
	f.StringVar(&o.file, "trust", "", "site trust file (archiveKeys, keys, trustedRoot, policy); default $"+verify.TrustEnv)
	_ = cmd.MarkFlagFilename("trust", "yaml", "yml")
}

// anchors returns what the flags and the site trust file pin.
func (o *trustOptions) anchors() (verify.Anchors, error) {
	a := verify.Anchors{ArchiveKeys: o.archiveKeys, Keys: o.keys, Policy: o.policy, TrustedRoot: o.trustedRoot, Insecure: o.insecure}
	return a.WithFile(o.file)
}

// signingPassword returns the password of an encrypted signing key as cosign finds it: COSIGN_PASSWORD
// when it is set, even to an empty string; otherwise a prompt on the terminal; otherwise an error.
func signingPassword(cmd *cobra.Command) verify.Password {
	return func() ([]byte, error) {
		if pw, ok := os.LookupEnv("COSIGN_PASSWORD"); ok {
			return []byte(pw), nil
		}
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil || !term.IsTerminal(int(tty.Fd())) {
			if tty != nil {
				tty.Close()
			}
			return nil, errors.New("the key is encrypted, COSIGN_PASSWORD is not set and there is no terminal to ask on: set COSIGN_PASSWORD (to an empty string for a key without a password)")
		}
		defer tty.Close()
		fmt.Fprint(tty, "Enter password for private key: ")
		pw, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		return pw, err
	}
}
