// Package mirror is airlock's engine: it plans what to move and copies it, byte for byte.
//
// Planning: Open tells a location by its form (registry reference, directory, NAME.tar, NAME.tar.000).
// A Planner resolves each image and walks its graph (walker.manifest for indexes and platforms; one
// referrer walk, walk.go, over a ReferrerSource: the registry's referrers API, tag schema and cosign
// tags, or an archive's catalog). The result is an ImagePlan per image.
//
// Copying: Copy (engine.go) moves plans into a Target, in order: blobs (each once, exists-checked,
// mounted, resumed, retried, watched for stalls), manifests children first, referrers after their
// subjects, tags last, then read-back. A registry repository, an OCI layout directory and tar volumes
// each implement Target (target_*.go); optional abilities (Mounter, ResumablePusher, ReferencePusher,
// ReferrerAttacher, Indexer, ReadBacker) are found by type assertion. save, load and copy are thin
// callers. See docs/design-notes.md.
package mirror
