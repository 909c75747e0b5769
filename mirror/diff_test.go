package mirror

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"

	"airlock.dev/airlock/archive"
	"airlock.dev/airlock/mirror/internal/mirrortest"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/referrers"
	"airlock.dev/airlock/vocab"
)

// memMirror is a mirror held in memory: tags, manifests and blobs, with errors to inject.
type memMirror struct {
	Tags        map[string]digest.Digest
	have        map[digest.Digest]bool
	resolveErr  error
	manifestErr error
	blobErr     error
	failOn      map[digest.Digest]error // an error for one manifest or blob
	asked       []string
}

func newMemMirror() *memMirror {
	return &memMirror{Tags: map[string]digest.Digest{}, have: map[digest.Digest]bool{}}
}

// hold marks every manifest and blob of p as present.
func (m *memMirror) hold(p *plan.ImagePlan) {
	for _, n := range p.Nodes() {
		m.have[n.Desc.Digest] = true
		for _, b := range n.Blobs {
			m.have[b.Digest] = true
		}
	}
}

func (m *memMirror) checker() contentChecker { return m }

func (m *memMirror) Resolve(_ context.Context, ref string) (ocispec.Descriptor, error) {
	m.asked = append(m.asked, "resolve "+ref)
	if m.resolveErr != nil {
		return ocispec.Descriptor{}, m.resolveErr
	}
	d, ok := m.Tags[ref]
	if !ok {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w", ref, errdef.ErrNotFound)
	}
	return ocispec.Descriptor{Digest: d}, nil
}

// Exists answers for a manifest or a blob, by its media type, as a registry repository does.
func (m *memMirror) Exists(_ context.Context, d ocispec.Descriptor) (bool, error) {
	what, err := "blob ", m.blobErr
	if vocab.IsIndex(d.MediaType) || vocab.IsManifest(d.MediaType) {
		what, err = "manifest ", m.manifestErr
	}
	m.asked = append(m.asked, what+d.Digest.String())
	if e, ok := m.failOn[d.Digest]; ok {
		err = e
	}
	if err != nil {
		return false, err
	}
	return m.have[d.Digest], nil
}

func TestDiffOneStatuses(t *testing.T) {
	ctx := context.Background()
	_, plans := mirrortest.SamplePlans(t)
	app := plans[0]
	idx := app.Root
	amd := idx.Children[0]
	sig, sigAmd := app.Referrers[0], app.Referrers[1]
	layer := amd.Blobs[1]
	other := digest.FromString("another image")

	cases := []struct {
		name    string
		tagRef  string
		setup   func(m *memMirror)
		status  string
		target  digest.Digest
		missing []string
	}{
		{name: "everything there", tagRef: "1.0", setup: func(m *memMirror) { m.Tags["1.0"] = idx.Desc.Digest },
			status: DiffOK, target: idx.Desc.Digest},
		{name: "untagged, everything there", setup: func(m *memMirror) {}, status: DiffOK, target: idx.Desc.Digest},
		{name: "tag absent", tagRef: "1.0", setup: func(m *memMirror) {}, status: DiffMissing},
		{name: "archive path absent", tagRef: "1.0", setup: func(m *memMirror) { m.resolveErr = fmt.Errorf("open: %w", fs.ErrNotExist) },
			status: DiffMissing},
		{name: "tag moved", tagRef: "1.0", setup: func(m *memMirror) { m.Tags["1.0"] = other }, status: DiffStale, target: other},
		{name: "a layer lacking", tagRef: "1.0", setup: func(m *memMirror) {
			m.Tags["1.0"] = idx.Desc.Digest
			delete(m.have, layer.Digest)
		}, status: DiffIncomplete, target: idx.Desc.Digest, missing: []string{"blob " + layer.Digest.String()}},
		{name: "referrers lacking", tagRef: "1.0", setup: func(m *memMirror) {
			m.Tags["1.0"] = idx.Desc.Digest
			delete(m.have, sig.Desc.Digest)
			delete(m.have, sigAmd.Desc.Digest)
		}, status: DiffIncomplete, target: idx.Desc.Digest, missing: []string{
			fmt.Sprintf("referrer %s ( of %s)", sig.Desc.Digest, idx.Desc.Digest),
			fmt.Sprintf("referrer %s ( of %s)", sigAmd.Desc.Digest, amd.Desc.Digest),
		}},
		{name: "untagged, root manifest lacking", setup: func(m *memMirror) { delete(m.have, idx.Desc.Digest) },
			status: DiffMissing, missing: []string{"manifest " + idx.Desc.Digest.String()}},
		{name: "untagged, nothing there", setup: func(m *memMirror) { clear(m.have) }, status: DiffMissing, missing: []string{
			"manifest " + amd.Desc.Digest.String(),
			"manifest " + idx.Children[1].Desc.Digest.String(),
			"manifest " + idx.Desc.Digest.String(),
			fmt.Sprintf("referrer %s ( of %s)", sig.Desc.Digest, idx.Desc.Digest),
			fmt.Sprintf("referrer %s ( of %s)", sigAmd.Desc.Digest, amd.Desc.Digest),
		}},
		{name: "untagged, a child manifest lacking", setup: func(m *memMirror) { delete(m.have, amd.Desc.Digest) },
			status: DiffIncomplete, missing: []string{"manifest " + amd.Desc.Digest.String()}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newMemMirror()
			m.hold(app)
			c.setup(m)
			e, err := diffOne(ctx, app, "mirror/team/app:1.0", m.checker(), c.tagRef)
			if err != nil {
				t.Fatal(err)
			}
			if e.Source != app.Source || e.Target != "mirror/team/app:1.0" || e.Digest != idx.Desc.Digest {
				t.Errorf("entry names %q -> %q (%s), want %q -> mirror/team/app:1.0 (%s)", e.Source, e.Target, e.Digest, app.Source, idx.Desc.Digest)
			}
			if e.Status != c.status || e.TargetDigest != c.target || !slices.Equal(e.Missing, c.missing) {
				t.Errorf("got status %q, target digest %q, missing %q; want %q, %q, %q", e.Status, e.TargetDigest, e.Missing, c.status, c.target, c.missing)
			}
			if e.Flattened != "" {
				t.Errorf("Flattened = %q for a whole index", e.Flattened)
			}
		})
	}
}

