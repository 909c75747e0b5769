package plan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	orasreg "oras.land/oras-go/v2/registry"

	"airlock.dev/airlock/archive"
)

// Form is what a location names: an archive on disk, or a registry.
type Form string

const (
	// FormDirectory is an archive written as a directory (an OCI image layout).
	FormDirectory Form = "directory"
	// FormTar is an archive written as tar volumes, named NAME.tar, NAME.tar.000 (any volume) or
	// NAME.tar.sha256 (the volume list).
	FormTar Form = "tar"
	// FormRegistry is a registry reference, HOST[:PORT] or HOST[:PORT]/PATH.
	FormRegistry Form = "registry"
)

const (
	archiveForms  = "an archive (a directory, NAME.tar, NAME.tar.000 or NAME.tar.sha256)"
	locationForms = archiveForms + " or a registry HOST[:PORT]/PATH"
)

// OpenArchive opens location, which must be an archive (as FormOf tells it).
func OpenArchive(ctx context.Context, location string) (*archive.Reader, error) {
	if err := isArchive(location); err != nil {
		return nil, err
	}
	return archive.Open(ctx, location)
}

// OpenArchiveIndex is OpenArchive with archive.OpenIndex: tar volumes are not hashed whole up front
// (inspect reads the index and the catalog only).
func OpenArchiveIndex(ctx context.Context, location string) (*archive.Reader, error) {
	if err := isArchive(location); err != nil {
		return nil, err
	}
	return archive.OpenIndex(ctx, location)
}

// isArchive refuses a location that does not read as an archive.
func isArchive(location string) error {
	form, err := formOf(location, archiveForms)
	if err != nil {
		return err
	}
	if form == FormRegistry {
		return fmt.Errorf("%s: no such file or directory (it reads as a registry reference): want %s", location, archiveForms)
	}
	return nil
}

// FormOf tells what location names, without opening it. What exists on disk is an archive: a
// directory, or a file named as tar volumes are. A tar name need not exist (NAME.tar names its volumes
// by their list). Anything else is a registry reference when it reads as one (the first element a
// host: it has a dot or a port, or is localhost) and an error otherwise.
func FormOf(location string) (Form, error) { return formOf(location, locationForms) }

// formOf is FormOf, its refusals saying that want is wanted.
func formOf(location, want string) (Form, error) {
	if location == "" {
		return "", fmt.Errorf("no location given: want %s", want)
	}
	fi, err := os.Stat(location)
	switch {
	case err == nil && fi.IsDir():
		return FormDirectory, nil
	case err == nil && isTarName(location):
		return FormTar, nil
	case err == nil:
		return "", fmt.Errorf("%s is a file but not an archive: want %s", location, want)
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("open archive: %w", err)
	case isTarName(location):
		return FormTar, nil
	case looksLikePath(location):
		return "", fmt.Errorf("open archive: %w", err)
	case isRegistryReference(location):
		return FormRegistry, nil
	}
	return "", fmt.Errorf("%s: no such file or directory, and not a registry reference: want %s", location, want)
}

// isTarName reports whether p is named as tar volumes are: NAME.tar, NAME.tar.NNN, NAME.tar.sha256.
func isTarName(p string) bool {
	return strings.HasSuffix(p, ".tar") || archive.BaseName(p) != p
}

func looksLikePath(p string) bool {
	return strings.HasPrefix(p, "/") || strings.HasPrefix(p, ".") || strings.HasPrefix(p, "~") || strings.Contains(p, `\`)
}

// isRegistryReference reports whether s reads as HOST[:PORT][/PATH], HOST a name with a dot or a port,
// localhost, or an IP address.
func isRegistryReference(s string) bool {
	host, path, _ := strings.Cut(s, "/")
	if !strings.ContainsAny(host, ".:") && host != "localhost" {
		return false
	}
	ref := orasreg.Reference{Registry: host, Repository: strings.TrimSuffix(path, "/")}
	if ref.ValidateRegistry() != nil {
		return false
	}
	return path == "" || ref.ValidateRepository() == nil
}
