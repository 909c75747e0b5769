package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestParseReference(t *testing.T) {
	tests := []struct {
		in                       string
		registry, repo, tag, dig string
		canonical                string
	}{
		{"registry.example.com/team/app:1.4.2", "registry.example.com", "team/app", "1.4.2", "", "registry.example.com/team/app:1.4.2"},
		{"registry.example.com/team/app", "registry.example.com", "team/app", "latest", "", "registry.example.com/team/app:latest"},
		{"registry.example.com/team/api@" + digA, "registry.example.com", "team/api", "", digA, "registry.example.com/team/api@" + digA},
		{"registry.example.com/team/web:2.0@" + digB, "registry.example.com", "team/web", "2.0", digB, "registry.example.com/team/web:2.0@" + digB},
		{"registry.example.com/app@sha512:" + hex512, "registry.example.com", "app", "", "sha512:" + hex512, "registry.example.com/app@sha512:" + hex512},
		{"127.0.0.1:5000/mirror/app", "127.0.0.1:5000", "mirror/app", "latest", "", "127.0.0.1:5000/mirror/app:latest"},
		{"127.0.0.1:5000/mirror/app:v1@" + digA, "127.0.0.1:5000", "mirror/app", "v1", digA, "127.0.0.1:5000/mirror/app:v1@" + digA},
		{"site:5000/app@" + digA, "site:5000", "app", "", digA, "site:5000/app@" + digA},
		{"localhost/app:1", "localhost", "app", "1", "", "localhost/app:1"},
		{"localhost:5000/a/b/c:1", "localhost:5000", "a/b/c", "1", "", "localhost:5000/a/b/c:1"},
		{"[::1]:5000/app:1", "[::1]:5000", "app", "1", "", "[::1]:5000/app:1"},
		{"nginx", "docker.io", "library/nginx", "latest", "", "docker.io/library/nginx:latest"},
		{"nginx:1.27", "docker.io", "library/nginx", "1.27", "", "docker.io/library/nginx:1.27"},
		{"nginx@" + digA, "docker.io", "library/nginx", "", digA, "docker.io/library/nginx@" + digA},
		{"bitnami/redis:7", "docker.io", "bitnami/redis", "7", "", "docker.io/bitnami/redis:7"},
		{"docker.io/nginx", "docker.io", "library/nginx", "latest", "", "docker.io/library/nginx:latest"},
		{"index.docker.io/bitnami/redis", "docker.io", "bitnami/redis", "latest", "", "docker.io/bitnami/redis:latest"},
		{"registry-1.docker.io/nginx:1", "docker.io", "library/nginx", "1", "", "docker.io/library/nginx:1"},
		{"registry-1.docker.io/a.b/c", "docker.io", "a.b/c", "latest", "", "docker.io/a.b/c:latest"},
		{"ghcr.io/a-b/c.d__e_f:V_1.0-rc", "ghcr.io", "a-b/c.d__e_f", "V_1.0-rc", "", "ghcr.io/a-b/c.d__e_f:V_1.0-rc"},
		{"ghcr.io/app:_x", "ghcr.io", "app", "_x", "", "ghcr.io/app:_x"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			img, err := ParseReference(tt.in)
			if err != nil {
				t.Fatalf("ParseReference(%q): %v", tt.in, err)
			}
			want := Image{Ref: tt.in, Registry: tt.registry, Repository: tt.repo, Tag: tt.tag, Digest: digest.Digest(tt.dig)}
			if !reflect.DeepEqual(img, want) {
				t.Errorf("ParseReference(%q) = %+v, want %+v", tt.in, img, want)
			}
			if got := img.String(); got != tt.canonical {
				t.Errorf("String() = %q, want %q", got, tt.canonical)
			}
			if got, want := img.RepositoryRef(), tt.registry+"/"+tt.repo; got != want {
				t.Errorf("RepositoryRef() = %q, want %q", got, want)
			}
		})
	}
}

func TestParseReferenceErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "empty reference"},
		{"registry.example.com/app: 1", "contains whitespace"},
		{"https://registry.example.com/app:1", "must not include a URL scheme (https://)"},
		{"registry.example.com/Team/App:1", `repository "Team/App" is invalid: repository names must be lowercase`},
		{"registry.example.com/team//app", `repository "team//app" is invalid`},
		{"registry.example.com/-app", `repository "-app" is invalid`},
		{"registry.example.com/", "missing repository name after the registry host"},
		{"registry.example.com/app:", "empty tag after ':'"},
		{"registry.example.com/app:.bad", `tag ".bad" is invalid`},
		{"registry.example.com/app:" + strings.Repeat("t", 129), "is invalid: a tag is 1 to 128"},
		{"registry.example.com/app@", "empty digest after '@'"},
		{"registry.example.com/app@" + hexA, "is not of the form ALGORITHM:HEX"},
		{"registry.example.com/app@md5:" + hexA, `algorithm must be sha256 or sha512, got "md5"`},
		{"registry.example.com/app@sha256:" + hexA[:63], "a sha256 digest has 64 hex characters, got 63"},
		{"registry.example.com/app@sha512:" + hexA, "a sha512 digest has 128 hex characters, got 64"},
		{"registry.example.com/app@sha256:" + strings.ToUpper(hexA), "the sha256 part must be lowercase hex"},
		{"registry.example.com/app@" + digA + "@" + digB, "must be lowercase hex"},
		{"registry.example.com/app@sha384:" + hexA + hexA[:32], `algorithm must be sha256 or sha512, got "sha384"`},
		{"registry.example.com/" + strings.Repeat("a", 256), "repository name must not be more than 255 characters"},
		{"reg_istry.example.com/app", `registry host "reg_istry.example.com" is invalid`},
		{"registry.example.com:port/app", `registry host "registry.example.com:port" is invalid`},
		{":5000/app", `registry host ":5000" is invalid`},
		{":tag", "missing repository name"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseReference(tt.in)
			if err == nil {
				t.Fatalf("ParseReference(%q) succeeded, want error containing %q", tt.in, tt.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not contain %q", msg, tt.want)
			}
			if !strings.Contains(msg, "expected HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX]") {
				t.Errorf("error %q does not show the expected form", msg)
			}
		})
	}
}
