package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// writeBlobList writes the raw baseline's input: the registry host on the first line,
// then "repository digest" for every unique blob.
func writeBlobList(path, host string, blobs []blob) error {
	var b strings.Builder
	b.WriteString(host + "\n")
	for _, bl := range blobs {
		fmt.Fprintf(&b, "%s %s\n", bl.Repo, bl.Desc.Digest)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// rawCopy is the raw baseline, run as a child process so that its time and RSS are
// measured like the tools': it GETs every blob of the list over plain HTTP with
// concurrency workers and io.Copy's it into a file under dir. No hashing, no fsync.
// With pushTo set it goes the other way, the raw baseline of load: it uploads every
// listed blob from the OCI layout dir into pushTo (monolithic POST + PUT, as a plain
// client does), into the repository mirror/<repository>.
func rawCopy(list, dir, pushTo string, concurrency int) error {
	f, err := os.Open(list)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return fmt.Errorf("%s: empty", list)
	}
	host := sc.Text()
	if err := os.MkdirAll(dir, 0o755); pushTo == "" && err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	jobs := make(chan [2]string)
	errs := make(chan error, concurrency)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				op := getBlob
				if pushTo != "" {
					host, op = pushTo, putBlob
				}
				if err := op(client, host, j[0], j[1], dir); err != nil {
					errs <- err
					for range jobs {
					}
					return
				}
			}
		}()
	}
	for sc.Scan() {
		repo, dgst, _ := strings.Cut(sc.Text(), " ")
		jobs <- [2]string{repo, dgst}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	return <-errs
}

func getBlob(client *http.Client, host, repo, dgst, dir string) error {
	resp, err := client.Get("http://" + host + "/v2/" + repo + "/blobs/" + dgst)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s/%s: %s", repo, dgst, resp.Status)
	}
	out, err := os.Create(filepath.Join(dir, strings.TrimPrefix(dgst, "sha256:")))
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func putBlob(client *http.Client, host, repo, dgst, dir string) error {
	resp, err := client.Post("http://"+host+"/v2/mirror/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || loc == "" {
		return fmt.Errorf("POST upload to %s: %s", repo, resp.Status)
	}
	if !strings.HasPrefix(loc, "http") {
		loc = "http://" + host + loc
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	f, err := os.Open(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(dgst, "sha256:")))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPut, loc+sep+"digest="+dgst, f)
	if err != nil {
		return err
	}
	req.ContentLength = fi.Size()
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("PUT %s to %s: %s", dgst, repo, resp.Status)
	}
	return nil
}

func numCPU() int { return runtime.NumCPU() }
