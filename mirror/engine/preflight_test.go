package engine_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
)

// unreadableTarget is an askingTarget whose stores answer the first reads of a tag (the preflight's,
// with its retries: times of them, 1 when 0) with an error, per store.
type unreadableTarget struct {
	*askingTarget
	errs    map[string]error
	times   int
	wrapped map[string]*unreadableStore
}

func (t *unreadableTarget) Store(ctx context.Context, ip *plan.ImagePlan) (engine.Store, error) {
	st, err := t.askingTarget.Store(ctx, ip)
	if err != nil {
		return nil, err
	}
	t.Mu.Lock()
	defer t.Mu.Unlock()
	if t.wrapped == nil {
		t.wrapped = map[string]*unreadableStore{}
	}
	if s, ok := t.wrapped[st.Name()]; ok {
		return s, nil
	}
	s := &unreadableStore{askingStore: st.(*askingStore), err: t.errs[st.Name()], left: max(t.times, 1)}
	t.wrapped[st.Name()] = s
	return s, nil
}

type unreadableStore struct {
	*askingStore
	err  error
	left int
}

func (s *unreadableStore) FetchTagged(ctx context.Context, reference string) (ocispec.Descriptor, []byte, error) {
	s.t.Mu.Lock()
	err := s.err
	if s.left--; s.left <= 0 {
		s.err = nil
	}
	s.t.Mu.Unlock()
	if err != nil {
		s.t.ask("get-tag %s (failing)", reference)
		return ocispec.Descriptor{}, nil, err
	}
	return s.askingStore.FetchTagged(ctx, reference)
}

func pushedTo(events []string, store string) bool {
	for _, e := range events {
		if strings.Contains(e, store) {
			return true
		}
	}
	return false
}

