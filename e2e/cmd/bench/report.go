package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
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

// The names of the rows of the 1 GiB corpus, as the table shows them.
const (
	rowSave, rowTarSave, rowLoad, rowResave, rowResaveNew = "airlock save -> directory", "airlock save -> tar, --volume-size 1GiB",
		"airlock load (directory -> registry)", "airlock re-save, nothing changed", "airlock re-save after one new tag"
	rowRegSave, rowRegLoad = "regctl image copy --referrers -> ocidir", "regctl image copy --referrers ocidir -> reg"
	rowSkSave, rowSkLoad   = "skopeo copy --all -> oci layout", "skopeo copy --all oci layout -> registry"
	rowRaw, rowRawPush     = "raw: Go HTTP GET of every blob -> files", "raw: Go HTTP PUT of every blob <- files"
	rowVerifyDir           = "airlock verify DIR --archive-key"
	rowVerifyTar           = "airlock verify NAME.tar --archive-key"
	rowHashBase            = "baseline: sha256 of every blob, 1 goroutine"
	rowSignAlone           = "airlock sign DIR --key (signing alone)"
	rowTarLoad             = "airlock load (tar volumes -> registry)"
	rowInspectTar          = "airlock inspect NAME.tar"
)

// bigRows lists them all: with -only matching none of them, the 1 GiB corpus is not built.
var bigRows = []string{rowSave, rowTarSave, rowVerifyDir, rowVerifyTar, rowInspectTar, rowHashBase, rowSignAlone, rowLoad, rowTarLoad, rowResave,
	rowRegSave, rowRegLoad, rowSkSave, rowSkLoad, rowRaw, rowRawPush, rowResaveNew}

// printTable prints the medians as a Markdown table, then the ratios against the
// targets of issues 5, 9 and 10. Rows that -only left out are not printed, nor the ratios
// that need them.
func printTable(w io.Writer, rows []*row, small int) {
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
	if rw := by[rowResaveNew]; rw.ok() {
		fmt.Fprintf(w, "\n(re-save after one new tag: each round adds %.1f MiB of new bytes)\n",
			float64(rw.Results[0].Bytes)/(1<<20))
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
	ratio("save / regctl save", rowSave, rowRegSave, 0.46, false)
	ratio("load / regctl load", rowLoad, rowRegLoad, 0.5, false)
	ratio("save / skopeo save", rowSave, rowSkSave, 0, false)
	ratio("load / skopeo load", rowLoad, rowSkLoad, 0, false)
	ratio("save / raw", rowSave, rowRaw, 1.5, false)
	ratio("tar save / raw", rowTarSave, rowRaw, 1.5, false)
	ratio("tar save / directory save", rowTarSave, rowSave, 1.15, false)
	ratio("load from tar / load from directory", rowTarLoad, rowLoad, 1.1, false)
	if rw := by[rowInspectTar]; rw.ok() { // an absolute target (issue 17): inspect reads the catalog, not every byte
		v := rw.medianWall().Seconds()
		fmt.Fprintf(w, "| %s, seconds | %.3f s | < 0.3 s | %s |\n", rowInspectTar, v, verdict(v < 0.3, 0.3))
	}
	ratio("load / raw download", rowLoad, rowRaw, 1.5, false)
	ratio("load / raw upload", rowLoad, rowRawPush, 1.5, false)
	ratio("re-save unchanged / full save", rowResave, rowSave, 0.05, true)
	ratio("re-save one new tag / full save", rowResaveNew, rowSave, 0, true)
	ratio("verify DIR / sha256 baseline", rowVerifyDir, rowHashBase, 1.3, false)
	ratio("verify NAME.tar / sha256 baseline", rowVerifyTar, rowHashBase, 0, false)
	ratio("signing alone / full save", rowSignAlone, rowSave, 0, true)
	smallSave, smallLoad := smallName(small, "airlock save -> directory"), smallName(small, "airlock load (directory -> registry)")
	smallRegSave, smallRegLoad := smallName(small, "regctl image copy -> ocidir"), smallName(small, "regctl image copy ocidir -> reg")
	ratio(smallName(small, "save / regctl save"), smallSave, smallRegSave, 0.5, false)
	ratio(smallName(small, "load / regctl load"), smallLoad, smallRegLoad, 0.5, false)
	for _, name := range []string{smallSave, smallLoad, smallRegSave, smallRegLoad} {
		if rw := by[name]; rw.ok() && rw.Results[0].RequestsPerImage > 0 {
			fmt.Fprintf(w, "| requests per image: %s | %.2f | | |\n", name, rw.Results[0].RequestsPerImage)
		}
	}
	for _, name := range []string{rowSave, rowTarSave, rowLoad, rowResave, rowResaveNew, rowVerifyDir, rowVerifyTar, rowSignAlone, rowRegSave, rowRegLoad, rowSkSave, rowSkLoad, rowRaw, rowRawPush, rowHashBase,
		smallSave, smallLoad, smallRegSave, smallRegLoad} {
		if rw := by[name]; rw.ok() {
			target, v := "", ""
			if name == rowSave || name == rowTarSave || name == rowLoad || name == rowResave || name == rowResaveNew || name == rowVerifyDir || name == rowVerifyTar ||
				name == smallSave || name == smallLoad {
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
	return "<= " + strconv.FormatFloat(t, 'f', -1, 64) + "x"
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
