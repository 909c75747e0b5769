// Package plan says what moving an image involves: an ImagePlan per image, the graph of its manifests,
// blobs and referrers, each manifest read once, bounded and hashed.
//
// FormOf (open.go) tells a location by its form (registry reference, directory, NAME.tar, NAME.tar.000);
// OpenArchive opens one that must be an archive.
// PlanSet (imageset.go) expands an ImageSet (repositories listed, blocked images left out) and plans
// each image with a Planner (plan.go): it resolves the image and walks its graph (walker.manifest for
// indexes and platforms; one referrer walk, walk.go, over a ReferrerSource: the registry's referrers
// API, tag schema and cosign tags in referrers_registry.go, or an archive's catalog in
// referrers_catalog.go). PlansFromArchive and PlansFromDelta (archiveplan.go) plan an archive's
// images, CatalogPlan (catalogplan.go) its catalog with its signatures; Flatten (flatten.go) turns a
// sparse index with one platform into that platform's plan.
package plan
