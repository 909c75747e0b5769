package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"airlock.dev/airlock/admission"
	"airlock.dev/airlock/sitefiles"
)

// admissionOptions are the flags of airlock admission.
type admissionOptions struct {
	engine, to, siteKey, dir, mode, siteFiles string
	upstream                                  bool
	trust                                     trustOptions
}

func newAdmissionCmd(g *globalOptions) *cobra.Command {
	o := &admissionOptions{}
	cmd := &cobra.Command{
		Use:   "admission --engine ENGINE --to HOST[:PORT]/PREFIX --site-key SITE.pub -o DIR",
		Short: "Write the admission policies that admit only what the site signed",
		Long:  admissionLong,
		Example: `  airlock admission --engine containers-policy --to registry.site:5000/mirror --site-key site.pub -o ./policy
  airlock admission --engine policy-controller --to registry.site:5000/mirror --site-key site.pub -o ./policy
  airlock admission --engine kyverno --to registry.site:5000/mirror --site-key site.pub -o ./policy --mode warn
  skopeo --policy ./policy/policy.json --registries.d ./policy/registries.d copy docker://registry.site:5000/mirror/team/app:1.4.2 dir:/tmp/app`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAdmission(cmd, g, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.engine, "engine", "", "containers-policy, policy-controller or kyverno")
	f.StringVar(&o.mode, "mode", "enforce", "policy-controller and kyverno: enforce or warn")
	f.StringVar(&o.to, "to", "", "the site mirror: HOST[:PORT]/PREFIX, as given to load --to")
	f.StringVar(&o.siteKey, "site-key", "", "the site's public key (the pair of load --sign-key)")
	f.StringVarP(&o.dir, "output", "o", "", "directory to write into")
	f.BoolVar(&o.upstream, "upstream", false, "policy-controller: check the upstream signers of the site's trust again, for the images --site-files names")
	o.trust.addFlags(cmd, false)
	f.StringVar(&o.siteFiles, "site-files", "", "containers-policy: the directory load --site-files wrote; scope the source names pulled through the mirror too")
	for _, name := range []string{"engine", "to", "site-key", "output"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

const admissionLong = `admission writes, into DIR, the policy an enforcing engine needs so that only images the site
signed at its door (airlock load --sign-key SITE.key) are admitted from the site mirror
HOST[:PORT]/PREFIX, and everything else is refused. The site key is the only trust the engine needs:
upstream signers were checked by airlock at the door, offline.

Engines:
  containers-policy   containers/image (CRI-O, podman, skopeo): DIR/policy.json (for
                      /etc/containers/policy.json) accepts an image under the prefix only with a
                      cosign signature by the site key naming its repository (sigstoreSigned,
                      signedIdentity matchRepository), and rejects everything else;
                      DIR/registries.d/airlock.yaml (for /etc/containers/registries.d/) turns on
                      reading those signatures (use-sigstore-attachments); and for OpenShift
                      DIR/openshift/clusterimagepolicy.yaml, the same requirement as a
                      ClusterImagePolicy (config.openshift.io/v1). With --site-files DIR (what
                      load --site-files wrote: its mapping.txt), each source repository pulled
                      through the mirror (registries.conf, ImageDigestMirrorSet) gets a scope of
                      its own, since a redirected pull is judged by the name it asks for: the
                      site's signature must name the repository it was loaded into.
  policy-controller   Sigstore policy-controller: DIR/clusterimagepolicy.yaml, a ClusterImagePolicy
                      (policy.sigstore.dev/v1beta1) whose glob covers PREFIX/** and whose one
                      authority is the site key with the import attestation required
                      (https://airlock.dev/import/v1); no ctlog, so nothing reaches Rekor. --mode
                      enforce (default) or warn. With --upstream, also
                      DIR/clusterimagepolicy-upstream.yaml: the upstream signers of the site's
                      trust (--key, --policy or --trust, as load takes them), checked again by
                      the cluster for each image loaded (--site-files DIR names them), the first
                      matching rule deciding as at the door: require any, all, attestations;
                      keyless signers (and requireTlog) against the pinned trusted root, written
                      as DIR/trustroot-upstream.yaml (a TrustRoot). require N is refused.
  kyverno             Kyverno: DIR/imagevalidatingpolicy.yaml, an ImageValidatingPolicy
                      (policies.kyverno.io/v1) for Pods whose images are under PREFIX/: each
                      container's image must be signed by the site key (a cosign key attestor,
                      no transparency log) and carry the import attestation; Kyverno pins tags to
                      digests. --mode enforce (Deny, default) or warn (Warn).

The same site gives the same bytes. Existing files are replaced. A skopeo or podman that reads the
policy must be built with sigstore support (Debian's skopeo 1.9.3 is not: "sigstore disabled").`

func runAdmission(cmd *cobra.Command, g *globalOptions, o *admissionOptions) error {
	key, err := os.ReadFile(o.siteKey)
	if err != nil {
		return fmt.Errorf("--site-key: %w", err)
	}
	site := admission.Site{Prefix: o.to, KeyPEM: key}
	if o.siteFiles != "" {
		if o.engine == "kyverno" || o.engine == "policy-controller" && !o.upstream {
			return fmt.Errorf("--site-files is for --engine containers-policy (and policy-controller --upstream): %s checks the image name a Pod gives, so Pods name the site mirror's images", o.engine)
		}
		if site.Mirrored, err = sitefiles.ReadMapping(o.siteFiles); err != nil {
			return fmt.Errorf("--site-files: %w", err)
		}
	}
	var files []admission.File
	switch o.engine {
	case "containers-policy":
		files, err = admission.ContainersPolicy(site)
	case "policy-controller":
		if o.upstream {
			files, err = policyControllerUpstream(site, o.trust, o.mode)
		} else {
			files, err = admission.PolicyController(site, o.mode)
		}
	case "kyverno":
		files, err = admission.Kyverno(site, o.mode)
	default:
		return fmt.Errorf("--engine %q: want containers-policy, policy-controller or kyverno", o.engine)
	}
	if o.upstream && o.engine != "policy-controller" {
		return fmt.Errorf("--upstream is for --engine policy-controller")
	}
	if err != nil {
		return err
	}
	written, err := admission.Write(o.dir, files)
	if err != nil {
		return err
	}
	return g.emit(cmd, struct {
		Engine string   `json:"engine"`
		Files  []string `json:"files"`
	}{o.engine, written}, func(w io.Writer) error {
		for _, p := range written {
			fmt.Fprintln(w, p)
		}
		return nil
	})
}

// policyControllerUpstream writes the site's ClusterImagePolicy and those of the upstream signers
// the site's trust names.
func policyControllerUpstream(site admission.Site, o trustOptions, mode string) ([]admission.File, error) {
	a, err := o.anchors()
	if err != nil {
		return nil, err
	}
	t, err := a.Site()
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("--upstream needs the site's trust: --key, --policy (with --trusted-root), or --trust")
	}
	return admission.PolicyControllerUpstream(site, t, mode)
}
