// Package mirror is airlock's engine: it plans what to move and copies it, byte for byte.
//
// Planning: Open tells a location by its form (registry reference, directory, NAME.tar, NAME.tar.000).
// A Planner resolves each image and walks its graph (walker.manifest for indexes and platforms; one
// referrer walk, walk.go, over a ReferrerSource: the registry's referrers API, tag schema and cosign
// tags, or an archive's catalog). The result is an ImagePlan per image.
//
// Copying: Copy (engine.go) moves plans into a Target, in order: blobs (each once, exists-checked,
// mounted, resumed, retried; stalls are cut by the registry client), manifests children first,
// referrers after their subjects, tags last, then read-back. A registry repository, an OCI layout
// directory and tar volumes each implement Target (target_*.go); nine optional abilities (Mounter,
// ResumablePusher, ReferencePusher, ReferrerAttacher, Indexer, ReadBacker in target.go;
// CheckingPusher, ReopeningPusher in engine_blobs.go; TagReader in engine_images.go) are found by
// type assertion.
//
// Workflows: Load (load.go) and VerifyTarget (verifyflow.go) are one library function each, in one
// order (open, check, trust, plan, verify, push, keep); cmd/airlock parses flags, calls them and
// prints. See docs/design-notes.md.
package mirror
