// Package archive is airlock's on-disk format: an OCI image layout (image-spec v1.1) holding the saved
// images, their referrers and the catalog artifact, written either as a directory or as a tar stream
// split into volumes with a volume list (each volume's name and size; its sha256 only with save
// --volume-sums), and read back in place without extraction.
//
// Writing goes through Layout (a directory), which stores every blob under blobs/<alg>/<hex> only after
// its bytes have been hashed and checked against the expected digest and size, or TarWriter (tar
// volumes), which hashes each blob as it streams into its slot and cuts one that does not match back
// out. index.json is written once, at the end, atomically. An archive is complete only when its
// index.json names the catalog.
package archive
