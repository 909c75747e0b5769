package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"airlock.dev/airlock/mirror/plan"
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
	// monolithic says whether the registry finishes an upload on its first POST (?digest= with the
	// body): 0 not known yet, 1 yes, 2 no (it answered with a session).
	monolithic atomic.Int32
	uploads    sync.Once
	// blobsBegun is set when Copy starts on the blobs: the upload question is no longer worth asking.
	blobsBegun atomic.Bool
}

var (
	_ Target     = (*RegistryTarget)(nil)
	_ Store      = (*registryStore)(nil)
	_ Mounter    = (*registryStore)(nil)
	_ BlobPusher = (*registryStore)(nil)
	_ Tagger     = (*registryStore)(nil)
)

// Store returns the repository plan's image goes to.
func (t *RegistryTarget) Store(ctx context.Context, ip *plan.ImagePlan) (Store, error) {
	name, err := TargetRepository(t.To, t.KeepHost, ip.Image)
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
	if hasLargeBlob(ip) {
		t.uploads.Do(func() { t.askUploads(ctx, repo) })
	}
	return s, nil
}

// hasLargeBlob reports whether plan holds a blob larger than probeSize: only for such blobs does the
// way the registry takes blobs change the requests (a small blob's exists-check and upload are a
// POST with a mount from the repository itself, then a PUT where the blob is not there, on any
// registry). The question is then asked before the first blob.
func hasLargeBlob(ip *plan.ImagePlan) bool {
	for _, n := range ip.Nodes() {
		for _, b := range n.Blobs {
			if b.Size > probeSize {
				return true
			}
		}
	}
	return false
}

// askUploads asks the registry, once, whether it takes a blob in one request (see
// registry.Registries.MonolithicUploads). Without an answer, each store finds out with its first
// small blob.
func (t *RegistryTarget) askUploads(ctx context.Context, repo *remote.Repository) {
	yes, err := plan.Retried(ctx, t.Retry, "ask "+repo.Reference.Host()+" how it takes blobs", func(ctx context.Context) (bool, error) {
		return t.Regs.MonolithicUploads(ctx, repo)
	})
	switch {
	case err != nil:
		if t.Log != nil {
			t.Log.Debug("target registry upload probe failed", "err", err)
		}
	case yes:
		t.monolithic.Store(1)
	default:
		t.monolithic.Store(2)
	}
}

type registryStore struct {
	t    *RegistryTarget
	name string
	repo *remote.Repository

	probe    sync.Once
	api      bool
	probeErr error
	probed   atomic.Bool // the probe answered: api holds its answer
}

func (s *registryStore) Name() string { return s.name }

// Exists and Push go to the repository's manifests or blobs by desc's media type (oras-go's
// Repository tells them apart).
func (s *registryStore) Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	return s.repo.Exists(ctx, desc)
}

func (s *registryStore) Push(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	return s.repo.Push(ctx, desc, r)
}

// probeSize bounds the blobs sent with the first POST while the registry's answer to a monolithic
// upload is not known: such a blob is held in memory, so that a registry that wants a session after
// all gets it again from there, and at most that much is sent twice.
const probeSize = 1 << 20

// PushBlob uploads a blob: with check, as pushChecked does; else in one request where the registry
// accepts a monolithic upload, and in a POST and a PUT where it does not (pushReopening).
func (s *registryStore) PushBlob(ctx context.Context, desc ocispec.Descriptor, open func(int64) (io.ReadCloser, error), check bool) (bool, error) {
	open0 := func() (io.ReadCloser, error) { return open(0) }
	if check {
		return s.pushChecked(ctx, desc, open0)
	}
	return false, s.pushReopening(ctx, desc, open0)
}

