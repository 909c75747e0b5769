package tools

import (
	"errors"
	"strings"
	"testing"
)

func TestFindMissingToolSaysHowToInstall(t *testing.T) {
	_, err := Find("airlock-no-such-tool")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Find: %v, want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), "scripts/install-tools.sh airlock-no-such-tool") {
		t.Errorf("error %q does not name the install command", err)
	}
}

func TestRepoRootHoldsInstallScript(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(InstallCommand("cosign"), "/scripts/install-tools.sh cosign") || !strings.HasPrefix(InstallCommand("cosign"), root) {
		t.Errorf("InstallCommand(cosign) = %q, want it under %s", InstallCommand("cosign"), root)
	}
}
