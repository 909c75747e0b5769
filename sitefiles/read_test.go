package sitefiles

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestReadMapping: what Write writes, ReadMapping reads back (source repositories normalized, Docker
// Hub's included); a line that is not SOURCE=TARGET@DIGEST is refused with the file and line.
func TestReadMapping(t *testing.T) {
	dir := t.TempDir()
	d := digest.FromString("x")
	ms := []Mapping{
		{Source: "registry.example.com/team/app:1.4.2", SourceRepository: "registry.example.com/team/app", Target: "site:5000/mirror/team/app", Tag: "1.4.2", Digest: d},
		{Source: "nginx@" + d.String(), SourceRepository: "docker.io/library/nginx", Target: "site:5000/mirror/library/nginx", Digest: d},
	}
	if _, err := Write(dir, ms); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMapping(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Mapping{}
	for _, m := range ms {
		want[m.SourceRepository] = m
	}
	if len(got) != 2 {
		t.Fatalf("read %+v", got)
	}
	for _, m := range got {
		if w := want[m.SourceRepository]; m.Target != w.Target || m.Digest != w.Digest || m.Tag != w.Tag {
			t.Errorf("read %+v, want %+v", m, w)
		}
	}
	for _, bad := range []string{"registry.example.com/team/app=site:5000/mirror/team/app", "no-equals-sign@" + d.String(), "registry.example.com/team/app:1=site:5000/mirror/team/app@sha256:00", "Bad/Source=site:5000/m/x@" + d.String()} {
		os.WriteFile(filepath.Join(dir, "mapping.txt"), []byte("# header\n"+bad+"\n"), 0o644)
		if _, err := ReadMapping(dir); err == nil || !strings.Contains(err.Error(), "mapping.txt:2:") {
			t.Errorf("%q: %v, want refused at mapping.txt:2", bad, err)
		}
	}
	os.WriteFile(filepath.Join(dir, "mapping.txt"), []byte("registry.example.com/team/app:1=@"+d.String()+"\n"), 0o644)
	if _, err := ReadMapping(dir); err == nil || !strings.Contains(err.Error(), "mapping.txt:1:") || !strings.Contains(err.Error(), ": target: ") {
		t.Errorf("an empty target: %v, want refused for its target", err)
	}
	if _, err := ReadMapping(t.TempDir()); err == nil || !strings.Contains(err.Error(), "load --site-files") {
		t.Errorf("no mapping.txt: %v", err)
	}
}
