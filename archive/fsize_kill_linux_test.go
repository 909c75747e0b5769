//go:build linux

package archive

// A test written from an honest gremlins run over layout.go (issue 20): when writing the rest of a
// resumed blob fails, the LocalWriteError says how much of the blob was still to write, counting the
// bytes the partial file already held. The write failure is real: the test runs itself again in a
// child process whose file size limit (RLIMIT_FSIZE) stops the write, as a full disk would, so the
// limit never touches the other tests. See docs/mutation.md.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const fsizeChildEnv = "AIRLOCK_TEST_FSIZE_CHILD"

// TestPushResumableWriteFailsNeed: a blob of 100 000 bytes resumed from a partial file of 60 000, with
// files limited to 65 536 bytes: 5 536 bytes are written, the next write fails, and 34 464 bytes are
// still to write (not 154 464: the partial file's 60 000 bytes are already there, not still to come).
func TestPushResumableWriteFailsNeed(t *testing.T) {
	if dir := os.Getenv(fsizeChildEnv); dir != "" {
		fmt.Println(pushUnderFileSizeLimit(dir))
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPushResumableWriteFailsNeed$", "-test.count=1")
	cmd.Env = append(os.Environ(), fsizeChildEnv+"="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "need 34464, path ok true, err file too large\n") {
		t.Fatalf("child said:\n%s\nwant need 34464", out)
	}
}

// pushUnderFileSizeLimit runs in the child: it limits files to 64 KiB, resumes a blob of 100 000
// bytes from a partial file of 60 000, and says what the LocalWriteError reports.
func pushUnderFileSizeLimit(dir string) string {
	b := bytes.Repeat([]byte("0123456789"), 10_000)
	desc := ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}
	l, err := CreateLayout(dir)
	if err != nil {
		return err.Error()
	}
	partial := filepath.Join(dir, ingestDir, desc.Digest.Encoded()+".partial")
	if err := os.WriteFile(partial, b[:60_000], 0o644); err != nil {
		return err.Error()
	}
	signal.Ignore(syscall.SIGXFSZ) // the write fails with EFBIG instead of the signal ending the process
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		return err.Error()
	}
	lim.Cur = 64 << 10
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		return err.Error()
	}
	_, err = l.PushResumable(context.Background(), desc, func(off int64) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b[off:])), nil
	})
	var lw *LocalWriteError
	if !errors.As(err, &lw) {
		return fmt.Sprintf("got %v (%T), want a LocalWriteError", err, err)
	}
	return fmt.Sprintf("need %d, path ok %v, err %v", lw.Need, lw.Path == partial, errors.Unwrap(lw.Err))
}

// TestCheckSpaceAtTheLimit: a run that needs exactly the free space passes; one byte more is refused.
// /proc has a free space that does not move: 0 bytes.
func TestCheckSpaceAtTheLimit(t *testing.T) {
	if free, err := FreeSpace("/proc"); err != nil || free != 0 {
		t.Skipf("/proc: %d bytes free, %v; want 0", free, err)
	}
	if err := CheckSpace("/proc", 0); err != nil {
		t.Errorf("0 bytes of 0: %v", err)
	}
	var se *SpaceError
	if err := CheckSpace("/proc", 1); !errors.As(err, &se) || se.Need != 1 || se.Free != 0 || se.Dir != "/proc" {
		t.Errorf("1 byte of 0: %v", err)
	}
}

// TestFreeSpaceBytes: FreeSpace gives the bytes available (blocks times block size) on the file system
// of the path, or of its nearest existing parent when the path is not there yet. Other processes write
// meanwhile, so it is compared with statfs read just before and just after, give or take 1 GiB.
func TestFreeSpaceBytes(t *testing.T) {
	dir := t.TempDir()
	statfs := func() int64 {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			t.Fatal(err)
		}
		return int64(st.Bavail) * int64(st.Bsize)
	}
	before := statfs()
	if before < 2<<30 {
		t.Skipf("%d bytes free in %s: too few to tell", before, dir)
	}
	for _, p := range []string{dir, filepath.Join(dir, "not", "yet", "made")} {
		got, err := FreeSpace(p)
		after := statfs()
		if err != nil || got < min(before, after)-1<<30 || got > max(before, after)+1<<30 {
			t.Errorf("FreeSpace(%s) = %d, %v; statfs says %d, then %d", p, got, err, before, after)
		}
	}
}
