package mirror

import (
	"context"
	"errors"
	"strings"
	"testing"

	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/verify"
)

// TestCopySet: an image that fails verification is named and nothing is copied; without trust, the
// image set is planned and published into the target.
func TestCopySet(t *testing.T) {
	ctx := context.Background()
	set, regs, _ := saveSetup(t)
	_, pub := stationKey(t, t.TempDir(), "release")
	trust, err := (&verify.Anchors{Keys: []string{pub}}).Site()
	if err != nil {
		t.Fatal(err)
	}
	tgt := mirrortest.NewFakeTarget()
	o := CopySetOptions{Publish: PublishOptions{To: loadTo, Retry: mirrortest.Retry, Target: tgt}, Plan: plan.PlanOptions{Retry: mirrortest.Retry}}
	var warned []string
	o.Trust, o.Warn = trust, func(s string) { warned = append(warned, s) }
	res, err := CopySet(ctx, set, regs, o)
	if res != nil || !errors.Is(err, plan.ErrCheckFailed) || !strings.HasPrefix(err.Error(), "1 of 1 images failed verification") || len(warned) != 1 || len(tgt.Events) != 0 {
		t.Errorf("unsigned image under trust: %+v, %v, warned %q, %d writes; want nothing copied", res, err, warned, len(tgt.Events))
	}
	o.Trust = nil
	res, err = CopySet(ctx, set, regs, o)
	if err != nil || res.Refused != nil || len(res.Set.Plans) != 1 || len(res.Report.Images) != 1 || res.Report.Images[0].Status != "pushed" {
		t.Fatalf("copy: %+v, %v", res, err)
	}
	o.SparseIndex = "squash"
	if _, err := CopySet(ctx, set, regs, o); err == nil || !strings.Contains(err.Error(), `--sparse-index "squash"`) {
		t.Errorf("bad --sparse-index: %v", err)
	}
}
