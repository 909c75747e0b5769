package registries

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"airlock.dev/airlock/e2e/internal/tools"
)

// AccessLog is distribution's own access log (Apache combined format, one line per request served),
// for tests that count the requests a client sends.
type AccessLog struct {
	host, path string
	marks      atomic.Int64
}

// Request is one line of the access log.
type Request struct {
	Method, URI string // URI as requested, query included
	Status      int
	UserAgent   string
}

// markerQuery marks the requests Sync sends, which Requests leaves out.
const markerQuery = "airlock-e2e-accesslog-mark="

// StartDistributionWithAccessLog is StartDistribution with distribution's access log turned on.
func StartDistributionWithAccessLog(ctx context.Context, t testing.TB) (string, *AccessLog) {
	t.Helper()
	var logPath string
	host := startForTest(t, func(bin, dir string) (string, func(), error) {
		logPath = filepath.Join(dir, "registry.log")
		return startLogged(ctx, bin, dir)
	})
	return host, &AccessLog{host: host, path: logPath}
}

// StartDistributionProcessWithAccessLog is StartDistributionProcess with the access log turned on.
func StartDistributionProcessWithAccessLog(ctx context.Context, dir string) (host string, log *AccessLog, stop func(), err error) {
	bin, err := tools.Find("registry")
	if err != nil {
		return "", nil, nil, err
	}
	host, stop, err = startLogged(ctx, bin, dir)
	if err != nil {
		return "", nil, nil, err
	}
	return host, &AccessLog{host: host, path: filepath.Join(dir, "registry.log")}, stop, nil
}

func startLogged(ctx context.Context, bin, dir string) (string, func(), error) {
	return startProcess(ctx, bin, dir, func(storage, host string) string {
		return strings.Replace(fmt.Sprintf(distributionConfig, storage, host), "disabled: true", "disabled: false", 1)
	}, waitReady)
}

// combined matches an access log line: `HOST - USER [TIME] "METHOD URI PROTO" STATUS SIZE "REFERER" "AGENT"`.
var combined = regexp.MustCompile(`^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) \S+ "[^"]*" "([^"]*)"`)

// Requests returns every request logged so far, in the order they completed, without the ones Sync
// sent. Call Sync first to be sure the last requests of a client that just finished are in.
func (l *AccessLog) Requests() ([]Request, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Request
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := combined.FindStringSubmatch(sc.Text())
		if m == nil || strings.Contains(m[2], markerQuery) {
			continue
		}
		status, _ := strconv.Atoi(m[3])
		out = append(out, Request{Method: m[1], URI: m[2], Status: status, UserAgent: m[4]})
	}
	return out, sc.Err()
}

// Sync waits until every request the registry answered before the call is in the log: the registry
// writes a line once its handler returns, which can be just after the client has its answer. Sync
// sends a marker request, waits for its line, then until the log stops growing for 100 ms.
func (l *AccessLog) Sync(ctx context.Context) error {
	mark := markerQuery + strconv.FormatInt(l.marks.Add(1), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+l.host+"/v2/?"+mark, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var last int64 = -1
	seen := false
	for {
		b, err := os.ReadFile(l.path)
		if err != nil {
			return err
		}
		if !seen {
			seen = strings.Contains(string(b), mark+" ")
		}
		if seen && int64(len(b)) == last {
			return nil
		}
		last = int64(len(b))
		select {
		case <-ctx.Done():
			return errors.New("access log: the marker request did not show up in " + l.path)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
