package admission

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// upstreamTrustRoot is the name of the TrustRoot the keyless authorities of --upstream refer to.
const upstreamTrustRoot = "airlock-upstream"

// trustRoot writes the TrustRoot (policy.sigstore.dev/v1alpha1, kind sigstoreKeys) of the pinned
// trusted root tr, as policy-controller's TrustRoot types want it (pkg/apis/policy/v1alpha1/
// trustroot_types.go): each certificate authority (Fulcio) and timestamp authority with its chain in
// PEM, root last; each transparency log (Rekor) and CT log with its base URL, hash and PEM public
// key; the PEM base64-encoded, as Kubernetes writes []byte. policy-controller keeps no validity
// periods (its ConvertCertificateAuthority sets none).
func trustRoot(b *strings.Builder, tr *root.TrustedRoot) error {
	fmt.Fprintf(b, "# The pinned Sigstore trusted root, for the keyless signers and log entries of\n# clusterimagepolicy-upstream.yaml (trustRootRef: %[1]s).\napiVersion: policy.sigstore.dev/v1alpha1\nkind: TrustRoot\nmetadata:\n  name: %[1]s\nspec:\n  sigstoreKeys:\n    certificateAuthorities:\n", upstreamTrustRoot)
	for _, ca := range tr.FulcioCertificateAuthorities() {
		f, ok := ca.(*root.FulcioCertificateAuthority)
		if !ok {
			return fmt.Errorf("trusted root: a certificate authority of type %T", ca)
		}
		certAuthority(b, f.Root, append(slices.Clone(f.Intermediates), f.Root), f.URI)
	}
	if err := logs(b, "tLogs", tr.RekorLogs()); err != nil {
		return err
	}
	if err := logs(b, "ctLogs", tr.CTLogs()); err != nil {
		return err
	}
	if tsas := tr.TimestampingAuthorities(); len(tsas) > 0 {
		b.WriteString("    timestampAuthorities:\n")
		for _, ta := range tsas {
			s, ok := ta.(*root.SigstoreTimestampingAuthority)
			if !ok {
				return fmt.Errorf("trusted root: a timestamp authority of type %T", ta)
			}
			var chain []*x509.Certificate
			if s.Leaf != nil {
				chain = append(chain, s.Leaf)
			}
			certAuthority(b, s.Root, append(append(chain, s.Intermediates...), s.Root), s.URI)
		}
	}
	return nil
}

// certAuthority writes one CertificateAuthority: the root's subject, the URI, the chain.
func certAuthority(b *strings.Builder, rootCert *x509.Certificate, chain []*x509.Certificate, uri string) {
	var pemChain []byte
	for _, c := range chain {
		pemChain = append(pemChain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	org := ""
	if len(rootCert.Subject.Organization) > 0 {
		org = rootCert.Subject.Organization[0]
	}
	fmt.Fprintf(b, "    - subject:\n        organization: %q\n        commonName: %q\n      uri: %q\n      certChain: %s\n", org, rootCert.Subject.CommonName, uri, base64.StdEncoding.EncodeToString(pemChain))
}

// logs writes the transparency logs of one kind, by base URL.
func logs(b *strings.Builder, field string, ls map[string]*root.TransparencyLog) error {
	if len(ls) == 0 {
		return nil
	}
	fmt.Fprintf(b, "    %s:\n", field)
	byURL := map[string]*root.TransparencyLog{}
	for _, l := range ls {
		byURL[l.BaseURL+"\x00"+fmt.Sprint(l.ID)] = l
	}
	for _, k := range slices.Sorted(maps.Keys(byURL)) {
		l := byURL[k]
		pub, err := cryptoutils.MarshalPublicKeyToPEM(l.PublicKey)
		if err != nil {
			return fmt.Errorf("trusted root: log %s: %w", l.BaseURL, err)
		}
		hash := map[crypto.Hash]string{crypto.SHA256: "sha-256", crypto.SHA384: "sha-384", crypto.SHA512: "sha-512"}[l.HashFunc]
		if hash == "" {
			return fmt.Errorf("trusted root: log %s: hash %v is not one policy-controller takes", l.BaseURL, l.HashFunc)
		}
		fmt.Fprintf(b, "    - baseURL: %q\n      hashAlgorithm: %s\n      publicKey: %s\n", l.BaseURL, hash, base64.StdEncoding.EncodeToString(pub))
	}
	return nil
}
