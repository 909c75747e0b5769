package mirrortest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"airlock.dev/airlock/config"
	"airlock.dev/airlock/mirror/plan"
	"airlock.dev/airlock/referrers"
)

func NamedNode(name, mediaType string) *plan.Node {
	return &plan.Node{Desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromString(name), Size: int64(len(name))}, Manifest: []byte(name)}
}

func NamedReferrer(name, kind string, subject *plan.Node, tag string) *plan.Node {
	n := NamedNode(name, ocispec.MediaTypeImageManifest)
	n.Kind = kind
	n.Referrer = &referrers.Found{Descriptor: n.Desc, Subject: subject.Desc.Digest, Tag: tag}
	return n
}

// sparsePlan is an index that kept platforms of more, with a signature and an SBOM (itself signed) on
// the index, and a signature (itself signed, as by a counter-signer) on each platform manifest.
func SparsePlan(platforms ...string) *plan.ImagePlan {
	root := NamedNode("index", ocispec.MediaTypeImageIndex)
	p := &plan.ImagePlan{Image: config.Image{Registry: "registry.example.com", Repository: "team/app", Tag: "1.4.2"},
		Source: "registry.example.com/team/app:1.4.2", Root: root, Sparse: true}
	idxSig := NamedReferrer("index-sig", referrers.KindSignature, root, "sha256-"+root.Desc.Digest.Encoded()+".sig")
	sbom := NamedReferrer("index-sbom", referrers.KindSBOM, root, "")
	p.Referrers = append(p.Referrers, idxSig, sbom)
	var later []*plan.Node
	for _, pl := range platforms {
		c := NamedNode("manifest "+pl, ocispec.MediaTypeImageManifest)
		c.Platform = pl
		root.Children = append(root.Children, c)
		sig := NamedReferrer("sig "+pl, referrers.KindSignature, c, "")
		p.Referrers = append(p.Referrers, sig)
		later = append(later, NamedReferrer("countersig "+pl, referrers.KindSignature, sig, ""))
	}
	p.Referrers = append(p.Referrers, NamedReferrer("sbom-sig", referrers.KindSignature, sbom, ""))
	p.Referrers = append(p.Referrers, later...)
	return p
}

// writeMinimalArchive writes the smallest archive archive.Open accepts, as a directory dir/layout and as
// one tar volume dir/a.tar.000 with its list dir/a.tar.sha256.
func WriteMinimalArchive(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"oci-layout": `{"imageLayoutVersion":"1.0.0"}`,
		"index.json": `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`,
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	os.MkdirAll(filepath.Join(dir, "layout"), 0o755)
	for _, name := range []string{"oci-layout", "index.json"} {
		if err := os.WriteFile(filepath.Join(dir, "layout", name), []byte(files[name]), 0o644); err != nil {
			t.Fatal(err)
		}
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[name]))
	}
	tw.Close()
	sum := sha256.Sum256(buf.Bytes())
	os.WriteFile(filepath.Join(dir, "a.tar.000"), buf.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "a.tar.sha256"), []byte(hex.EncodeToString(sum[:])+"  a.tar.000\n"), 0o644)
}

func Refusal(status int, code, msg string) error {
	er := &errcode.ErrorResponse{Method: http.MethodPut, StatusCode: status}
	if code != "" {
		er.Errors = errcode.Errors{{Code: code, Message: msg}}
	}
	return er
}

func IndexOf(events []string, prefix string) int {
	return slices.IndexFunc(events, func(e string) bool { return strings.HasPrefix(e, prefix) })
}

func LastIndexOf(events []string, prefix string) int {
	for i := len(events) - 1; i >= 0; i-- {
		if strings.HasPrefix(events[i], prefix) {
			return i
		}
	}
	return -1
}

// at returns the position of the write of n into store, failing the test when there is none.
