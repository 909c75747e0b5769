package verify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/config"
	"airlock.dev/airlock/internal/yamlfile"
)

// The site trust file: what an operator pins once (--trust FILE, or AIRLOCK_TRUST).
const (
	siteTrustAPIVersion = "airlock.dev/v1alpha1"
	siteTrustKind       = "SiteTrust"
	// TrustEnv names the environment variable that gives the site trust file when --trust is not set.
	TrustEnv = "AIRLOCK_TRUST"
)

var siteTrustFields = []string{"apiVersion", "kind", "archiveKeys", "keys", "trustedRoot", "policy", "keyring"}

// Anchors is the trust pinned at the site: public keys that may sign archives, and the keys, Sigstore
// trusted root and policy that images are verified against. Paths, as given.
type Anchors struct {
	ArchiveKeys []string
	Keys        []string
	TrustedRoot string
	Policy      string
	// Keyring is an OpenPGP keyring: with it, every Helm chart verified must carry a provenance file
	// signed by one of its keys (Trust.Verify).
	Keyring string
	// File is the site trust file the anchors were read from, if any.
	File string
	// Insecure allows the archive to vouch for itself when nothing is pinned.
	Insecure bool
}

// LoadSiteTrust reads a site trust file:
//
//	apiVersion: airlock.dev/v1alpha1
//	kind: SiteTrust
//	archiveKeys: [keys/transfer.pub]   # keys that may sign archives (airlock save --sign-key)
//	keys: [keys/release.pub]           # image signing keys; replace the archive's
//	trustedRoot: trust/trusted_root.json
//	policy: policy.yaml
//	keyring: keys/charts.gpg           # OpenPGP keys that sign Helm charts' .prov files
//
// Relative paths are relative to the file. Every problem is reported as FILE:LINE: FIELD: MESSAGE.
func LoadSiteTrust(path string) (*Anchors, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("site trust file: %w", err)
	}
	p, err := yamlfile.NewParser(path)
	if err != nil {
		return nil, err
	}
	root, err := yamlfile.Decode(path, data, "a SiteTrust with apiVersion, kind and archiveKeys or keys", "a site trust file")
	if err != nil {
		return nil, err
	}
	root = yamlfile.Deref(root)
	a := &Anchors{File: path}
	f := p.Fields(root, "", siteTrustFields)
	if f == nil {
		return nil, p.Err()
	}
	p.Expect(root, f, "apiVersion", siteTrustAPIVersion)
	p.Expect(root, f, "kind", siteTrustKind)
	paths := func(field string) []string {
		n, ok := f[field]
		if !ok {
			return nil
		}
		items, ok := p.List(n, field)
		if !ok {
			return nil
		}
		var out []string
		for i, item := range items {
			if s, ok := p.Path(item, fmt.Sprintf("%s[%d]", field, i), ""); ok {
				out = append(out, s)
			}
		}
		return out
	}
	onePath := func(field string) string {
		if n, ok := f[field]; ok && !yamlfile.IsNull(n) {
			s, _ := p.Path(n, field, "")
			return s
		}
		return ""
	}
	a.ArchiveKeys, a.Keys = paths("archiveKeys"), paths("keys")
	a.TrustedRoot, a.Policy, a.Keyring = onePath("trustedRoot"), onePath("policy"), onePath("keyring")
	if len(a.ArchiveKeys) == 0 && len(a.Keys) == 0 && a.Policy == "" && p.NumErrors() == 0 {
		p.Errorf(root, "", "pins nothing: give archiveKeys (keys that may sign archives), or keys or a policy for the images")
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return a, nil
}

// WithFile merges the site trust file into the anchors given as flags: a field given as a flag wins
// over the file's. file "" reads AIRLOCK_TRUST; with neither, a is returned as it is.
func (a Anchors) WithFile(file string) (Anchors, error) {
	if file == "" {
		file = os.Getenv(TrustEnv)
	}
	if file == "" {
		return a, nil
	}
	f, err := LoadSiteTrust(file)
	if err != nil {
		return a, err
	}
	out := *f
	out.Insecure = a.Insecure
	if len(a.ArchiveKeys) > 0 {
		out.ArchiveKeys = a.ArchiveKeys
	}
	if a.Keyring != "" {
		out.Keyring = a.Keyring
	}
	if len(a.Keys) > 0 || a.Policy != "" || a.TrustedRoot != "" {
		// Image trust given on the command line replaces the file's as a whole.
		out.Keys, out.Policy, out.TrustedRoot = a.Keys, a.Policy, a.TrustedRoot
	}
	return out, nil
}

// siteImageTrust reports whether the anchors name the trust images are verified against.
func (a *Anchors) siteImageTrust() bool {
	return len(a.Keys) > 0 || a.Policy != "" || a.TrustedRoot != ""
}

// Pinned reports whether anything is pinned: archive keys, or image trust.
func (a *Anchors) Pinned() bool { return len(a.ArchiveKeys) > 0 || a.siteImageTrust() }

