package plan

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/referrers"
)

// catalogReferrers is the referrer source of an archive: the referrers its catalog lists, in the
// catalog's order under each subject. Nothing is filtered: save filtered already.
//
// The catalog is input that no key may have signed, so it decides nothing about a referrer that its
// own manifest can tell: the artifact type and kind are read from the manifest, a referrer found
// through the API or the tag schema must name its subject in its manifest, and the only tags are
// cosign's legacy ones, sha256-<hex of the subject>.sig, .att or .sbom. A catalog that says otherwise
// was forged or damaged, and the image is refused.
type catalogReferrers struct {
	bySubject map[digest.Digest][]archive.Referrer
}

func newCatalogReferrers(cat *archive.Catalog) *catalogReferrers {
	s := &catalogReferrers{bySubject: map[digest.Digest][]archive.Referrer{}}
	for _, ref := range cat.Referrers {
		s.bySubject[ref.Subject] = append(s.bySubject[ref.Subject], ref)
	}
	return s
}

func (s *catalogReferrers) Referrers(_ context.Context, subject ocispec.Descriptor) ([]referrers.Found, error) {
	var out []referrers.Found
	for _, ref := range s.bySubject[subject.Digest] {
		f := referrers.Found{
			Descriptor: ocispec.Descriptor{MediaType: ref.MediaType, Digest: ref.Digest, Size: ref.Size},
			Subject:    subject.Digest,
			Method:     referrers.Method(ref.FoundBy),
			Tag:        ref.Tag,
		}
		if err := checkReferrerTag(f); err != nil {
			return nil, fmt.Errorf("catalog referrer %s of %s: %w: the catalog was altered; refused", ref.Digest, subject.Digest, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// checkReferrerTag refuses a tag that is not the cosign legacy tag of the referrer's subject, and a
// cosign-tag referrer without one.
func checkReferrerTag(f referrers.Found) error {
	switch f.Method {
	case referrers.CosignTag:
		base := referrers.TagFor(f.Subject)
		if !slices.ContainsFunc(referrers.CosignSuffixes, func(s string) bool { return f.Tag == base+s }) {
			return fmt.Errorf("found by a cosign tag, but its tag %q is not %s.sig, .att or .sbom", f.Tag, base)
		}
	case referrers.API, referrers.TagSchema:
		if f.Tag != "" {
			return fmt.Errorf("tag %q given to a referrer found by %s: only cosign's legacy tags are written", f.Tag, f.Method)
		}
	default:
		return fmt.Errorf("found by %q, which is none of api, tag-schema, cosign-tag", f.Method)
	}
	return nil
}

// Describe labels a referrer from its manifest b (read and checked against its digest). A referrer
// found through the referrers API or the tag schema must name its subject in b; one found by a cosign
// tag is bound to its subject by that tag.
func (s *catalogReferrers) Describe(f referrers.Found, b []byte) (Label, bool, error) {
	if f.Method != referrers.CosignTag {
		var m struct {
			Subject *ocispec.Descriptor `json:"subject"`
		}
		if err := json.Unmarshal(b, &m); err != nil || m.Subject == nil || m.Subject.Digest != f.Subject {
			named := "no subject"
			if m.Subject != nil {
				named = "subject " + m.Subject.Digest.String()
			}
			return Label{}, false, fmt.Errorf("the catalog lists it as a referrer of %s, but its manifest names %s: the catalog was altered; refused", f.Subject, named)
		}
	}
	var repo string
	for _, ref := range s.bySubject[f.Subject] {
		if ref.Digest == f.Descriptor.Digest {
			repo = ref.Repository // where it was found: named in messages only
		}
	}
	return Label{ArtifactType: referrers.ArtifactType(b), Kind: referrers.Kind(b), Repository: repo}, true, nil
}