// pushReopening uploads a blob in one request where the registry accepts a monolithic upload, and
// in a POST and a PUT where it does not; what the first answer said is kept for the run.
func (s *registryStore) pushReopening(ctx context.Context, desc ocispec.Descriptor, open func() (io.ReadCloser, error)) error {
	state := s.t.monolithic.Load()
	how := registry.Upload{Monolithic: state == 1 || (state == 0 && desc.Size <= probeSize)}
	if state == 0 && how.Monolithic {
		// Read once, into memory (the blob is small): a registry that answers the one-request upload
		// with a session gets the blob again from there, not from the source.
		rc, err := open()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	created, err := registry.PushBlob(ctx, s.repo, desc, open, how)
	if err == nil && how.Monolithic && state == 0 {
		if created {
			s.t.monolithic.CompareAndSwap(0, 1)
		} else {
			s.t.monolithic.CompareAndSwap(0, 2)
			if s.t.Log != nil {
				s.t.Log.Debug("target registry wants an upload session for each blob (no monolithic upload)", "repository", s.name)
			}
		}
	}
	return err
}

// ChecksOnPush names the small blobs, on a registry that wants an upload session for each blob
// (which distribution does), or where how it takes blobs was not asked (no large blob in the run):
// their exists-check is the POST that starts their upload. Where the registry takes a blob in one
// request, a HEAD and that request are as few, and a run again sends nothing (a registry may not
// mount, and then would get each small blob again).
func (s *registryStore) ChecksOnPush(desc ocispec.Descriptor) bool {
	s.t.blobsBegun.Store(true)
	return desc.Size <= probeSize && s.t.monolithic.Load() != 1
}

// pushChecked asks the registry to mount the blob from the repository itself: 201 where the
// repository holds it (nothing sent), else the upload session the registry opens (202) gets the blob,
// which is small. The exists-check and the start of the upload are one request. A registry that does
// not mount re-receives such a blob on a run again: at most probeSize bytes. One that refuses the
// request (4xx) gets the blob the ordinary way.
func (s *registryStore) pushChecked(ctx context.Context, desc ocispec.Descriptor, open func() (io.ReadCloser, error)) (bool, error) {
	held, err := registry.PushBlob(ctx, s.repo, desc, open, registry.Upload{MountFrom: s.repo.Reference.Repository})
	var er *errcode.ErrorResponse
	if errors.As(err, &er) && er.StatusCode >= 400 && er.StatusCode < 500 && er.StatusCode != http.StatusUnauthorized && er.StatusCode != http.StatusForbidden && er.StatusCode != http.StatusTooManyRequests {
		if s.t.Log != nil {
			s.t.Log.Debug("target registry refused a mount from the repository itself", "repository", s.name, "err", err)
		}
		return false, s.pushReopening(ctx, desc, open)
	}
	return held, err
}

// FetchTagged reads the manifest reference points at with one GET, checked against the digest the
// registry names for it. A tag found before the first blob (the preflight) says the target holds
// content already, a run again: how the registry takes blobs is then asked, once, so that a registry
// that does not mount from the repository itself is not sent each small blob again. On a target that
// holds none of the images, the question is left out (see hasLargeBlob).
func (s *registryStore) FetchTagged(ctx context.Context, reference string) (ocispec.Descriptor, []byte, error) {
	d, b, err := plan.ReadReference(ctx, s.repo, reference)
	if err == nil && !s.t.blobsBegun.Load() {
		s.t.uploads.Do(func() { s.t.askUploads(ctx, s.repo) })
	}
	return d, b, err
}

func (s *registryStore) PushTagged(ctx context.Context, desc ocispec.Descriptor, manifest []byte, reference string) error {
	return s.repo.Manifests().PushReference(ctx, desc, bytes.NewReader(manifest), reference)
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
		s.api, s.probeErr = plan.Retried(ctx, s.t.Retry, "probe referrers API of "+s.name, func(ctx context.Context) (bool, error) {
			return registry.ProbeReferrers(ctx, repo)
		})
		if s.t.Log != nil {
			s.t.Log.Debug("target referrers API probed", "repository", s.name, "api", s.api, "err", s.probeErr)
		}
		s.probed.Store(s.probeErr == nil)
	})
	return s.api, s.probeErr
}

// AttachReferrers leaves referrers to the API where the repository has it, and lists them in the
// tag-schema index of each subject where it has not. Referrers found by a cosign tag travel as tags.
func (s *registryStore) AttachReferrers(ctx context.Context, ip *plan.ImagePlan) (Attached, error) {
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
	for _, r := range ip.Referrers {
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

// Referrers lists the referrers of subject through a client of its own, whose referrers capability
// is not the store's (set, so that oras-go never indexes on its own): oras-go asks the referrers API
// and reads the tag-schema index where the registry has none. Once the store has probed the
// repository, the client is told the answer, so a registry without the API is not asked it again
// for every image. A repository that does not exist yet holds no referrers.
func (s *registryStore) Referrers(ctx context.Context, subject ocispec.Descriptor, artifactType string, fn func([]ocispec.Descriptor) error) error {
	repo, err := s.t.Regs.Probe(s.name)
	if err != nil {
		return err
	}
	if s.probed.Load() {
		_ = repo.SetReferrersCapability(s.api)
	}
	err = repo.Referrers(ctx, subject, artifactType, fn)
	var er *errcode.ErrorResponse
	if errors.As(err, &er) && er.StatusCode == http.StatusNotFound && slices.ContainsFunc(er.Errors, func(e errcode.Error) bool { return e.Code == errcode.ErrorCodeNameUnknown }) {
		return nil
	}
	return err
}

// Fetch reads a manifest or a blob of the repository.
func (s *registryStore) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return s.repo.Fetch(ctx, desc)
}
