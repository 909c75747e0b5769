module airlock.dev/mutation-canary

// The mutation-testing canary of scripts/mutate.sh: a module of its own, so that it is no part of
// the product (airlock's go build, go vet and go test ./... never see it). The module line must stay
// the first line: gremlins v0.6.0 reads the module's name from go.mod's first line only.

go 1.26.0
