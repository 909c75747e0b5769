// Package e2e holds airlock's end-to-end tests: real registry processes, the real cosign
// CLI, and the airlock commands run against them. Tools come from scripts/install-tools.sh;
// without them the tests skip, or fail when CI=true.
package e2e
