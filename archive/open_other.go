//go:build !unix

package archive

// noFollow: no such open flags here; callers Lstat first and check the opened file.
const noFollow = 0
