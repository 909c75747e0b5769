package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"airlock.dev/airlock/referrers"
	"airlock.dev/airlock/registry"
)

// RegistryTarget is a registry under a prefix as a Copy target: each image goes to its own repository
// (TargetRepository). Its stores mount blobs from one another, push tags with the manifest bytes,
// attach referrers through the referrers API where the registry has it (probed once per repository)
// and through the sha256-<hex> tag-schema index where it has not (kept by airlock, never deleted), and
// read everything back.
type RegistryTarget struct {
	Regs *registry.Registries
	// To is HOST[:PORT][/PREFIX]; KeepHost keeps the source host as a path element.
	To       string
	KeepHost bool
	// Retry bounds retries of the referrers probe; zero means registry.DefaultRetry.
	Retry registry.Retry
	Log   *slog.Logger

	mu     sync.Mutex
	stores map[string]*registryStore
}

var (
	_ Target           = (*RegistryTarget)(nil)
	_ Store            = (*registryStore)(nil)
	_ Mounter          = (*registryStore)(nil)
	_ ReferencePusher  = (*registryStore)(nil)
	_ ReferrerAttacher = (*registryStore)(nil)
	_ ReadBacker       = (*registryStore)(nil)
)

// Store returns the repository plan's image goes to.
func (t *RegistryTarget) Store(_ context.Context, plan *ImagePlan) (Store, error) {
	name, err := TargetRepository(t.To, t.KeepHost, plan.Image)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.stores[name]; ok {
		return s, nil
	}
	repo, err := t.Regs.Target(name)
	if err != nil {
		return nil, err
	}
	if t.stores == nil {
		t.stores = map[string]*registryStore{}
	}
	s := &registryStore{t: t, name: name, repo: repo}
	t.stores[name] = s
	return s, nil
}

type registryStore struct {
	t    *RegistryTarget
	name string
	repo *remote.Repository

	probe    sync.Once
	api      bool
	probeErr error
}

func (s *registryStore) Name() string { return s.name }

func (s *registryStore) Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	if isIndex(desc.MediaType) || isManifest(desc.MediaType) {
		return s.repo.Manifests().Exists(ctx, desc)
	}
	return s.repo.Blobs().Exists(ctx, desc)
}

func (s *registryStore) Push(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	if isIndex(desc.MediaType) || isManifest(desc.MediaType) {
		return s.repo.Manifests().Push(ctx, desc, r)
	}
	return s.repo.Blobs().Push(ctx, desc, r)
}

func (s *registryStore) Tag(ctx context.Context, desc ocispec.Descriptor, reference string) error {
	return s.repo.Tag(ctx, desc, reference)
}

func (s *registryStore) PushReference(ctx context.Context, desc ocispec.Descriptor, r io.Reader, reference string) error {
	return s.repo.Manifests().PushReference(ctx, desc, r, reference)
}

// errMountRefused stops oras-go from uploading inside Mount when the registry declines to mount: Copy
// then uploads through its own retried upload.
var errMountRefused = errors.New("mount refused")

// Mount mounts desc from another repository of the same registry.
func (s *registryStore) Mount(ctx context.Context, desc ocispec.Descriptor, from Store) (bool, error) {
	host, _, _ := strings.Cut(s.name, "/")
	fromHost, fromPath, _ := strings.Cut(from.Name(), "/")
	if host != fromHost {
		return false, nil
	}
	refused := false
	err := s.repo.Blobs().(interface {
		Mount(context.Context, ocispec.Descriptor, string, func() (io.ReadCloser, error)) error
	}).Mount(ctx, desc, fromPath, func() (io.ReadCloser, error) { refused = true; return nil, errMountRefused })
	if refused || errors.Is(err, errMountRefused) {
		return false, nil
	}
	return err == nil, err
}

// referrersAPI probes the repository once. Call it after the repository has content: some registries
// answer 404 for any request on a repository that does not exist yet.
func (s *registryStore) referrersAPI(ctx context.Context) (bool, error) {
	s.probe.Do(func() {
		repo, err := s.t.Regs.Probe(s.name)
		if err != nil {
			s.probeErr = err
			return
		}
		s.probeErr = s.t.Retry.Do(ctx, "probe referrers API of "+s.name, func(ctx context.Context) error {
			var err error
			s.api, err = registry.ProbeReferrers(ctx, repo)
			return err
		})
		if s.t.Log != nil {
			s.t.Log.Debug("target referrers API probed", "repository", s.name, "api", s.api, "err", s.probeErr)
		}
	})
	return s.api, s.probeErr
}

// AttachReferrers leaves referrers to the API where the repository has it, and lists them in the
// tag-schema index of each subject where it has not. Referrers found by a cosign tag travel as tags.
func (s *registryStore) AttachReferrers(ctx context.Context, plan *ImagePlan) (Attached, error) {
	api, err := s.referrersAPI(ctx)
	if err != nil {
		return Attached{}, err
	}
	if api {
		return Attached{By: string(referrers.API)}, nil
	}
	a := Attached{By: string(referrers.TagSchema)}
	bySubject := map[digest.Digest][]ocispec.Descriptor{}
	var subjects []digest.Digest
	for _, r := range plan.Referrers {
		if r.Referrer.Method == referrers.CosignTag {
			continue
		}
		if _, ok := bySubject[r.Referrer.Subject]; !ok {
			subjects = append(subjects, r.Referrer.Subject)
		}
		bySubject[r.Referrer.Subject] = append(bySubject[r.Referrer.Subject], referrers.Describe(r.Desc.MediaType, r.Manifest))
	}
	for _, sub := range subjects {
		changed, err := referrers.EnsureTagSchema(ctx, s.repo, sub, bySubject[sub])
		if err != nil {
			return a, fmt.Errorf("referrers index of %s in %s: %w", sub, s.name, err)
		}
		if changed {
			a.Changed = true
			a.Indexes++
		}
	}
	return a, nil
}

func (s *registryStore) FetchManifest(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	return fetchManifest(ctx, s.repo, desc)
}

func (s *registryStore) Resolve(ctx context.Context, reference string) (ocispec.Descriptor, error) {
	return s.repo.Resolve(ctx, reference)
}
