package plan

import (
	"context"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/config"
	"airlock.dev/airlock/referrers"
	"airlock.dev/airlock/registry"
)

// registryReferrers is the referrer source of a registry repository: the referrers API or the tag
// schema (whichever the registry has), and cosign's legacy tags, through one referrers.Discoverer.
// Artifact type and kind are read from each referrer's manifest, never from the listing; the
// ImageSet's artifactTypes filter them.
type registryReferrers struct {
	disc     *referrers.Discoverer
	repoName string
	retry    registry.Retry
	want     config.Referrers
}

func (s *registryReferrers) Referrers(ctx context.Context, subject ocispec.Descriptor) ([]referrers.Found, error) {
	return Retried(ctx, s.retry, "referrers of "+subject.Digest.String()+" in "+s.repoName, func(ctx context.Context) ([]referrers.Found, error) {
		return s.disc.Find(ctx, subject)
	})
}

func (s *registryReferrers) Describe(_ referrers.Found, b []byte) (Label, bool, error) {
	at := referrers.ArtifactType(b)
	if !s.want.Wants(at) {
		return Label{}, false, nil
	}
	return Label{ArtifactType: at, Kind: referrers.Kind(b)}, true, nil
}

// referrerSource is the registry referrer source of repoName, its referrers capability probed once.
func (p *Planner) referrerSource(ctx context.Context, repoName string) (ReferrerSource, error) {
	disc, err := p.discoverer(ctx, repoName)
	if err != nil {
		return nil, err
	}
	return &registryReferrers{disc: disc, repoName: repoName, retry: p.retry(), want: p.Referrers}, nil
}

func (p *Planner) discoverer(ctx context.Context, repoName string) (*referrers.Discoverer, error) {
	p.mu.Lock()
	if p.discs == nil {
		p.discs = map[string]*discovery{}
	}
	d, ok := p.discs[repoName]
	if !ok {
		d = &discovery{}
		p.discs[repoName] = d
	}
	p.mu.Unlock()
	// One probe per repository; images of other repositories are not held up while it runs.
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.disc != nil {
		return d.disc, nil
	}
	repo, err := p.Registries.Repository(repoName)
	if err != nil {
		return nil, err
	}
	api, err := Retried(ctx, p.retry(), "probe referrers API of "+repoName, func(ctx context.Context) (bool, error) {
		return registry.ProbeReferrers(ctx, repo)
	})
	if err != nil {
		return nil, err
	}
	if p.Log != nil {
		p.Log.Debug("referrers API probed", "repository", repoName, "api", api)
	}
	d.disc = referrers.NewDiscoverer(repo, api)
	return d.disc, nil
}

// discovery is the referrers discoverer of one repository, made once.
type discovery struct {
	mu   sync.Mutex
	disc *referrers.Discoverer
}