// TestPreflightCredentialsRefused: an image whose tag the target refuses to read (credentials) fails
// before anything of it is pushed, the refusal named; the other images land. When every image is
// refused, the run stops with ErrNothingDone.
func TestPreflightCredentialsRefused(t *testing.T) {
	_, plans := mirrortest.SamplePlans(t)
	tgt := &unreadableTarget{askingTarget: &askingTarget{FakeTarget: mirrortest.NewFakeTarget()}, times: 10,
		errs: map[string]error{"site/team/api": mirrortest.Refusal(http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")}}
	rep, err := engine.Copy(context.Background(), plans, tgt, engine.CopyOptions{Retry: mirrortest.Retry, Preflight: true})
	if err == nil || errors.Is(err, engine.ErrNothingDone) {
		t.Errorf("one image refused: %v, want the run to fail, but not as nothing done", err)
	}
	app, api := rep.Images[0], rep.Images[1]
	if app.Status != "pushed" {
		t.Errorf("the readable image: %s (%s)", app.Status, app.Error)
	}
	if api.Status != "failed" || !strings.HasPrefix(api.Error, "before anything was pushed: the target denied the write") || !strings.Contains(api.Error, "docker login site") {
		t.Errorf("the refused image: %s %q", api.Status, api.Error)
	}
	if pushedTo(tgt.Events, "site/team/api") {
		t.Errorf("something of the refused image was written: %v", tgt.Events)
	}

	// Every image refused: nothing done.
	_, plans = mirrortest.SamplePlans(t)
	denied := mirrortest.Refusal(http.StatusForbidden, "DENIED", "requested access to the resource is denied")
	tgt = &unreadableTarget{askingTarget: &askingTarget{FakeTarget: mirrortest.NewFakeTarget()}, times: 10,
		errs: map[string]error{"site/team/api": denied, "site/team/app": denied}}
	_, err = engine.Copy(context.Background(), plans, tgt, engine.CopyOptions{Retry: mirrortest.Retry, Preflight: true})
	if !errors.Is(err, engine.ErrNothingDone) || !strings.Contains(err.Error(), "the target answered no image before the first blob") ||
		!strings.Contains(err.Error(), plans[0].Source) || !strings.Contains(err.Error(), plans[1].Source) {
		t.Errorf("every image refused: %v, want ErrNothingDone naming both images", err)
	}
	if len(tgt.Events) != 0 {
		t.Errorf("written although every image was refused: %v", tgt.Events)
	}
}

// TestReadTag: what the read of a tag before the run makes of each answer.
func TestReadTag(t *testing.T) {
	_, plans := mirrortest.SamplePlans(t)
	ip := plans[1]
	for _, c := range []struct {
		name  string
		err   error
		fails bool // the image fails before the run
	}{
		{"a 400 says nothing of reach or credentials", mirrortest.Refusal(http.StatusBadRequest, "MANIFEST_UNKNOWN", "odd"), false},
		{"a 404 without the not-found error", mirrortest.Refusal(http.StatusNotFound, "NAME_UNKNOWN", "no such repository"), false},
		{"an error of no known kind", errors.New("manifest unreadable"), false},
		{"a 500", mirrortest.Refusal(http.StatusInternalServerError, "UNKNOWN", "boom"), true},
		{"a 429", mirrortest.Refusal(http.StatusTooManyRequests, "TOOMANYREQUESTS", "slow down"), true},
		{"a 408", mirrortest.Refusal(http.StatusRequestTimeout, "", ""), true},
		{"connection refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			tgt := &unreadableTarget{askingTarget: &askingTarget{FakeTarget: mirrortest.NewFakeTarget()}, errs: map[string]error{"site/team/api": c.err}, times: 10}
			if !c.fails {
				tgt.times = 1
			}
			rep, err := engine.Copy(context.Background(), []*plan.ImagePlan{ip}, tgt, engine.CopyOptions{Retry: mirrortest.Retry, Preflight: true})
			if !c.fails {
				if err != nil || rep.Images[0].Status != "pushed" {
					t.Errorf("%v, %s: want the image pushed, its tag asked again when written", err, rep.Images[0].Status)
				}
				return
			}
			if !errors.Is(err, engine.ErrNothingDone) || rep.Images[0].Status != "failed" || !strings.HasPrefix(rep.Images[0].Error, "before anything was pushed: ") {
				t.Errorf("%v, %s %q: want nothing done", err, rep.Images[0].Status, rep.Images[0].Error)
			}
			if len(tgt.Events) != 0 {
				t.Errorf("written: %v", tgt.Events)
			}
		})
	}
}

// TestReadTagCanceled: a run canceled during the read of a tag stops with the cancellation.
func TestReadTagCanceled(t *testing.T) {
	_, plans := mirrortest.SamplePlans(t)
	ctx, cancel := context.WithCancel(context.Background())
	tgt := &unreadableTarget{askingTarget: &askingTarget{FakeTarget: mirrortest.NewFakeTarget()}, errs: map[string]error{"site/team/api": errors.New("interrupted")}}
	cancel()
	rep, err := engine.Copy(ctx, plans[1:], tgt, engine.CopyOptions{Retry: mirrortest.Retry, Preflight: true})
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v, want context.Canceled", err)
	}
	if rep != nil && len(rep.Images) == 1 && rep.Images[0].Status == "pushed" {
		t.Errorf("canceled run pushed the image")
	}
}

// TestPreflightNotEveryImageAsked: the run stops as nothing done only when every image was asked and
// every one failed. An image without a tag is not asked; when the only image asked is refused, the
// untagged one still lands and the run is not "nothing done". A run of no images asks nothing and
// fails nothing.
func TestPreflightNotEveryImageAsked(t *testing.T) {
	src, plans := mirrortest.SamplePlans(t)
	api := plans[1]
	byDigest := mirrortest.Plan(t, src, "registry.example.com/team/api@"+api.Root.Desc.Digest.String(), api.Root)
	if len(engine.TagsOf(byDigest)) != 0 {
		t.Fatalf("the plan by digest has tags %v", engine.TagsOf(byDigest))
	}
	tgt := &unreadableTarget{askingTarget: &askingTarget{FakeTarget: mirrortest.NewFakeTarget()}, times: 10,
		errs: map[string]error{"site/team/app": mirrortest.Refusal(http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")}}
	rep, err := engine.Copy(context.Background(), []*plan.ImagePlan{plans[0], byDigest}, tgt, engine.CopyOptions{Retry: mirrortest.Retry, Preflight: true})
	if err == nil || errors.Is(err, engine.ErrNothingDone) {
		t.Errorf("the only image asked refused: %v, want the run failed, not nothing done", err)
	}
	if rep.Images[0].Status != "failed" || !strings.HasPrefix(rep.Images[0].Error, "before anything was pushed: ") || rep.Images[1].Status != "pushed" {
		t.Errorf("images: %s %q, %s %q", rep.Images[0].Status, rep.Images[0].Error, rep.Images[1].Status, rep.Images[1].Error)
	}
	if rep, err := engine.Copy(context.Background(), nil, mirrortest.NewFakeTarget(), engine.CopyOptions{Retry: mirrortest.Retry, Preflight: true}); err != nil || len(rep.Images) != 0 {
		t.Errorf("no images: %v", err)
	}
}
