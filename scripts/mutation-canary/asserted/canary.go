// Package asserted is part of the mutation-testing canary (see ../doc.go); no product code.
package asserted

// Fits reports whether size is within limit.
func Fits(size, limit int) bool {
	if size > limit {
		return false
	}
	return true
}

// Scale returns n times k, less one.
func Scale(n, k int) int {
	return n*k - 1
}
