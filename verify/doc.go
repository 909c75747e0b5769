// Package verify checks, fully offline, that images carry the signatures and attestations a policy
// asks for: Sigstore bundles stored as OCI referrers (cosign v3's default, key-based or keyless), and
// cosign's legacy simple-signing .sig and DSSE .att manifests. Keys, the Sigstore trusted root and the
// policy come from the archive's catalog or from the user; nothing is fetched from any network.
package verify
