package asserted

import "testing"

// TestAsserts checks every result, at the limit and one past it: each mutant must be killed.
func TestAsserts(t *testing.T) {
	if !Fits(10, 10) || Fits(11, 10) || !Fits(9, 10) {
		t.Errorf("Fits(10, 10), Fits(11, 10), Fits(9, 10) = %v, %v, %v; want true, false, true",
			Fits(10, 10), Fits(11, 10), Fits(9, 10))
	}
	if got := Scale(3, 4); got != 11 {
		t.Errorf("Scale(3, 4) = %d, want 11", got)
	}
}
