package mirror

import (
	"context"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/referrers"
)

// catalogReferrers is the referrer source of an archive: the referrers its catalog lists, in the
// catalog's order under each subject, each labelled (artifact type, kind, repository, how it was
// found) as the catalog records it. Nothing is filtered: save filtered already.
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
		out = append(out, referrers.Found{
			Descriptor: ocispec.Descriptor{MediaType: ref.MediaType, Digest: ref.Digest, Size: ref.Size, ArtifactType: ref.ArtifactType},
			Subject:    ref.Subject,
			Method:     referrers.Method(ref.FoundBy),
			Tag:        ref.Tag,
		})
	}
	return out, nil
}

func (s *catalogReferrers) Describe(f referrers.Found, _ []byte) (Label, bool) {
	for _, ref := range s.bySubject[f.Subject] {
		if ref.Digest == f.Descriptor.Digest {
			return Label{ArtifactType: ref.ArtifactType, Kind: ref.Kind, Repository: ref.Repository}, true
		}
	}
	return Label{}, false // not listed: Referrers never returns it
}
