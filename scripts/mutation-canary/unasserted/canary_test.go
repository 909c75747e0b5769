package unasserted

import "testing"

// TestCallsWithoutAsserting runs every line and checks nothing: each mutant must live.
func TestCallsWithoutAsserting(t *testing.T) {
	for n := -3; n <= 13; n++ {
		_ = Fits(n, 10)
		_ = Scale(n, 3)
	}
}
