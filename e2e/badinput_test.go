package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInputs runs save and verify on bad ImageSets, references and policies: each is refused with
// exit status 2 and a message naming the file, line and field (or the reference), and nothing is
// written.
func TestBadInputs(t *testing.T) {
	ctx := t.Context()
	const head = "apiVersion: airlock.dev/v1alpha1\nkind: ImageSet\n"
	cases := []struct {
		name, file, want string
	}{
		{"unknown field", head + "images:\n  - ref: registry.example.com/team/app:1\n    platfroms: [linux/amd64]\n", "imageset.yaml:5: images[0].platfroms: unknown field"},
		{"invalid reference", head + "images:\n  - ref: registry.example.com/Team/App:1\n", "imageset.yaml:4: images[0].ref"},
		{"bad digest", head + "images:\n  - ref: registry.example.com/team/app@sha256:1234\n", "imageset.yaml:4: images[0].ref"},
		{"bad platform", head + "images:\n  - ref: registry.example.com/team/app:1\n    platforms: [linux]\n", "imageset.yaml:5: images[0].platforms[0]"},
		{"wrong kind", "apiVersion: airlock.dev/v1alpha1\nkind: Policy\nimages:\n  - ref: registry.example.com/team/app:1\n", "imageset.yaml:2: kind"},
		{"not YAML", head + "images: [\n", "imageset.yaml:3: invalid YAML"},
		{"missing key file", head + "images:\n  - ref: registry.example.com/team/app:1\ntrust:\n  keys: [keys/none.pub]\n", "trust.keys[0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			work := t.TempDir()
			set := filepath.Join(work, "imageset.yaml")
			os.WriteFile(set, []byte(c.file), 0o644)
			out := filepath.Join(work, "archive")
			res := run(ctx, t, "save", "-c", set, "-o", out)
			if res.code != 2 || !strings.Contains(res.stderr, c.want) {
				t.Fatalf("exit %d, want 2 and %q in:\n%s", res.code, c.want, res.stderr)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("a refused save wrote %s", out)
			}
			msg := strings.TrimSpace(strings.TrimPrefix(res.stderr, "airlock: "))
			msg = strings.ReplaceAll(msg, work+"/", "")
			if i := strings.IndexByte(msg, '\n'); i > 0 {
				msg = msg[:i] + " ..."
			}
			record("input", "ImageSet: "+c.name, fmt.Sprintf("refused, exit 2, nothing written: %s", msg))
		})
	}

	t.Run("bad policy", func(t *testing.T) {
		work := t.TempDir()
		pol := filepath.Join(work, "policy.yaml")
		os.WriteFile(pol, []byte("apiVersion: airlock.dev/v1alpha1\nkind: Policy\nrules:\n  - match: [\"registry.example.com/**\"]\n    signers:\n      - keyless: {issuer: https://issuer.example.com}\n    require: some\n"), 0o644)
		set := writeImageSet(t, work, "images:\n  - ref: registry.example.com/team/app:1\npolicy: policy.yaml\n")
		res := run(ctx, t, "verify", "127.0.0.1:1/mirror", "-c", set)
		if res.code != 2 || !strings.Contains(res.stderr, "policy.yaml:6: rules[0].signers[0].keyless") || !strings.Contains(res.stderr, "policy.yaml:7: rules[0].require") {
			t.Fatalf("exit %d, want 2 and both policy errors with file:line:\n%s", res.code, res.stderr)
		}
		record("input", "policy: keyless signer without a subject, require: some", "refused, exit 2, before any network call, every error with file:line:field")
	})
	t.Run("bad flags", func(t *testing.T) {
		work := t.TempDir()
		set := filepath.Join(work, "imageset.yaml")
		os.WriteFile(set, []byte(head+"images:\n  - ref: registry.example.com/team/app:1\n"), 0o644)
		dir, tarOut := filepath.Join(work, "dir"), filepath.Join(work, "a.tar")
		for _, c := range []struct {
			input string
			args  []string
			// want names the flag and what is wrong with it.
			want []string
		}{
			{"--volume-size without a tar output", []string{"save", "-c", set, "-o", dir, "--volume-size", "1GiB"}, []string{"--volume-size", "tar"}},
			{"--volume-size of 4 bytes", []string{"save", "-c", set, "-o", tarOut, "--volume-size", "4"}, []string{"--volume-size", `"4"`, "at least"}},
			{"--format xml", []string{"save", "-c", set, "-o", dir, "--format", "xml"}, []string{"--format", `"xml"`, "text or json"}},
			{"load without --to", []string{"load", dir}, []string{`"to"`, "not set"}},
		} {
			res := run(ctx, t, c.args...)
			msg := strings.TrimSpace(strings.TrimPrefix(res.stderr, "airlock: "))
			if res.code != 2 {
				t.Errorf("%s: exit %d, want 2\n%s", c.input, res.code, res.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%s: the error does not say %q:\n%s", c.input, w, res.stderr)
				}
			}
			for _, p := range []string{dir, tarOut, tarOut + ".000"} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("%s: a refused run wrote %s", c.input, p)
				}
			}
			msg = strings.ReplaceAll(msg, work+"/", "")
			record("input", "bad flag: "+c.input, "refused, exit 2, nothing written, the flag named: "+msg)
		}
	})
}
