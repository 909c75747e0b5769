package mirror

import (
	"context"
	"errors"
	"testing"

	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/registry"
	"airlock.dev/airlock/verify"
)

// TestCopySignNeedsTrust: copy --sign-key signs only what was verified, so without keys or a policy
// it refuses (ErrSignUnverified) before anything is planned; with either, or without --sign-key, it
// goes on (here, to an image set with nothing in it).
func TestCopySignNeedsTrust(t *testing.T) {
	site, pub := stationKey(t, t.TempDir(), "site")
	keys, err := verify.LoadKeys([]string{pub})
	if err != nil {
		t.Fatal(err)
	}
	regs, err := registry.New(registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		sign    bool
		trust   *verify.Trust
		refused bool
	}{
		{"sign, no trust", true, nil, true},
		{"sign, trust with neither keys nor a policy", true, &verify.Trust{}, true},
		{"sign, keys", true, &verify.Trust{Keys: keys}, false},
		{"sign, a policy", true, &verify.Trust{Policy: &verify.Policy{}}, false},
		{"no sign, no trust", false, nil, false},
	} {
		o := CopySetOptions{Trust: tc.trust, Plan: plan.PlanOptions{Retry: mirrortest.Retry}}
		if tc.sign {
			o.SignKey = site
		}
		_, err := CopySet(context.Background(), &config.ImageSet{}, regs, o)
		if errors.Is(err, ErrSignUnverified) != tc.refused {
			t.Errorf("%s: %v; want refused %v", tc.name, err, tc.refused)
		}
	}
}