func TestDiffOneReferrerKindNamed(t *testing.T) {
	p := mirrortest.SparsePlan("linux/amd64", "linux/arm64") // two platforms: not flattenable
	m := newMemMirror()
	m.hold(p)
	sbom := p.Referrers[1]
	delete(m.have, sbom.Desc.Digest)
	e, err := diffOne(context.Background(), p, "t", m.checker(), "")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("referrer %s (%s of %s)", sbom.Desc.Digest, referrers.KindSBOM, p.Root.Desc.Digest)
	if e.Status != DiffIncomplete || !slices.Equal(e.Missing, []string{want}) {
		t.Errorf("got %q %q, want incomplete and %q", e.Status, e.Missing, want)
	}
}

func TestDiffOneErrors(t *testing.T) {
	ctx := context.Background()
	_, plans := mirrortest.SamplePlans(t)
	app := plans[0]
	boom := errors.New("registry said 500")
	for name, setup := range map[string]func(m *memMirror){
		"resolve":  func(m *memMirror) { m.resolveErr = boom },
		"manifest": func(m *memMirror) { m.Tags["1.0"] = app.Root.Desc.Digest; m.manifestErr = boom },
		"blob":     func(m *memMirror) { m.Tags["1.0"] = app.Root.Desc.Digest; m.blobErr = boom },
	} {
		m := newMemMirror()
		m.hold(app)
		setup(m)
		if _, err := diffOne(ctx, app, "t", m.checker(), "1.0"); !errors.Is(err, boom) {
			t.Errorf("%s failing: diffOne returned %v, want the failure", name, err)
		}
	}
	// A blob check failing on the untagged path too, and the first failure stops the walk.
	m := newMemMirror()
	m.hold(app)
	m.blobErr = boom
	if _, err := diffOne(ctx, app, "t", m.checker(), ""); !errors.Is(err, boom) {
		t.Errorf("untagged, blob failing: %v", err)
	}
	if n := len(m.asked); n != 2 || !strings.HasPrefix(m.asked[1], "blob ") {
		t.Errorf("asked %q after the first failure, want to stop at the first blob", m.asked)
	}
}

