// Package tools finds the external programs the end-to-end tests run (registry, cosign,
// regctl): first in the repository's .tools/bin, where scripts/install-tools.sh puts
// them, then on PATH.
package tools

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// installScript is the script, relative to the repository root, that installs the tools.
const installScript = "scripts/install-tools.sh"

// ErrNotFound is returned by Find when a tool is neither in .tools/bin nor on PATH.
var ErrNotFound = errors.New("tool not found")

// RepoRoot returns the repository root: the nearest directory, walking up from the
// working directory, that contains scripts/install-tools.sh.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, installScript)); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s above the working directory", installScript)
		}
		dir = parent
	}
}

// BinDir returns the directory scripts/install-tools.sh installs into.
func BinDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".tools", "bin"), nil
}

// InstallCommand returns the shell command that installs the named tool.
func InstallCommand(name string) string {
	if root, err := RepoRoot(); err == nil {
		return filepath.Join(root, installScript) + " " + name
	}
	return installScript + " " + name
}

// Find returns the path of the named tool, looking in .tools/bin first and then on PATH.
// The error wraps ErrNotFound and says how to install the tool.
func Find(name string) (string, error) {
	if dir, err := BinDir(); err == nil {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: %s is neither in .tools/bin nor on PATH; install it with: %s",
		ErrNotFound, name, InstallCommand(name))
}

// Path returns the path of the named tool. When the tool is missing it fails the test
// if CI=true, and skips it otherwise; either way the message says how to install it.
func Path(t testing.TB, name string) string {
	t.Helper()
	p, err := Find(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%v (CI=true: missing tools fail the run)", err)
	}
	t.Skipf("%v", err)
	return ""
}
