package mirror

import (
	"strings"
	"testing"

	"airlock.dev/airlock/config"
)

// Offline means offline: verify -c refuses a repositories entry, whose tags only the source registry
// can list, and leaves blocked images out.
func TestImageSetImagesOffline(t *testing.T) {
	set, err := config.Parse("imageset.yaml", []byte(`apiVersion: airlock.dev/v1alpha1
kind: ImageSet
images:
  - ref: registry.example.com/team/app:1.4.2
  - ref: registry.example.com/team/old:0.1
blocked:
  - registry.example.com/team/old:*
`))
	if err != nil {
		t.Fatal(err)
	}
	images, err := imageSetImages(set)
	if err != nil {
		t.Fatal(err)
	}
	if len(images) != 1 || images[0].Source != "registry.example.com/team/app:1.4.2" {
		t.Errorf("images %+v, want only team/app:1.4.2 (team/old is blocked)", images)
	}
	set.Repositories = []config.Repository{{Registry: "registry.example.com", Repository: "team/api", Line: 9}}
	_, err = imageSetImages(set)
	if err == nil || !strings.Contains(err.Error(), "repositories[0] (registry.example.com/team/api, line 9)") || !strings.Contains(err.Error(), "verify makes no call but to the target") {
		t.Errorf("err = %v, want repositories[0] refused: verify makes no call but to the target", err)
	}
}

// verify -c of a pinned image set checks the chart artifacts of its charts entries, named as save
// named them, and refuses an entry that would have to render its chart to know its images.
func TestImageSetImagesCharts(t *testing.T) {
	set, err := config.Parse("imageset.yaml", []byte(`apiVersion: airlock.dev/v1alpha1
kind: ImageSet
charts:
  - repo: https://charts.example.com/stable
    name: app
    version: 1.4.2
    digest: sha256:`+strings.Repeat("a", 64)+`
    findImages: false
`))
	if err != nil {
		t.Fatal(err)
	}
	images, err := imageSetImages(set)
	if err != nil {
		t.Fatal(err)
	}
	if len(images) != 1 || images[0].Source != "charts.example.com/stable/app:1.4.2" {
		t.Errorf("images %+v, want the chart artifact charts.example.com/stable/app:1.4.2", images)
	}
	set.Charts[0].FindImages = true
	_, err = imageSetImages(set)
	if err == nil || !strings.Contains(err.Error(), "charts[0] (https://charts.example.com/stable app, line 4) finds its images by rendering") {
		t.Errorf("err = %v, want charts[0] refused: it renders", err)
	}
}
