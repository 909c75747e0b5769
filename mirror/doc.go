// Package mirror holds airlock's workflows, each one library function in one order; cmd/airlock
// parses flags, calls them and prints. What to move is planned by mirror/plan; mirror/engine copies it.
//
// Save (save.go): plan the image set, verify it if asked (SaveOptions.Trust), copy into a layout
// directory or tar volumes, store the trust files, the catalog and its signature (SaveOptions.SignKey),
// then index.json. Load (load.go): open, check, trust, plan, hash, verify, refuse rollbacks
// (rollback.go), hash, sign at the site if asked (LoadOptions.SignKey: siteSign, sitesign.go and
// sitebundle.go), Publish, keep the catalog. CopySet (copy.go): plan as Save does, verify, sign and
// Publish as Load does. Publish (publish.go) is engine.Copy into a registry, with the preflight. Diff
// (diff.go) says what a mirror or an archive lacks (DiffRegistry, DiffArchive); VerifyTarget
// (verifyflow.go) verifies an archive or a registry (plansOnRegistry, loaded.go); CheckForSigning
// and SignArchive (signcheck.go) sign an archive at a station. verifyPlans, gatePlans and gate
// (verify.go) are the adapters to package verify. See docs/design-notes.md.
package mirror
