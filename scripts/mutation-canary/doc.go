// Package canary is no product code: scripts/mutate.sh runs gremlins over it before measuring the
// product, to check that the tool measures at all (issue 20: gremlins v0.6.0 given --test-cpu ran
// every mutant's tests with a broken command line and reported each mutant killed).
//
// unasserted and asserted hold the same code. unasserted's test calls it and asserts nothing, so no
// mutant can be killed: gremlins must report (nearly) all of them LIVED. asserted's test checks every
// result, at each boundary, so gremlins must report (nearly) all of them KILLED. A tool that reports
// unasserted's mutants killed, or asserted's lived, is not running the tests it claims to, and
// scripts/mutate.sh fails before it reports any figure for the product.
package canary
