package verify

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ProtonMail/go-crypto/openpgp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"airlock.dev/airlock/vocab"
)

// This file evaluates the keyring signers of a policy rule (`- keyring: FILE`). A keyring signer is
// satisfied by a Helm chart artifact (a manifest whose config is Helm's) whose one provenance layer
// verifies against the signer's keyring over the chart's content layer, as verify --keyring checks
// it (provenance.go): so a site can accept a chart from an HTTP chart repository, which has no cosign
// signature (airlock built its manifest), by its Helm provenance. Nothing else satisfies it.

// FormatHelmProvenance is the Check.Format of a chart's provenance checked for a keyring signer.
const FormatHelmProvenance = "helm-prov"

// judge checks the keyring signers of rule (checkKeyrings) and sets the verdict of res by the rule.
func (res *Result) judge(ctx context.Context, img Image, rule *Rule) {
	why := checkKeyrings(ctx, img, rule, res)
	res.Failures = evaluate(img, rule, res, why)
	res.Passed = len(res.Failures) == 0
}

// checkKeyrings checks img for each keyring signer of rule. When img is a chart with a provenance
// layer, each keyring signer gets a Check in res.Signatures (valid, by the signer, or why not), and
// the first valid one sets res.Provenance (which key signed) unless something set it before. It
// returns why each keyring signer that is not satisfied is not ("keyring signer NAME: ..."), for the
// failure of a rule that is not met.
func checkKeyrings(ctx context.Context, img Image, rule *Rule, res *Result) []string {
	var signers []Signer
	for _, s := range rule.Signers {
		if s.IsKeyring() {
			signers = append(signers, s)
		}
	}
	if len(signers) == 0 {
		return nil
	}
	if img.Manifest == nil {
		return keyringWhy(signers, "the artifact's manifest was not given, so its provenance was not checked")
	}
	chart, why := chartOf(ctx, img)
	if chart == nil {
		return keyringWhy(signers, why)
	}
	var out []string
	for _, s := range signers {
		c, e := keyringCheck(img, s, chart)
		res.Signatures = append(res.Signatures, c)
		switch {
		case !c.Valid:
			out = append(out, c.Reason)
		case res.Provenance == nil:
			res.Provenance = &Provenance{Chart: chart.name, Layer: chart.layer, Signer: identity(e), Key: fingerprint(e), Valid: true}
		}
	}
	return out
}

// keyringWhy says, for each of signers, that it is not satisfied for the reason why.
func keyringWhy(signers []Signer, why string) []string {
	out := make([]string, len(signers))
	for i, s := range signers {
		out[i] = "keyring signer " + s.Name + ": " + why
	}
	return out
}

// chartOf reads img as a Helm chart with a provenance layer; nil and why it is not one otherwise.
func chartOf(ctx context.Context, img Image) (*chartFiles, string) {
	var m ocispec.Manifest
	if err := json.Unmarshal(img.Manifest, &m); err != nil {
		return nil, "its manifest is unreadable: " + err.Error()
	}
	if mt := m.Config.MediaType; mt != vocab.HelmConfigMediaType {
		what := "its config is " + mt
		if mt == "" {
			what = "it has no config: an image index"
		}
		return nil, fmt.Sprintf("not a Helm chart (%s, not %s): a keyring vouches for Helm charts only, by their provenance", what, vocab.HelmConfigMediaType)
	}
	c, err := readChart(ctx, m, img.Fetch)
	switch {
	case err != nil:
		return nil, err.Error()
	case c.layer == "":
		return nil, fmt.Sprintf("chart %s has no provenance: its artifact carries no provenance layer (%s); have its publisher sign it (helm package --sign, the .prov published beside the .tgz) and save it again", c.name, vocab.HelmProvMediaType)
	}
	return c, ""
}

// keyringCheck checks the provenance of chart (img) for the keyring signer s: valid, by s, with the
// key that signed; unknown-signer when no key of the keyring made it; invalid when a key of the
// keyring made it and it does not hold (altered, another .tgz, another chart's); rejected when the
// keyring was not read (an archive's own policy).
func keyringCheck(img Image, s Signer, chart *chartFiles) (Check, *openpgp.Entity) {
	c := Check{Referrer: chart.layer, Subject: img.Digest, Format: FormatHelmProvenance}
	c.Covers, _ = covers(img, img.Digest)
	name := "keyring signer " + s.Name
	if s.ring == nil {
		c.Status, c.Reason = StatusRejected, name+": its keyring is not read from an archive's own policy (the archive carries no keyring): pin the policy at the site (--policy) to accept charts by their provenance"
		return c, nil
	}
	e, err := s.ring.Verify(chart.tgz, chart.prov, chart.name)
	if err != nil {
		var a attempts
		a.add(name, err)
		a.fail(&c, "")
		return c, nil
	}
	c.valid(s.Name, false)
	c.Key = identity(e) + " (" + fingerprint(e) + ")"
	return c, e
}
