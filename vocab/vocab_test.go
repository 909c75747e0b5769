package vocab_test

import (
	"testing"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/vocab"
)

// TestArchiveSpellsTheSame guards the names archive still declares itself (in signature.go and
// check.go) until they become aliases of these: each must keep vocab's value.
func TestArchiveSpellsTheSame(t *testing.T) {
	for _, c := range []struct{ name, archive, vocab string }{
		{"BundleMediaType", archive.BundleMediaType, vocab.BundleMediaType},
		{"AnnotationBundlePredicateType", archive.AnnotationBundlePredicateType, vocab.AnnotationBundlePredicateType},
		{"AnnotationBundleContent", archive.AnnotationBundleContent, vocab.AnnotationBundleContent},
		{"CosignSignPredicateType", archive.CosignSignPredicateType, vocab.CosignSignPredicateType},
		{"AnnotationCatalogSignature", archive.AnnotationCatalogSignature, vocab.AnnotationCatalogSignature},
	} {
		if c.archive != c.vocab {
			t.Errorf("archive.%s = %q, vocab.%s = %q", c.name, c.archive, c.name, c.vocab)
		}
	}
	if archive.MaxManifestSize != vocab.MaxManifestSize {
		t.Errorf("archive.MaxManifestSize = %d, vocab.MaxManifestSize = %d", archive.MaxManifestSize, vocab.MaxManifestSize)
	}
}
