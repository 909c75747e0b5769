// Package registries starts the registries the end-to-end tests run against: the CNCF
// distribution registry as a real process (no referrers API, so clients fall back to the
// tag schema) and go-containerregistry's pkg/registry in process (referrers API on).
// Each has a testing variant that stops the registry on cleanup and a plain variant for
// programs such as the demo.
package registries
