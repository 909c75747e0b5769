package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/e2e/internal/registries"
	"airlock.dev/airlock/e2e/internal/seed"
)

// pushTagged pushes to host/name a small image for each tag, each its own manifest (so its own
// digest), through an oras-go client independent of airlock.
func pushTagged(ctx context.Context, t *testing.T, host, name string, tags ...string) map[string]digest.Digest {
	t.Helper()
	repo, push := testRepository(ctx, t, host, name)
	layer := push(ocispec.MediaTypeImageLayer, []byte("a layer of "+name))
	cfg := push(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	out := map[string]digest.Digest{}
	for _, tag := range tags {
		m, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			Config: cfg, Layers: []ocispec.Descriptor{layer}, Annotations: map[string]string{"tag": tag}})
		d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(m), Size: int64(len(m))}
		if err := repo.PushReference(ctx, d, bytes.NewReader(m), tag); err != nil {
			t.Fatalf("tag %s:%s: %v", name, tag, err)
		}
		out[tag] = d.Digest
	}
	return out
}

// savedTags saves set into a new directory and returns the tags of the catalog's images, sorted.
func savedTags(ctx context.Context, t *testing.T, set string) ([]string, result) {
	t.Helper()
	out := filepath.Join(filepath.Dir(set), "archive")
	res := mustRun(ctx, t, "save", "-c", set, "-o", out)
	var tags []string
	for _, img := range readCatalog(ctx, t, out).Images {
		tags = append(tags, img.Tag)
	}
	slices.Sort(tags)
	return tags, res
}

