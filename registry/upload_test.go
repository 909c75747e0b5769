package registry

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
)

// uploadServer is a registry's blob upload endpoint: it accepts a monolithic POST (?digest= with the
// body) when monolithic is set and answers 202 with a session otherwise, mounts what it holds, and
// logs every request.
type uploadServer struct {
	monolithic bool
	// location, if set, is the Location of every session (else one on the server itself).
	location string
	// status, if set, answers every POST.
	status int

	mu    sync.Mutex
	log   []string
	blobs map[digest.Digest][]byte
}

func (s *uploadServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, r.Method+" "+r.URL.Path)
	q := r.URL.Query()
	store := func(d string) {
		if digest.FromBytes(body).String() != d {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.blobs[digest.Digest(d)] = body
		w.Header().Set("Docker-Content-Digest", d)
		w.WriteHeader(http.StatusCreated)
	}
	switch {
	case r.Method == http.MethodPost && s.status != 0:
		w.WriteHeader(s.status)
	case r.Method == http.MethodPost && q.Get("mount") != "" && s.blobs[digest.Digest(q.Get("mount"))] != nil:
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodPost && q.Get("digest") != "" && s.monolithic:
		store(q.Get("digest"))
	case r.Method == http.MethodPost:
		loc := s.location
		if loc == "" {
			loc = "/v2/team/app/blobs/uploads/session-1?_state=abc"
		}
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPut && q.Get("_state") == "abc":
		store(q.Get("digest"))
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func pushTo(t *testing.T, s *uploadServer, blob []byte, how Upload) (created bool, opens int, err error) {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	repo, err := remote.NewRepository(strings.TrimPrefix(srv.URL, "http://") + "/team/app")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	open := func() (io.ReadCloser, error) {
		opens++
		return io.NopCloser(bytes.NewReader(blob)), nil
	}
	created, err = PushBlob(context.Background(), repo, desc, open, how)
	return created, opens, err
}

func TestPushBlob(t *testing.T) {
	blob := []byte("a layer")
	held := []byte("held")
	for _, tc := range []struct {
		name       string
		srv        *uploadServer
		how        Upload
		created    bool
		opens      int
		requests   string
		wantStored bool
	}{
		{"monolithic accepted: one request", &uploadServer{monolithic: true}, Upload{Monolithic: true}, true, 1, "POST", true},
		{"monolithic answered 202: PUT to the session", &uploadServer{}, Upload{Monolithic: true}, false, 2, "POST PUT", true},
		{"session: POST without the body, then PUT", &uploadServer{monolithic: true}, Upload{}, false, 1, "POST PUT", true},
		{"mounted: no bytes sent", &uploadServer{blobs: map[digest.Digest][]byte{digest.FromBytes(blob): blob}}, Upload{MountFrom: "team/other"}, true, 0, "POST", true},
		{"mount declined: PUT to the session", &uploadServer{blobs: map[digest.Digest][]byte{digest.FromBytes(held): held}}, Upload{MountFrom: "team/other"}, false, 1, "POST PUT", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.srv.blobs == nil {
				tc.srv.blobs = map[digest.Digest][]byte{}
			}
			created, opens, err := pushTo(t, tc.srv, blob, tc.how)
			if err != nil {
				t.Fatal(err)
			}
			var methods []string
			for _, l := range tc.srv.log {
				methods = append(methods, strings.Fields(l)[0])
			}
			if created != tc.created || opens != tc.opens || strings.Join(methods, " ") != tc.requests {
				t.Errorf("created %v, opened %d times, requests %v; want %v, %d, %s", created, opens, tc.srv.log, tc.created, tc.opens, tc.requests)
			}
			if !bytes.Equal(tc.srv.blobs[digest.FromBytes(blob)], blob) {
				t.Errorf("the registry does not hold the blob")
			}
		})
	}
}

func TestPushBlobRefuses(t *testing.T) {
	blob := []byte("a layer")
	// A session on another host would get the credentials: refused, nothing sent there.
	s := &uploadServer{location: "http://elsewhere.example:5000/v2/team/app/blobs/uploads/x?_state=abc", blobs: map[digest.Digest][]byte{}}
	if _, _, err := pushTo(t, s, blob, Upload{}); err == nil || !strings.Contains(err.Error(), "another host") {
		t.Errorf("Location on another host: err %v", err)
	}
	// A 503 is the error oras-go gives, which Retryable retries; a 403 is not retried.
	for status, retry := range map[int]bool{http.StatusServiceUnavailable: true, http.StatusForbidden: false} {
		s := &uploadServer{status: status, blobs: map[digest.Digest][]byte{}}
		_, _, err := pushTo(t, s, blob, Upload{Monolithic: true})
		if err == nil || Retryable(err) != retry {
			t.Errorf("POST answered %d: err %v, Retryable %v, want %v", status, err, Retryable(err), retry)
		}
	}
}

// An upload session's Location must be on the registry's host and port (sameHostPort), the scheme's
// default port implied.
func TestUploadLocationSameHostPort(t *testing.T) {
	for _, tc := range []struct {
		loc, req string
		same     bool
	}{
		{"https://r.example/v2/x", "https://r.example:443/v2/x", true},
		{"http://r.example:80/v2/x", "http://r.example/v2/x", true},
		{"https://R.Example:5000/v2/x", "https://r.example:5000/v2/x", true},
		{"https://r.example:5001/v2/x", "https://r.example:5000/v2/x", false},
		{"https://other.example:5000/v2/x", "https://r.example:5000/v2/x", false},
		{"http://r.example/v2/x", "https://r.example/v2/x", false}, // 80 is not 443
	} {
		loc, _ := url.Parse(tc.loc)
		req, _ := url.Parse(tc.req)
		if got := sameHostPort(loc, req); got != tc.same {
			t.Errorf("sameHostPort(%s, %s) = %v, want %v", tc.loc, tc.req, got, tc.same)
		}
	}
}
