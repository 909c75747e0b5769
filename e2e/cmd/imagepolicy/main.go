// Command imagepolicy asks containers/image (go.podman.io/image/v5: the evaluator of CRI-O, podman and
// skopeo) whether a policy.json admits an image, the way a pull does: copy.Image from docker://REF
// into a scratch directory under the policy, reading the signatures as the registries.d directory
// says (use-sigstore-attachments). Debian's skopeo is built with sigstore disabled, so the e2e tests
// use this instead: the same library code, built with -tags containers_image_openpgp (no gpgme; see
// scripts/install-tools.sh).
//
// With --registries-conf, the pull goes where that registries.conf redirects it (mirrors), judged by
// the name asked for, as CRI-O pulls through a mirror.
//
// Usage: imagepolicy --policy policy.json --registries.d DIR [--registries-conf FILE] [--all] [--arch ARCH] HOST/REPO:TAG
// Exit 0: admitted; 1: refused, with containers/image's reason on stderr; 2: usage.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/directory"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
)

func main() {
	policy := flag.String("policy", "", "policy.json")
	regd := flag.String("registries.d", "", "registries.d directory")
	all := flag.Bool("all", false, "every instance of an index, as skopeo copy --all; else the one for --arch")
	arch := flag.String("arch", "amd64", "the platform instance pulled (linux/ARCH) without --all")
	conf := flag.String("registries-conf", "", "registries.conf: pull through the mirrors it names")
	flag.Parse()
	if *policy == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: imagepolicy --policy policy.json --registries.d DIR [--all] HOST/REPO:TAG")
		os.Exit(2)
	}
	if err := pull(context.Background(), *policy, *regd, *conf, flag.Arg(0), *all, *arch); err != nil {
		fmt.Fprintln(os.Stderr, "refused:", err)
		os.Exit(1)
	}
	fmt.Println("admitted:", flag.Arg(0))
}

func pull(ctx context.Context, policyPath, regd, conf, ref string, all bool, arch string) error {
	pol, err := signature.NewPolicyFromFile(policyPath)
	if err != nil {
		return err
	}
	pc, err := signature.NewPolicyContext(pol)
	if err != nil {
		return err
	}
	defer pc.Destroy()
	src, err := docker.ParseReference("//" + ref)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "imagepolicy-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dst, err := directory.NewReference(tmp)
	if err != nil {
		return err
	}
	sel := copy.CopySystemImage
	if all {
		sel = copy.CopyAllImages
	}
	_, err = copy.Image(ctx, pc, dst, src, &copy.Options{
		SourceCtx: &types.SystemContext{RegistriesDirPath: regd, DockerInsecureSkipTLSVerify: types.OptionalBoolTrue,
			OSChoice: "linux", ArchitectureChoice: arch, SystemRegistriesConfPath: conf},
		DestinationCtx:     &types.SystemContext{},
		ImageListSelection: sel,
		RemoveSignatures:   true,
	})
	return err
}
