package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// verifyingExample is an example command line that verifies: verify, or load with --verify (after an
// optional label, "before deploy:", and environment settings).
var verifyingExample = regexp.MustCompile(`^\s*([a-z ]+:\s+)?(\S+=\S+\s+)*airlock (verify\s|load\s.*--verify)`)

// pinsTrust is what makes such a line pin trust at the site, as it is written.
var pinsTrust = regexp.MustCompile(`--archive-key|--key |--key=|--trust|AIRLOCK_TRUST|--policy|\s-c\s|--insecure-archive-trust`)

// TestExamplesThatVerifyPinTrust: every example in --help, the README and the docs that verifies pins
// trust as written, so that a new user who runs it gets a verification, not exit 2.
func TestExamplesThatVerifyPinTrust(t *testing.T) {
	texts := map[string]string{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		texts["airlock "+c.CommandPath()+" --help"] = c.Long + "\n" + c.Example
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	files, _ := filepath.Glob("../../docs/*.md")
	for _, f := range append(files, "../../README.md") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		texts[f] = string(b)
	}
	checked := 0
	for where, text := range texts {
		for _, line := range strings.Split(text, "\n") {
			if !verifyingExample.MatchString(line) {
				continue
			}
			checked++
			if !pinsTrust.MatchString(line) {
				t.Errorf("%s: an example that verifies pins no trust (exit 2 as written):\n  %s", where, strings.TrimSpace(line))
			}
		}
	}
	if checked < 5 {
		t.Errorf("only %d verifying examples found: the test reads nothing", checked)
	}
}