// ErrNoAnchor reports a verification asked for with nothing pinned at the site.
var ErrNoAnchor = errors.New(`nothing is pinned to verify against, and an archive never vouches for itself. Pin trust at the site with one of:
  --archive-key transfer.pub     the key that signs archives (airlock save --sign-key, airlock sign)
  --key release.pub              the key that signs the images (or --policy FILE [--trusted-root FILE])
  --trust FILE                   a site trust file naming them (or set AIRLOCK_TRUST=FILE)
or, knowing that whoever can write to the transfer medium can then pass anything, --insecure-archive-trust`)

// KeyRef names a key in reports: its file name and key hint.
type KeyRef struct {
	Name string `json:"name"`
	Hint string `json:"hint"`
}

// Origin says where the trust of a report came from.
type Origin struct {
	// Kind is "archive-signature" (the catalog is signed by a pinned archive key and the archive's
	// trust material is used), "site" (keys, policy and trusted root given at the site), "imageset"
	// (the trust section of an ImageSet given by the user) or "insecure" (the archive itself, not
	// pinned).
	Kind string `json:"kind"`
	// ArchiveKeys are the pinned archive keys; ArchiveSignatures each catalog signature checked.
	ArchiveKeys       []KeyRef           `json:"archiveKeys,omitempty"`
	ArchiveSignatures []ArchiveSignature `json:"archiveSignatures,omitempty"`
	// Keys are the keys images are verified against.
	Keys        []KeyRef `json:"keys,omitempty"`
	TrustedRoot bool     `json:"trustedRoot"`
	Policy      string   `json:"policy,omitempty"`
	// File is the site trust file, when one was used.
	File string `json:"file,omitempty"`
	// Keyring is the OpenPGP keyring Helm charts' provenance is verified against, when one is pinned.
	Keyring *KeyringRef `json:"keyring,omitempty"`
}

func keyRefs(keys []*Key) []KeyRef {
	out := make([]KeyRef, len(keys))
	for i, k := range keys {
		out[i] = KeyRef{k.Name, k.Hint}
	}
	return out
}

