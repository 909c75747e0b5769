package plan_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/registry"
)

func TestListTagsFollowsEveryPage(t *testing.T) {
	ctx := context.Background()
	host, regs, p := mirrortest.StartPagingRegistry(t, 3) // the registry sends at most 3 a page, whatever n asks
	for i := range 10 {
		p.Tags = append(p.Tags, fmt.Sprintf("1.0.%d", i))
	}
	defer func(n int) { plan.TagPageSize = n }(plan.TagPageSize)
	plan.TagPageSize = 4
	got, err := plan.ListTags(ctx, regs, host+"/team/app", registry.Retry{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, p.Tags) {
		t.Errorf("listed %v, want every tag %v", got, p.Tags)
	}
	if len(p.Requests) != 4 || !strings.Contains(p.Requests[0], "n=4") || !strings.Contains(p.Requests[3], "last=1.0.8") {
		t.Errorf("tag list requests %q: want 4 pages, the first asking n=4, the last after 1.0.8", p.Requests)
	}
}

func TestPlanSetCollectsEveryProblem(t *testing.T) {
	ctx := context.Background()
	host, regs, p := mirrortest.StartPagingRegistry(t, 100)
	p.Tags = []string{"1.0.0", "1.4.2", "1.5.0-rc.1", "2.0.0"}
	mirrortest.PushTags(ctx, t, regs, host+"/team/app", p.Tags...)
	mirrortest.PushTags(ctx, t, regs, host+"/team/api", "1")
	file := fmt.Sprintf(`apiVersion: airlock.dev/v1alpha1
kind: ImageSet
images:
  - ref: %[1]s/team/api:1
  - ref: %[1]s/team/api:missing
  - ref: %[1]s/team/app:1.0.0
repositories:
  - name: %[1]s/team/app
    tags:
      semver: '>=1.0.0 <2.0.0'
  - name: %[1]s/team/gone
blocked:
  - ':1\.0\.0$'
`, host)
	set, err := config.Parse("imageset.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	_, err = plan.PlanSet(ctx, set, regs, plan.PlanOptions{Concurrency: 2})
	var re *plan.ResolutionError
	if !errors.As(err, &re) || len(re.Problems) != 2 {
		t.Fatalf("without KeepGoing: %v; want a ResolutionError naming the missing tag and the missing repository", err)
	}
	// Of counts the images expanded (api:1, api:missing, app:1.4.2) and the repository not listed.
	if re.Of != 4 {
		t.Errorf("the error counts %d images and repositories, want 4", re.Of)
	}
	for _, want := range []string{"2 of the 4 images, repositories and charts of the image set did not resolve", `tag "missing" not found`, host + "/team/gone (ImageSet line 11): its tags could not be listed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q:\n%v", want, err)
		}
	}

	sp, err := plan.PlanSet(ctx, set, regs, plan.PlanOptions{Concurrency: 2, KeepGoing: true})
	if err != nil {
		t.Fatal(err)
	}
	var planned []string
	for _, pl := range sp.Plans {
		planned = append(planned, pl.Source)
	}
	want := []string{host + "/team/api:1", host + "/team/app:1.4.2"}
	if !slices.Equal(planned, want) {
		t.Errorf("planned %v, want %v (1.0.0 blocked, 1.5.0-rc.1 and 2.0.0 outside the range)", planned, want)
	}
	if len(sp.Blocked) != 1 || sp.Blocked[0].Source != host+"/team/app:1.0.0" || sp.Blocked[0].Rule != `:1\.0\.0$` {
		t.Errorf("blocked %+v", sp.Blocked)
	}
	if len(sp.LeftOut) != 2 || sp.LeftOut[0].Source != host+"/team/gone" || sp.LeftOut[1].Source != host+"/team/api:missing" {
		t.Errorf("left out %+v", sp.LeftOut)
	}
	if r := sp.Repositories[0]; r.Listed != 4 || !slices.Equal(r.Picked, []string{"1.4.2", "1.0.0"}) || len(r.Tags) != 4 {
		t.Errorf("repository report %+v", r)
	}
	if sp.Repositories[1].Error == "" {
		t.Errorf("the missing repository's report has no error: %+v", sp.Repositories[1])
	}
	// Without KeepGoing, a set that resolves whole is planned, no error.
	whole, err := config.Parse("imageset.yaml", []byte(fmt.Sprintf("apiVersion: airlock.dev/v1alpha1\nkind: ImageSet\nimages:\n  - ref: %s/team/api:1\n", host)))
	if err != nil {
		t.Fatal(err)
	}
	if sp, err := plan.PlanSet(ctx, whole, regs, plan.PlanOptions{Concurrency: 2}); err != nil || len(sp.Plans) != 1 || sp.Plans[0].Source != host+"/team/api:1" {
		t.Errorf("a set that resolves, without KeepGoing: %+v, %v; want api:1 planned", sp, err)
	}
	if !errors.Is(&plan.ResolutionError{Problems: []plan.Problem{{Err: plan.ErrCheckFailed}}}, plan.ErrCheckFailed) {
		t.Error("a ResolutionError holding a failed check does not match ErrCheckFailed")
	}
}
