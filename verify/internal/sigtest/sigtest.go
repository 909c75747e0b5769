package sigtest

import (
	_ "github.com/digitorus/timestamp"
	_ "github.com/google/certificate-transparency-go"
	_ "github.com/sigstore/sigstore-go/pkg/sign"
	_ "github.com/sigstore/sigstore-go/pkg/testing/ca"
	_ "github.com/sigstore/sigstore-go/pkg/verify"
)
