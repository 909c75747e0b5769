package seed

import "encoding/json"

// slsaPredicate is the provenance predicate given to cosign attest.
func slsaPredicate() ([]byte, error) {
	return json.Marshal(map[string]any{
		"builder":   map[string]any{"id": "https://airlock.dev/e2e/builder"},
		"buildType": "https://airlock.dev/e2e/build/v1",
		"invocation": map[string]any{
			"configSource": map[string]any{"uri": "git+https://example.invalid/app", "entryPoint": "build"},
		},
	})
}