func TestDiffOneFlattened(t *testing.T) {
	ctx := context.Background()
	p := mirrortest.SparsePlan("linux/amd64")
	child := p.Root.Children[0]
	fp, _ := plan.FlattenOne(p)

	// Tagged: the tag names the platform manifest; the index and its referrers are not expected.
	m := newMemMirror()
	m.hold(fp)
	m.Tags["1.4.2"] = child.Desc.Digest
	e, err := diffOne(ctx, p, "t", m.checker(), "1.4.2")
	if err != nil {
		t.Fatal(err)
	}
	if e.Status != DiffOK || e.Flattened != "linux/amd64" || e.TargetDigest != child.Desc.Digest || e.Digest != p.Root.Desc.Digest || len(e.Missing) != 0 {
		t.Errorf("flattened mirror: %+v, want ok, flattened linux/amd64, target digest %s", e, child.Desc.Digest)
	}
	resolves := 0
	for _, a := range m.asked {
		if strings.HasPrefix(a, "resolve ") {
			resolves++
		}
	}
	if resolves != 1 {
		t.Errorf("asked %q: want the tag resolved once", m.asked)
	}

	// Tagged, the tag names the index: not flattened, and the index's referrers are expected.
	m.Tags["1.4.2"] = p.Root.Desc.Digest
	e, err = diffOne(ctx, p, "t", m.checker(), "1.4.2")
	if err != nil {
		t.Fatal(err)
	}
	if e.Flattened != "" || e.Status != DiffMissing || e.Missing[0] != "manifest "+p.Root.Desc.Digest.String() {
		t.Errorf("tag on the index: %+v, want not flattened and the index missing", e)
	}

	// Tagged, the tag absent: missing, not flattened.
	delete(m.Tags, "1.4.2")
	if e, err = diffOne(ctx, p, "t", m.checker(), "1.4.2"); err != nil || e.Status != DiffMissing || e.Flattened != "" {
		t.Errorf("tag absent: %+v, %v; want missing", e, err)
	}

	// Untagged: the index absent, its manifest present: flattened.
	e, err = diffOne(ctx, p, "t", m.checker(), "")
	if err != nil {
		t.Fatal(err)
	}
	if e.Status != DiffOK || e.Flattened != "linux/amd64" || e.TargetDigest != child.Desc.Digest {
		t.Errorf("untagged flattened: %+v, want ok, flattened linux/amd64", e)
	}

	// Untagged, neither index nor manifest: not flattened, and the index is listed as lacking. (The
	// status is not asserted: the platform manifest is listed before the index, so diffOne says
	// "incomplete" rather than "missing" here.)
	m2 := newMemMirror()
	if e, err = diffOne(ctx, p, "t", m2.checker(), ""); err != nil || e.Status == DiffOK || e.Flattened != "" || !slices.Contains(e.Missing, "manifest "+p.Root.Desc.Digest.String()) {
		t.Errorf("nothing there: %+v, %v; want the index lacking, not flattened", e, err)
	}

	// Untagged, the index present: the whole index is compared.
	m3 := newMemMirror()
	m3.hold(p)
	if e, err = diffOne(ctx, p, "t", m3.checker(), ""); err != nil || e.Status != DiffOK || e.Flattened != "" || e.TargetDigest != p.Root.Desc.Digest {
		t.Errorf("whole index there: %+v, %v; want ok, not flattened", e, err)
	}

	// Untagged, a manifest check failing: the failure is returned.
	m3.manifestErr = errors.New("boom")
	if _, err = diffOne(ctx, p, "t", m3.checker(), ""); err == nil || err.Error() != "boom" {
		t.Errorf("manifest check failing: %v", err)
	}
	// The child check failing (the index absent).
	m4 := newMemMirror()
	m4.failOn = map[digest.Digest]error{child.Desc.Digest: errors.New("child boom")}
	if _, err = diffOne(ctx, p, "t", m4.checker(), ""); err == nil || err.Error() != "child boom" {
		t.Errorf("child check failing: %v", err)
	}
}

func TestDiffArchive(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	mirrortest.WriteMinimalArchive(t, dir)
	r, err := archive.Open(ctx, filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, plans := mirrortest.SamplePlans(t)
	got, err := DiffArchive(ctx, plans, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d entries, want 2: %+v", len(got), got)
	}
	for i, e := range got {
		if e.Source != plans[i].Source || e.Target != r.Path+":"+plans[i].Source || e.Status != DiffMissing {
			t.Errorf("entry %d: %+v, want %s missing from %s", i, e, plans[i].Source, r.Path)
		}
	}
}

func TestDiffRegistry(t *testing.T) {
	ctx := context.Background()
	host, regs, _ := mirrortest.StartPagingRegistry(t, 100)
	_, plans := mirrortest.SamplePlans(t)
	// Neither image is on the mirror.
	got, err := DiffRegistry(ctx, plans, regs, host+"/mirror", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d entries, want 2: %+v", len(got), got)
	}
	want := []string{host + "/mirror/team/app:1.0", host + "/mirror/team/api:2.0"}
	for i, e := range got {
		if e.Source != plans[i].Source || e.Target != want[i] || e.Status != DiffMissing || e.Digest != plans[i].Root.Desc.Digest {
			t.Errorf("entry %d: %+v, want %s missing at %s", i, e, plans[i].Source, want[i])
		}
	}

	// keepHost puts the source host in the path.
	got, err = DiffRegistry(ctx, plans[1:], regs, host+"/mirror", true)
	if err != nil {
		t.Fatal(err)
	}
	if w := host + "/mirror/registry.example.com/team/api:2.0"; len(got) != 1 || got[0].Target != w {
		t.Errorf("keepHost: %+v, want target %s", got, w)
	}

	// A --to without a host is refused before anything is asked.
	if _, err := DiffRegistry(ctx, plans, regs, "/mirror", false); err == nil || !strings.Contains(err.Error(), "want HOST[:PORT]/PREFIX") {
		t.Errorf("--to without host: %v", err)
	}
	// A registry that cannot be reached: the error names the image and the target.
	if _, err := DiffRegistry(ctx, plans[1:], regs, "127.0.0.1:1/mirror", false); err == nil ||
		!strings.Contains(err.Error(), "diff "+plans[1].Source+" against 127.0.0.1:1/mirror/team/api") {
		t.Errorf("unreachable registry: %v", err)
	}
}
