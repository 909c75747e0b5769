package engine_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"airlock.dev/airlock/mirror/engine"
	"airlock.dev/airlock/mirror/internal/mirrortest"
)

// TestCopyAgainWithoutPreflight: a run again without the preflight asks each tag once where the
// manifest is there already: a tag that names the image (bytes and digest) is left alone, with no
// PUT; a tag moved since is reported and moved back, or, with RefuseTagMoves, left alone with the
// image's content pushed, untagged, and the image failed naming the move.
func TestCopyAgainWithoutPreflight(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		_, plans := mirrortest.SamplePlans(t)
		tgt := &askingTarget{FakeTarget: mirrortest.NewFakeTarget()}
		if _, err := engine.Copy(context.Background(), plans, tgt, engine.CopyOptions{Retry: mirrortest.Retry}); err != nil {
			t.Fatal(err)
		}
		old := moveTag(t, tgt.FakeTarget, "site/team/api", "2.0")
		tgt.asked = nil
		rep, err := engine.Copy(context.Background(), plans, tgt, engine.CopyOptions{Retry: mirrortest.Retry, RefuseTagMoves: refuse})
		app, api := rep.Images[0], rep.Images[1]
		if app.TagMoved != nil || app.Status == "failed" {
			t.Errorf("refuse %v: the image whose tag is right: %s %q, moved %+v", refuse, app.Status, app.Error, app.TagMoved)
		}
		if slices.Contains(tgt.asked, "push-tag 1.0") {
			t.Errorf("refuse %v: the tag that named the image was written again:\n  %s", refuse, strings.Join(tgt.asked, "\n  "))
		}
		if m := api.TagMoved; m == nil || m.Tag != "2.0" || m.From != old || m.To != plans[1].Root.Desc.Digest || m.Refused != refuse {
			t.Errorf("refuse %v: move reported as %+v, want 2.0 from %s to %s", refuse, m, old, plans[1].Root.Desc.Digest)
		}
		now := tgt.Stores["site/team/api"].Tags["2.0"]
		if !refuse {
			if err != nil || api.Status == "failed" || now != plans[1].Root.Desc.Digest {
				t.Errorf("allow: %v, %s %q, tag at %s; want it moved back", err, api.Status, api.Error, now)
			}
			continue
		}
		want := "tag site/team/api:2.0 would move from " + old.String() + " to " + plans[1].Root.Desc.Digest.String() + "; --tag-moves=refuse left it alone (the image's content was pushed, untagged)"
		if err == nil || api.Status != "failed" || !strings.Contains(api.Error, want) || now != old {
			t.Errorf("refuse: %v, %s %q, tag at %s; want it left at %s and the error %q", err, api.Status, api.Error, now, old, want)
		}
	}
}

// TestCopyReferrerTagMoves: a referrer's cosign tag that names something else on the target (another
// load's unsigned image, say) goes through the same check as the image's own tag: reported as moved,
// and with RefuseTagMoves left alone with the image failed, naming it. It is asked even though the
// referrer's content was not on the target when the run began.
func TestCopyReferrerTagMoves(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		_, plans := mirrortest.SamplePlans(t)
		app := plans[0]
		sigTag := app.Referrers[1].Referrer.Tag // sha256-<amd64 manifest>.sig
		tgt := &askingTarget{FakeTarget: mirrortest.NewFakeTarget()}
		if _, err := tgt.Store(context.Background(), app); err != nil {
			t.Fatal(err)
		}
		old := moveTag(t, tgt.FakeTarget, "site/team/app", sigTag)
		rep, err := engine.Copy(context.Background(), plans, tgt, engine.CopyOptions{Retry: mirrortest.Retry, Preflight: true, RefuseTagMoves: refuse})
		ir := rep.Images[0]
		if len(ir.ReferrerTagsMoved) != 1 || ir.ReferrerTagsMoved[0].Tag != sigTag || ir.ReferrerTagsMoved[0].From != old || ir.ReferrerTagsMoved[0].Refused != refuse {
			t.Errorf("refuse %v: referrer tag moves %+v, want %s from %s", refuse, ir.ReferrerTagsMoved, sigTag, old)
		}
		now := tgt.Stores["site/team/app"].Tags[sigTag]
		if !refuse {
			if err != nil || ir.Status == "failed" || now != app.Referrers[1].Desc.Digest {
				t.Errorf("allow: %v, %s %q, %s at %s", err, ir.Status, ir.Error, sigTag, now)
			}
			continue
		}
		if err == nil || ir.Status != "failed" || !strings.Contains(ir.Error, "tag site/team/app:"+sigTag+" would move from "+old.String()) || now != old {
			t.Errorf("refuse: %v, %s %q, %s at %s; want it left at %s", err, ir.Status, ir.Error, sigTag, now, old)
		}
		if !strings.Contains(ir.Error, "nothing of this image was pushed") || slices.ContainsFunc(tgt.Events, func(e string) bool { return strings.Contains(e, " site/team/app ") }) {
			t.Errorf("refuse: the image's content was pushed before the refusal (%q):\n  %s", ir.Error, strings.Join(tgt.Events, "\n  "))
		}
		if rep.Images[1].Status == "failed" {
			t.Errorf("refuse: the other image failed too: %s", rep.Images[1].Error)
		}
	}
}
