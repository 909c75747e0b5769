package charts

import (
	"slices"
	"testing"
)

func TestNumberWarnings(t *testing.T) {
	got := NumberWarnings([]byte(`image:
  tag: 1.20
  other: '1.20'
  plain: 1.2
  count: 3
  octal: 010
  list: [1.0, "1.0", 2]
  hex: 0x10
  yes: yes
  big: 1e3
name: app
`))
	want := []string{
		"image.tag: 1.20 is 1.2 to Helm; quote it ('1.20') if it is a version or a tag",
		"image.octal: 010 is 8 to Helm; quote it ('010') if it is a version or a tag",
		"image.list[0]: 1.0 is 1 to Helm; quote it ('1.0') if it is a version or a tag",
		"image.hex: 0x10 is 16 to Helm; quote it ('0x10') if it is a version or a tag",
		"image.yes: yes is true to Helm; quote it ('yes') if it is a version or a tag",
		"image.big: 1e3 is 1000 to Helm; quote it ('1e3') if it is a version or a tag",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if w := NumberWarnings([]byte("a: [")); w != nil {
		t.Errorf("unparsable values: %q, want none (Helm's parser reports those)", w)
	}
}
