// Package engine copies plans into a target, byte for byte.
//
// Copy (engine.go) moves plans into a Target, in order: the preflight (preflight.go: where each tag
// points), blobs (engine_blobs.go: each once, exists-checked, mounted, resumed, retried; stalls are
// cut by the registry client), manifests children first, referrers after their subjects, tags last,
// then read-back (engine_images.go). A registry refusal becomes a RefusedError that says what to do
// (refusal.go). A registry repository, an OCI layout directory and tar volumes each implement Target
// (target_registry.go, target_layout.go, target_tar.go); four optional abilities (target.go) are
// found by type assertion: how a store takes blobs (BlobPusher, Mounter) and how it names what it
// holds (Indexer for an archive, Tagger for a registry). TargetRepository (naming.go) says where an image lands under a prefix.
package engine
