module airlock.dev/airlock/e2e

go 1.26.0

require (
	github.com/google/go-containerregistry v0.22.1
	github.com/opencontainers/go-digest v1.0.0
	github.com/opencontainers/image-spec v1.1.1
	golang.org/x/crypto v0.54.0
	oras.land/oras-go/v2 v2.6.4
)

require (
	airlock.dev/airlock v0.0.0
	golang.org/x/sync v0.24.0
)

require golang.org/x/sys v0.49.0 // indirect

replace airlock.dev/airlock => ../
