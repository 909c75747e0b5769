package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"sigs.k8s.io/yaml"
)

// kyvernoModule is the Kyverno release whose CLI the e2e tests run (scripts/install-tools.sh).
const kyvernoModule = "github.com/kyverno/kyverno@v1.19.1"

// TestKyvernoPolicyMatchesItsCRD: the ImageValidatingPolicy that airlock admission writes is valid
// against the ImageValidatingPolicy CRD of Kyverno's own module (the CRDs its CLI embeds), checked
// with the API server's own code (k8s.io/apiextensions-apiserver): no field the schema does not know
// (what an API server prunes, and kubectl apply --validate=strict refuses) and the schema's OpenAPI
// validation. The same policy with an unknown field, or a field of the wrong type, is refused.
func TestKyvernoPolicyMatchesItsCRD(t *testing.T) {
	check := crdChecker(t, "cmd/cli/kubectl-kyverno/data/crds/policies.kyverno.io_imagevalidatingpolicies.yaml", "v1")
	policy, err := os.ReadFile(kyvernoPolicy(t, "registry.site:5000/mirror", writePublicKey(t)))
	if err != nil {
		t.Fatal(err)
	}
	if errs := check(policy); len(errs) > 0 {
		t.Errorf("the generated policy does not match its CRD: %v\n%s", errs, policy)
	}
	unknown := strings.Replace(string(policy), "\n  failurePolicy: Fail\n", "\n  failurePolicy: Fail\n  mirrorPrefix: x\n", 1)
	if errs := check([]byte(unknown)); !strings.Contains(strings.Join(errs, "; "), "unknown field .spec.mirrorPrefix") {
		t.Errorf("a policy with an unknown field: %v, want .spec.mirrorPrefix refused", errs)
	}
	wrongType := strings.Replace(string(policy), "    mutateDigest: true\n", "    mutateDigest: \"yes\"\n", 1)
	if errs := check([]byte(wrongType)); !strings.Contains(strings.Join(errs, "; "), "mutateDigest") {
		t.Errorf("a policy with a string for a boolean: %v, want mutateDigest refused", errs)
	}
}

// crdChecker returns a check of a YAML object against version of the CRD at path in Kyverno's module
// (go mod download gives its directory): the unknown fields, then the schema's validation errors.
func crdChecker(t *testing.T, path, version string) func([]byte) []string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "go", "mod", "download", "-json", kyvernoModule).Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v", kyvernoModule, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download %s: no directory: %v\n%s", kyvernoModule, err, out)
	}
	b, err := os.ReadFile(filepath.Join(mod.Dir, path))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(b, &crd); err != nil {
		t.Fatal(err)
	}
	var schema *apiextensionsv1.JSONSchemaProps
	for _, v := range crd.Spec.Versions {
		if v.Name == version && v.Schema != nil {
			schema = v.Schema.OpenAPIV3Schema
		}
	}
	if schema == nil {
		t.Fatalf("%s has no schema for version %s", path, version)
	}
	var internal apiextensions.JSONSchemaProps
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(schema, &internal, nil); err != nil {
		t.Fatal(err)
	}
	structural, err := structuralschema.NewStructural(&internal)
	if err != nil {
		t.Fatal(err)
	}
	validator, _, err := validation.NewSchemaValidator(&internal)
	if err != nil {
		t.Fatal(err)
	}
	return func(doc []byte) []string {
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return []string{err.Error()}
		}
		var errs []string
		for _, p := range pruning.PruneWithOptions(obj, structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}) {
			errs = append(errs, "unknown field ."+p)
		}
		for _, e := range validation.ValidateCustomResource(nil, obj, validator) {
			errs = append(errs, e.Error())
		}
		return errs
	}
}

// writePublicKey writes a new ECDSA P-256 public key (PEM) and returns its path.
func writePublicKey(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "site.pub")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
