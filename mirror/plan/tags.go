package plan

import (
	"context"

	"airlock.dev/airlock/registry"
)

// TagPageSize is how many tags are asked for in one page of a tag list (the n parameter). A registry
// may send fewer; the Link header of each page leads to the next, to the end.
var TagPageSize = 100

// ListTags returns every tag of the repository name ("host[:port]/path"), in the order the registry
// lists them, following every page of the list: each request asks for TagPageSize tags (n) and the
// Link header of a page names the next (carrying last), which oras-go follows only to the same
// origin. The listing is retried as a whole.
func ListTags(ctx context.Context, regs *registry.Registries, name string, retry registry.Retry) ([]string, error) {
	// A client of its own, so that the page size is set on it alone (Probe shares the transport,
	// the credentials and the token cache).
	repo, err := regs.Probe(name)
	if err != nil {
		return nil, err
	}
	repo.TagListPageSize = TagPageSize
	var tags []string
	err = retry.OrDefault().Do(ctx, "tag list of "+name, func(ctx context.Context) error {
		tags = tags[:0]
		return repo.Tags(ctx, "", func(page []string) error {
			tags = append(tags, page...)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return tags, nil
}