// LoadKeys reads PEM public keys.
func LoadKeys(paths []string) ([]*Key, error) {
	var keys []*Key
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		k, err := ParseKey(filepath.Base(p), b)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// siteTrust reads the image trust the anchors name, refusing what could not verify anything.
func (a *Anchors) siteTrust() (*Trust, error) {
	if len(a.Keys) == 0 && a.Policy == "" {
		return nil, errors.New("--trusted-root alone verifies nothing: give the keys (--key) or a policy (--policy) the images must satisfy")
	}
	t, err := TrustFromFiles(a.Keys, a.TrustedRoot, a.Policy)
	if err != nil {
		return nil, err
	}
	if t.Policy != nil && t.TrustedRoot == nil {
		for _, r := range t.Policy.Rules {
			for _, s := range r.Signers {
				if s.Keyless() {
					return nil, fmt.Errorf("%s:%d: rule %q has a keyless signer, and no Sigstore trusted root is pinned at the site: give --trusted-root (or trustedRoot in the site trust file); the archive's own trusted root is never used with a site policy", t.Policy.Path, r.Line, r.Name)
				}
			}
		}
	}
	t.Source = "site: " + a.describeSite(t)
	t.setOrigin(Origin{Kind: "site"}, a.File)
	return t, nil
}

// setOrigin sets t.Origin to o with the image trust t holds (its keys, whether it has a trusted
// root, its policy) and the trust file it was read from.
func (t *Trust) setOrigin(o Origin, file string) {
	o.Keys, o.TrustedRoot, o.File = keyRefs(t.Keys), t.TrustedRoot != nil, file
	if t.Policy != nil {
		o.Policy = t.Policy.Path
	}
	t.Origin = o
}

// Site returns the trust pinned at the site for images that come with no archive (a registry named
// with -c IMAGESET, or copy): the site's keys, policy and trusted root, or nil when none are given.
func (a *Anchors) Site() (*Trust, error) {
	if !a.siteImageTrust() {
		return nil, nil
	}
	return a.siteTrust()
}

// ForImageSet returns the trust the images an ImageSet names are verified against (a registry named
// with -c IMAGESET, or copy --verify): what is pinned at the site, or else the ImageSet's own trust
// section, pinned by the user who gives the file.
func (a *Anchors) ForImageSet(set *config.ImageSet) (*Trust, error) {
	t, err := a.Site()
	if err == nil && t == nil {
		t, err = TrustFromImageSet(set)
	}
	if err != nil {
		return nil, err
	}
	return a.withKeyring(t)
}

func (a *Anchors) describeSite(t *Trust) string {
	var parts []string
	if len(t.Keys) > 0 {
		parts = append(parts, "keys "+keyList(t.Keys))
	}
	if t.Policy != nil {
		parts = append(parts, "policy "+t.Policy.Path)
	}
	if t.TrustedRoot != nil {
		parts = append(parts, "trusted root "+a.TrustedRoot)
	}
	s := strings.Join(parts, ", ")
	if a.File != "" {
		s += " (site trust file " + a.File + ")"
	}
	return s
}

// UnverifiedArchiveError reports an archive whose catalog carries no valid signature by a pinned
// archive key, or (SignedBy set) carries one and also another that no pinned key verifies.
type UnverifiedArchiveError struct {
	Archive    string
	Catalog    digest.Digest
	Signatures []ArchiveSignature
	Keys       []*Key
	SignedBy   string
}

func (e *UnverifiedArchiveError) Error() string {
	var b strings.Builder
	switch {
	case e.SignedBy != "":
		fmt.Fprintf(&b, "archive %s: catalog %s is signed by %s, but also carries a signature that no pinned archive key (%s) verifies: refused; every signature an archive carries must verify, so that nothing unverified travels with it (pin the other signer's key too, or sign a clean copy of the archive again)", e.Archive, e.Catalog, e.SignedBy, keyList(e.Keys))
	case len(e.Signatures) == 0:
		fmt.Fprintf(&b, "archive %s is not signed (catalog %s has no signature), and an archive key is pinned (%s): refused; sign it on the connected side (airlock sign, or save --sign-key)", e.Archive, e.Catalog, keyList(e.Keys))
	default:
		fmt.Fprintf(&b, "archive %s: no signature of catalog %s verifies with a pinned archive key (%s): refused; the archive was altered or signed by another key", e.Archive, e.Catalog, keyList(e.Keys))
	}
	for _, s := range e.Signatures {
		if !s.Valid { // without SignedBy, none is
			fmt.Fprintf(&b, "\n  signature %s (key hint %s): %s", s.Digest, s.KeyHint, s.Reason)
		}
	}
	return b.String()
}

// ForArchive returns the trust that the images of an archive are verified against:
//   - with archive keys pinned, the catalog must carry a valid signature by one of them (else an
//     *UnverifiedArchiveError); the signed catalog then vouches for its trust material;
//   - with keys, a policy or a trusted root given at the site, only those are used;
//   - with neither, ErrNoAnchor, unless Insecure: then the archive's own material, marked as such.
func (a *Anchors) ForArchive(ctx context.Context, r *archive.Reader, cat *archive.Catalog, catDesc ocispec.Descriptor) (*Trust, error) {
	if !a.Pinned() && !a.Insecure {
		return nil, ErrNoAnchor
	}
	var origin Origin
	var signedBy string
	if len(a.ArchiveKeys) > 0 {
		keys, err := LoadKeys(a.ArchiveKeys)
		if err != nil {
			return nil, fmt.Errorf("--archive-key: %w", err)
		}
		sigs, err := r.CatalogSignatures(ctx, catDesc.Digest)
		if err != nil {
			return nil, err
		}
		checked := CheckCatalogSignatures(sigs, catDesc.Digest, keys)
		origin.ArchiveKeys, origin.ArchiveSignatures = keyRefs(keys), checked
		for _, s := range checked {
			if s.Valid {
				for _, k := range keys {
					if k.Name == s.Signer {
						signedBy = k.Name + " (hint " + k.Hint + ")"
					}
				}
				break
			}
		}
		if signedBy == "" {
			return nil, &UnverifiedArchiveError{Archive: r.Path, Catalog: catDesc.Digest, Signatures: checked, Keys: keys}
		}
		for _, s := range checked {
			if !s.Valid {
				return nil, &UnverifiedArchiveError{Archive: r.Path, Catalog: catDesc.Digest, Signatures: checked, Keys: keys, SignedBy: signedBy}
			}
		}
	}
	var t *Trust
	var err error
	switch {
	case a.siteImageTrust():
		if t, err = a.siteTrust(); err != nil {
			return nil, err
		}
		origin.Kind = "site"
		if signedBy != "" {
			t.Source = "archive signed by " + signedBy + "; images: " + t.Source
		}
	default:
		if t, err = TrustFromArchive(ctx, r, cat); err != nil {
			return nil, err
		}
		if signedBy != "" {
			origin.Kind = "archive-signature"
			t.Source = "archive signed by " + signedBy + "; images: the archive's " + describeArchiveTrust(t) + ", vouched for by that signature"
		} else {
			origin.Kind = "insecure"
			t.Source = "the archive itself, not pinned (--insecure-archive-trust): " + describeArchiveTrust(t)
		}
	}
	t.setOrigin(origin, a.File)
	return a.withKeyring(t)
}

func describeArchiveTrust(t *Trust) string {
	parts := []string{"keys " + keyList(t.Keys)}
	if len(t.Keys) == 0 {
		parts[0] = "no keys"
	}
	if t.Policy != nil {
		parts = append(parts, "policy "+filepath.Base(t.Policy.Path))
	}
	if t.TrustedRoot != nil {
		parts = append(parts, "trusted root")
	}
	return strings.Join(parts, ", ")
}

// InsecureWarning is printed on stderr when the archive vouches for itself.
const InsecureWarning = "WARNING: --insecure-archive-trust: the archive's own keys, trusted root and policy are used, and nothing pinned at this site vouches for them; whoever could write to the transfer medium could have replaced them"
