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
func (res *Result) judge(img Image, rule *Rule, chart *imageChart) {
	why := checkKeyrings(img, rule, res, chart)
	res.Failures = evaluate(img, rule, res, why)
	res.Passed = len(res.Failures) == 0
}

// keyringSigners are the signers of rule that are keyrings.
func (rule *Rule) keyringSigners() []Signer {
	var out []Signer
	for _, s := range rule.Signers {
		if s.IsKeyring() {
			out = append(out, s)
		}
	}
	return out
}

// checkKeyrings checks chart (img read as a chart) for each keyring signer of rule. When it is a
// chart with a provenance layer, each keyring signer gets a Check in res.Signatures (valid, by the
// signer, or why not), and the first valid one sets res.Provenance (which key signed) unless
// something set it before. It returns why each keyring signer that is not satisfied is not
// ("keyring signer NAME: ..."), for the failure of a rule that is not met.
func checkKeyrings(img Image, rule *Rule, res *Result, chart *imageChart) []string {
	signers := rule.keyringSigners()
	// ifs, not a switch: Go's coverage marks no case expression, so a mutation run would count each
	// of these conditions as not covered.
	if len(signers) == 0 {
		return nil
	}
	if chart.notChart != "" {
		return keyringWhy(signers, chart.notChart)
	}
	if chart.err != nil {
		return keyringWhy(signers, chart.err.Error())
	}
	if chart.files.layer == "" {
		return keyringWhy(signers, fmt.Sprintf("chart %s has no provenance: its artifact carries no provenance layer (%s); have its publisher sign it (helm package --sign, the .prov published beside the .tgz) and save it again", chart.files.name, vocab.HelmProvMediaType))
	}
	var out []string
	for _, s := range signers {
		c, e := keyringCheck(img, s, chart.files)
		res.Signatures = append(res.Signatures, c)
		switch {
		case !c.Valid:
			out = append(out, c.Reason)
		case res.Provenance == nil:
			res.Provenance = &Provenance{Chart: chart.files.name, Layer: chart.files.layer, Signer: identity(e), Key: fingerprint(e), Valid: true}
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

// imageChart is an image read as a Helm chart artifact: once per Verify, for the keyring signers of
// its rule and the keyring pinned at the site both (a chart's layers are up to vocab.MaxChartSize).
type imageChart struct {
	notChart string      // why the image is not a chart artifact; "" when it is one
	files    *chartFiles // what readChart read; nil when notChart is set (or readChart named nothing)
	err      error       // why the chart cannot be checked (readChart's error)
}

// readImageChart reads img as a Helm chart artifact (imageChart), its layers only when it has a
// provenance layer.
func readImageChart(ctx context.Context, img Image) *imageChart {
	if img.Manifest == nil {
		return &imageChart{notChart: "the artifact's manifest was not given, so its provenance was not checked"}
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(img.Manifest, &m); err != nil {
		return &imageChart{notChart: "its manifest is unreadable: " + err.Error()}
	}
	if mt := m.Config.MediaType; mt != vocab.HelmConfigMediaType {
		what := "its config is " + mt
		if mt == "" {
			what = "it has no config: an image index"
		}
		return &imageChart{notChart: fmt.Sprintf("not a Helm chart (%s, not %s): a keyring vouches for Helm charts only, by their provenance", what, vocab.HelmConfigMediaType)}
	}
	c, err := readChart(ctx, m, img.Fetch)
	return &imageChart{files: c, err: err}
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
