// Package mirror is airlock's engine: it plans what to move (each image's manifests, the platforms
// chosen, the blobs they need and every referrer attached, recursively) and copies it concurrently,
// deduplicated by digest, from a Source to a Target, byte for byte.
//
// A registry repository (oras-go's *remote.Repository), an OCI layout directory and an archive read in
// place implement the small Source and Target interfaces, so one copy routine serves save, load and
// copy.
package mirror
