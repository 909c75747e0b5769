// Package archive is airlock's on-disk format: an OCI image layout (image-spec v1.1) holding the saved
// images, their referrers and the catalog artifact, written either as a directory or as a tar stream
// split into volumes with a checksum list, and read back in place without extraction.
//
// Writing goes through Layout, which stores every blob under blobs/<alg>/<hex> only after its bytes
// have been hashed and checked against the expected digest and size, and writes index.json once, at
// the end, atomically. An archive is complete only when its index.json names the catalog.
package archive
