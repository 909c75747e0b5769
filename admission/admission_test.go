package admission

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const testKey = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEh4h0Km7Qd3gqCt8Eq9ImvJ0WQeZt
WJEBgSJuG4mTeNcQF8GhXbMHD0eH+Vd4T4O9rmsFrKBZ6wuEV2aJ6mDd6A==
-----END PUBLIC KEY-----
`

// TestContainersPolicyGolden: the files for registry.site:5000/mirror are byte for byte the golden
// ones (go test ./admission -update rewrites them); the same site gives the same bytes.
func TestContainersPolicyGolden(t *testing.T) {
	site := Site{Prefix: "registry.site:5000/mirror/", KeyPEM: []byte(testKey)}
	files, err := ContainersPolicy(site)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := ContainersPolicy(site)
	for i, f := range files {
		golden := filepath.Join("testdata", "containers-policy", f.Path)
		if *update {
			os.MkdirAll(filepath.Dir(golden), 0o755)
			if err := os.WriteFile(golden, f.Data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if string(f.Data) != string(want) || string(again[i].Data) != string(want) {
			t.Errorf("%s differs from %s:\n%s", f.Path, golden, f.Data)
		}
	}
}

// TestContainersPolicyRefuses: a prefix with no host, or a key that is not a PEM public key.
func TestContainersPolicyRefuses(t *testing.T) {
	for _, tc := range []struct {
		site Site
		want string
	}{
		{Site{Prefix: "mirror", KeyPEM: []byte(testKey)}, `--to "mirror": want HOST[:PORT][/PREFIX]`},
		{Site{Prefix: "registry.site:5000/Mirror", KeyPEM: []byte(testKey)}, "want HOST[:PORT][/PREFIX]"},
		{Site{Prefix: "registry.site:5000/mirror", KeyPEM: []byte("not a key")}, "--site-key: not a PEM public key"},
		{Site{Prefix: "registry.site:5000/mirror", KeyPEM: []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")}, "--site-key: not a PEM public key"},
	} {
		if _, err := ContainersPolicy(tc.site); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.site, err, tc.want)
		}
	}
}