// TestImageSetRepositories is issue 12 on the distribution process: tag filters save exactly the
// tags they pick, blocked images stay out and are named, a tag list of several pages is read to the
// end, --keep-going saves what resolves and names the rest, two bad references are named in one
// run, and a pinned image set saves the same images again.
func TestImageSetRepositories(t *testing.T) {
	ctx := t.Context()
	host := registries.StartDistribution(ctx, t)
	tags := []string{"1.0.0", "1.4.2", "1.5.0-rc.1", "2.0.0"}
	digests := pushTagged(ctx, t, host, "team/app", tags...)
	repo := host + "/team/app"

	filters := []struct {
		name, tags string
		want       []string
	}{
		{"semver range", "semver: '>=1.4.0 <2.0.0'", []string{"1.4.2"}},
		{"include and exclude", "include: ['^1\\.']\n      exclude: ['-rc']", []string{"1.0.0", "1.4.2"}},
		{"newest of all releases", "semver: '*'\n      newest: 2", []string{"1.4.2", "2.0.0"}},
	}
	for _, f := range filters {
		t.Run("filter "+f.name, func(t *testing.T) {
			set := writeImageSet(t, t.TempDir(), fmt.Sprintf("repositories:\n  - name: %s\n    tags:\n      %s\n", repo, f.tags))
			got, _ := savedTags(ctx, t, set)
			if !slices.Equal(got, f.want) {
				t.Errorf("saved %v, want exactly %v", got, f.want)
			}
		})
	}

	t.Run("dry run shows every tag with its rule", func(t *testing.T) {
		set := writeImageSet(t, t.TempDir(), fmt.Sprintf("repositories:\n  - name: %s\n    tags:\n      semver: '>=1.4.0 <2.0.0'\n", repo))
		res := mustRun(ctx, t, "save", "-c", set, "--dry-run")
		for _, want := range []string{"4 tags listed, 1 picked", "2.0.0 dropped: semver >=1.4.0 <2.0.0", "1.5.0-rc.1 dropped: semver", "1.4.2 picked: semver >=1.4.0 <2.0.0", "1.0.0 dropped: semver"} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("dry run lacks %q:\n%s", want, res.stdout)
			}
		}
	})

	t.Run("blocked images are absent and named", func(t *testing.T) {
		body := fmt.Sprintf("images:\n  - ref: %[1]s:2.0.0\nrepositories:\n  - name: %[1]s\n    tags:\n      semver: '*'\nblocked:\n  - '^%[2]s/team/app:2\\.0\\.0$'\n", repo, strings.ReplaceAll(host, ".", `\.`))
		set := writeImageSet(t, t.TempDir(), body)
		got, res := savedTags(ctx, t, set)
		if !slices.Equal(got, []string{"1.0.0", "1.4.2"}) {
			t.Errorf("saved %v, want 1.0.0 and 1.4.2 (2.0.0 blocked, even listed under images)", got)
		}
		if !strings.Contains(res.stdout, "blocked:   "+repo+":2.0.0 (rule ^") {
			t.Errorf("the report does not name the blocked image and its rule:\n%s", res.stdout)
		}
		cat := readCatalog(ctx, t, filepath.Join(filepath.Dir(set), "archive"))
		if len(cat.Blocked) != 1 || cat.Blocked[0].Source != repo+":2.0.0" {
			t.Errorf("catalog blocked: %+v", cat.Blocked)
		}
	})

	t.Run("a tag list of several pages is read to the end", func(t *testing.T) {
		var many []string
		for i := range 230 {
			many = append(many, fmt.Sprintf("r%03d", i))
		}
		pushTagged(ctx, t, host, "team/many", many...)
		set := writeImageSet(t, t.TempDir(), fmt.Sprintf("repositories:\n  - name: %s/team/many\n    tags:\n      include: ['^r22[5-9]$']\n", host))
		res := mustRun(ctx, t, "save", "-c", set, "--dry-run", "--format", "json")
		var sum struct {
			Repositories []struct {
				Listed int      `json:"listed"`
				Picked []string `json:"picked"`
			} `json:"repositories"`
		}
		if err := json.Unmarshal([]byte(res.stdout), &sum); err != nil {
			t.Fatalf("%v\n%s", err, res.stdout)
		}
		if len(sum.Repositories) != 1 || sum.Repositories[0].Listed != 230 || len(sum.Repositories[0].Picked) != 5 {
			t.Errorf("listed %+v, want 230 tags (3 pages of at most 100) and the 5 last picked", sum.Repositories)
		}
	})

	t.Run("two bad references are named in one run and nothing is written", func(t *testing.T) {
		work := t.TempDir()
		set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %[1]s:1.0.0\n  - ref: %[1]s:9.9.9\nrepositories:\n  - name: %[2]s/team/nothere\n", repo, host))
		out := filepath.Join(work, "archive")
		res := run(ctx, t, "save", "-c", set, "-o", out)
		if res.code != 2 {
			t.Fatalf("exit %d, want 2\n%s", res.code, res.stderr)
		}
		for _, want := range []string{`tag "9.9.9" not found`, host + "/team/nothere (ImageSet line 7): its tags could not be listed", "nothing written"} {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
			}
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("a failed save wrote %s (%v)", out, err)
		}
	})

	t.Run("pinned output saves the same images", func(t *testing.T) {
		work := t.TempDir()
		set := writeImageSet(t, work, fmt.Sprintf("repositories:\n  - name: %s\n    tags:\n      semver: '*'\n      newest: 2\n", repo))
		pinned := filepath.Join(work, "pinned.yaml")
		mustRun(ctx, t, "save", "-c", set, "-o", filepath.Join(work, "a1"), "--pin-out", pinned)
		b, err := os.ReadFile(pinned)
		if err != nil || !strings.Contains(string(b), repo+":2.0.0@"+digests["2.0.0"].String()) {
			t.Fatalf("pinned file (%v):\n%s", err, b)
		}
		mustRun(ctx, t, "save", "-c", pinned, "-o", filepath.Join(work, "a2"))
		c1, c2 := readCatalog(ctx, t, filepath.Join(work, "a1")), readCatalog(ctx, t, filepath.Join(work, "a2"))
		var k1, k2 []string
		for _, i := range c1.Images {
			k1 = append(k1, i.Repository+":"+i.Tag+"@"+i.Digest.String())
		}
		for _, i := range c2.Images {
			k2 = append(k2, i.Repository+":"+i.Tag+"@"+i.Digest.String())
		}
		slices.Sort(k1)
		slices.Sort(k2)
		if !slices.Equal(k1, k2) || len(k1) != 2 || !slices.Equal(c1.Contents, c2.Contents) {
			t.Errorf("a save from the pinned file differs:\n%v\n%v", k1, k2)
		}
		if c1.Trust.ImageSet == nil || c1.Trust.ImageSet.Name != "imageset.pinned.yaml" {
			t.Errorf("the archive does not carry the pinned image set: %+v", c1.Trust)
		}
	})

	t.Run("keep going saves what resolves and names the missing repository", func(t *testing.T) {
		work := t.TempDir()
		f := seed.Sample(ctx, t, host, "team/signed", filepath.Join(work, "keys"))
		set := writeImageSet(t, work, fmt.Sprintf("images:\n  - ref: %s\nrepositories:\n  - name: %s/team/gone\ntrust:\n  keys: [keys/%s]\n", f.Ref(), host, filepath.Base(f.PublicKeyPath)))
		out := filepath.Join(work, "archive")
		res := run(ctx, t, "save", "-c", set, "-o", out, "--keep-going")
		if res.code != 1 || !strings.Contains(res.stdout, "left out (1, did not resolve):") || !strings.Contains(res.stdout, host+"/team/gone (ImageSet line 6)") {
			t.Fatalf("save --keep-going: exit %d, want 1 and the missing repository named at the end\n%s\n%s", res.code, res.stdout, res.stderr)
		}
		cat := readCatalog(ctx, t, out)
		if len(cat.Images) != 1 || cat.Images[0].Digest != f.IndexDigest || len(cat.LeftOut) != 1 || cat.LeftOut[0].Source != host+"/team/gone" {
			t.Errorf("catalog images %+v, left out %+v", cat.Images, cat.LeftOut)
		}
		if res := run(ctx, t, "inspect", out); !strings.Contains(res.stdout, "left out (1") || !strings.Contains(res.stdout, host+"/team/gone") {
			t.Errorf("inspect does not name what was left out:\n%s", res.stdout)
		}
		if res := run(ctx, t, "verify", out, "--insecure-archive-trust"); res.code != 0 {
			t.Errorf("verify: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
		}
		if res := run(ctx, t, "load", out, "--to", host+"/site"); res.code != 0 || !strings.Contains(res.stdout, "the archive lacks 1 images") {
			t.Errorf("load: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
		}
		res = run(ctx, t, "save", "-c", set, "--dry-run", "--keep-going", "--format", "json")
		var sum struct {
			LeftOut []struct{ Source, Reason string } `json:"leftOut"`
		}
		if err := json.Unmarshal([]byte(res.stdout), &sum); err != nil || res.code != 1 || len(sum.LeftOut) != 1 || sum.LeftOut[0].Source != host+"/team/gone" {
			t.Errorf("--format json: exit %d, %v, %+v\n%s", res.code, err, sum, res.stdout)
		}
	})
}
