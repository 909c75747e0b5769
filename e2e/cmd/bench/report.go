package main

import (
	"fmt"
	"io"
	"sort"
	"time"
)

// medianWall returns the median wall time of rw's rounds.
func (rw *row) medianWall() time.Duration {
	var d []time.Duration
	for _, r := range rw.Results {
		d = append(d, r.Wall)
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	n := len(d)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return d[n/2]
	}
	return (d[n/2-1] + d[n/2]) / 2
}

// medianMBps returns the median throughput in MB/s (10^6 bytes), 0 when the scenario
// moves no bytes.
func (rw *row) medianMBps() float64 {
	var v []float64
	for _, r := range rw.Results {
		if r.Bytes > 0 && r.Wall > 0 {
			v = append(v, float64(r.Bytes)/1e6/r.Wall.Seconds())
		}
	}
	sort.Float64s(v)
	n := len(v)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// peakRSS returns the largest peak RSS of any round, in MiB.
func (rw *row) peakRSS() float64 {
	var m int64
	for _, r := range rw.Results {
		m = max(m, r.RSSKiB)
	}
	return float64(m) / 1024
}

// manifests returns "found/corpus" of the round that found fewest.
func (rw *row) manifests() string {
	if len(rw.Results) == 0 || rw.Results[0].Corpus == 0 {
		return "-"
	}
	lo := rw.Results[0]
	for _, r := range rw.Results {
		if r.Found < lo.Found {
			lo = r
		}
	}
	return fmt.Sprintf("%d/%d", lo.Found, lo.Corpus)
}

func (rw *row) ok() bool {
	return rw != nil && rw.Err == nil && rw.Skipped == "" && len(rw.Results) > 0
}

// printTable prints the medians as a Markdown table, then the ratios against the
// targets of issues 5 and 9. Rows that -only left out are not printed, nor the ratios
// that need them.
func printTable(w io.Writer, rows []*row, c *corpus) {
	fmt.Fprintf(w, "\n| scenario | median wall | median MB/s | peak RSS | manifests saved / corpus |\n|---|---:|---:|---:|---:|\n")
	by := map[string]*row{}
	for _, rw := range rows {
		if rw.Unselected {
			continue
		}
		by[rw.Name] = rw
		switch {
		case rw.Skipped != "":
			fmt.Fprintf(w, "| %s | %s | | | |\n", rw.Name, rw.Skipped)
			continue
		case rw.Err != nil:
			fmt.Fprintf(w, "| %s | FAILED (see above) | | | |\n", rw.Name)
			continue
		}
		mbps := "-"
		if v := rw.medianMBps(); v > 0 {
			mbps = fmt.Sprintf("%.0f", v)
		}
		fmt.Fprintf(w, "| %s | %.2f s | %s | %.0f MiB | %s |\n", rw.Name, rw.medianWall().Seconds(), mbps, rw.peakRSS(), rw.manifests())
	}
	if len(rows) > 0 && rows[len(rows)-1].ok() {
		fmt.Fprintf(w, "\n(re-save after one new tag: each round adds %.1f MiB of new bytes)\n",
			float64(rows[len(rows)-1].Results[0].Bytes)/(1<<20))
	}

	fmt.Fprintf(w, "\n| check | figure | target | |\n|---|---:|---:|---|\n")
	ratio := func(label, a, b string, target float64, pct bool) {
		ra, rb := by[a], by[b]
		if ra == nil || rb == nil {
			return // left out by -only
		}
		if !ra.ok() || !rb.ok() {
			fmt.Fprintf(w, "| %s | n/a | %s | |\n", label, fmtTarget(target, pct))
			return
		}
		v := ra.medianWall().Seconds() / rb.medianWall().Seconds()
		fig := fmt.Sprintf("%.2fx", v)
		if pct {
			fig = fmt.Sprintf("%.1f%%", v*100)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", label, fig, fmtTarget(target, pct), verdict(v <= target, target))
	}
	const (
		save, tarSave, load, resave, resaveNew = "airlock save -> directory", "airlock save -> tar, --volume-size 1GiB",
			"airlock load (directory -> registry)", "airlock re-save, nothing changed", "airlock re-save after one new tag"
		regSave, regLoad = "regctl image copy --referrers -> ocidir", "regctl image copy --referrers ocidir -> reg"
		skSave, skLoad   = "skopeo copy --all -> oci layout", "skopeo copy --all oci layout -> registry"
		raw, rawPush     = "raw: Go HTTP GET of every blob -> files", "raw: Go HTTP PUT of every blob <- files"
		verifyDir        = "airlock verify DIR --archive-key"
		verifyTar        = "airlock verify NAME.tar --archive-key"
		hashBase         = "baseline: sha256 of every blob, 1 goroutine"
		signAlone        = "airlock sign DIR --key (signing alone)"
	)
	ratio("save / regctl save", save, regSave, 0.5, false)
	ratio("load / regctl load", load, regLoad, 0.5, false)
	ratio("save / skopeo save", save, skSave, 0, false)
	ratio("load / skopeo load", load, skLoad, 0, false)
	ratio("save / raw", save, raw, 1.5, false)
	ratio("tar save / raw", tarSave, raw, 1.5, false)
	ratio("load / raw download", load, raw, 1.5, false)
	ratio("load / raw upload", load, rawPush, 1.5, false)
	ratio("re-save unchanged / full save", resave, save, 0.05, true)
	ratio("re-save one new tag / full save", resaveNew, save, 0, true)
	ratio("verify DIR / sha256 baseline", verifyDir, hashBase, 1.3, false)
	ratio("verify NAME.tar / sha256 baseline", verifyTar, hashBase, 0, false)
	ratio("signing alone / full save", signAlone, save, 0, true)
	for _, name := range []string{save, tarSave, load, resave, resaveNew, verifyDir, verifyTar, signAlone, regSave, regLoad, skSave, skLoad, raw, rawPush, hashBase} {
		if rw := by[name]; rw.ok() {
			target, v := "", ""
			if name == save || name == tarSave || name == load || name == resave || name == resaveNew || name == verifyDir || name == verifyTar {
				target, v = "< 200 MiB", verdict(rw.peakRSS() < 200, 1)
			}
			fmt.Fprintf(w, "| peak RSS: %s | %.0f MiB | %s | %s |\n", name, rw.peakRSS(), target, v)
		}
	}
}

func fmtTarget(t float64, pct bool) string {
	switch {
	case t == 0:
		return "(no target)"
	case pct:
		return fmt.Sprintf("< %.0f%%", t*100)
	}
	return fmt.Sprintf("<= %.1fx", t)
}

func verdict(ok bool, target float64) string {
	switch {
	case target == 0:
		return ""
	case ok:
		return "met"
	}
	return "MISSED"
}
