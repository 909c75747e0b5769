package archive

// A test written from an honest gremlins run over the tar reader (issue 20). See docs/mutation.md.

import (
	"bytes"
	"testing"
)

// TestCheckTarEndLooksOnlyAtTheStream: checkTarEnd reads the stream from off up to size and no
// further: bytes past size (here, after a short end marker) are not the stream's.
func TestCheckTarEndLooksOnlyAtTheStream(t *testing.T) {
	b := append(make([]byte, 100), 'x')
	for _, c := range []struct {
		off, size int64
		want      string
	}{
		{60, 100, ""},
		{100, 100, ""},
		{60, 101, "the end-of-archive marker is not where the last entry ends (byte 60): entries overlap"},
		{102, 101, "the last entry runs 1 bytes past the end of the 101-byte stream"},
	} {
		if got := checkTarEnd(bytes.NewReader(b), c.off, c.size); got != c.want {
			t.Errorf("off %d, size %d: %q, want %q", c.off, c.size, got, c.want)
		}
	}
}
