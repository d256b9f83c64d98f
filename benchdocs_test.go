package fofi_test

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestReadmeBenchmarks keeps the README's benchmark figures those of the
// one run that docs/benchmarks.md records (bench/run.sh writes its tables
// there): the README names that run's date, and every cell of its table is
// the median benchstat printed for that workload, concurrency and
// contestant, with the speed-ups computed from them. After a new run, this
// test names every figure of the table to update; the ratios in the prose
// after it ("11 to 13 times") are to be re-read by hand, as the prose of
// docs/benchmarks.md is.
func TestReadmeBenchmarks(t *testing.T) {
	page := readFile(t, "docs/benchmarks.md")
	status := between(t, page, "<!-- begin status -->", "<!-- end status -->")
	date := regexp.MustCompile(`\d{4}-\d{2}-\d{2}`).FindString(status)
	if date == "" {
		t.Fatalf("docs/benchmarks.md's status names no date:\n%s", status)
	}
	figures := map[string]string{} // "table c unit impl" -> benchstat's median
	for _, name := range []string{"trivial", "cpu1us", "sleep1ms", "stream"} {
		for k, v := range benchstatMedians(between(t, page, "<!-- begin "+name+" -->", "<!-- end "+name+" -->")) {
			figures[name+" "+k] = v
		}
	}

	section := between(t, readFile(t, "README.md"), "<!-- benchmarks -->", "\n## ")
	if !strings.Contains(section, "`cd bench && ./run.sh`, made on "+date) {
		t.Errorf("README's benchmarks do not name the run docs/benchmarks.md records: `cd bench && ./run.sh`, made on %s", date)
	}
	// The rows of the README's table, by the start of their first cell: the
	// benchstat table, concurrency and unit their figures come from.
	rows := map[string]string{
		"trivial work (`x*2`), c=8, ns/item": "trivial 8 sec/item",
		"~1µs of arithmetic, c=2, ns/item":   "cpu1us 2 sec/item",
		"200 sleeps of 1ms, c=50":            "sleep1ms 50 wall/ideal",
		"1,000,000 items from an iterator":   "stream - peak-heap-B",
	}
	var impls []string
	checked := 0
	for _, line := range strings.Split(section, "\n") {
		cells := tableCells(line)
		switch {
		case len(cells) == 0 || strings.HasPrefix(cells[0], "---"):
			continue
		case cells[0] == "workload":
			impls = nil
			for _, c := range cells[1:] {
				impl, _, _ := strings.Cut(strings.TrimPrefix(c, "`"), "`")
				impls = append(impls, impl)
			}
			continue
		}
		var key string
		for prefix, k := range rows {
			if strings.HasPrefix(cells[0], prefix) {
				key = k
			}
		}
		if key == "" {
			t.Errorf("README's benchmark table has a row TestReadmeBenchmarks does not know: %q", cells[0])
			continue
		}
		if len(cells)-1 != len(impls) {
			t.Fatalf("README's benchmark row %q has %d figures for %d contestants", cells[0], len(cells)-1, len(impls))
		}
		for i, cell := range cells[1:] {
			if cell == "" {
				continue
			}
			median, ok := figures[key+" "+impls[i]]
			if !ok {
				t.Errorf("README: %s, %s = %q, but docs/benchmarks.md has no such figure", cells[0], impls[i], cell)
				continue
			}
			want := readmeFigure(median)
			if strings.HasSuffix(cell, "x)") { // a speed-up over the loop
				loop := parseBenchstat(figures[key+" loop"])
				want += fmt.Sprintf(" (%.2fx)", loop/parseBenchstat(median))
			}
			if cell != want {
				t.Errorf("README: %s, %s = %q, want %q (docs/benchmarks.md: %s)", cells[0], impls[i], cell, want, median)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Error("README's benchmark table has no figure")
	}
}

// benchstatMedians returns the medians of benchstat's text tables, by
// "c unit impl" ("-" for c when the tables are not split by /c).
func benchstatMedians(text string) map[string]string {
	medians := map[string]string{}
	c, unit, header := "-", "", 0
	for _, line := range strings.Split(text, "\n") {
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
			header = 0
		case fields[0] == "/c:":
			c = fields[1]
		case fields[0] == "│":
			header++
			if header == 2 {
				unit = fields[1]
			}
		case len(fields) >= 2 && fields[0] != "geomean" && !strings.HasPrefix(fields[0], "¹"):
			medians[c+" "+unit+" "+fields[0]] = fields[1]
		}
	}
	return medians
}

// parseBenchstat reads a benchstat figure such as 588.1n, 1.338µ, 1.166,
// 908.8m or 20.09Ki.
func parseBenchstat(s string) float64 {
	scale := 1.0
	for _, u := range []struct {
		suffix string
		scale  float64
	}{{"n", 1e-9}, {"µ", 1e-6}, {"m", 1e-3}, {"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			s, scale = strings.TrimSuffix(s, u.suffix), u.scale
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return v * scale
}

// readmeFigure writes a benchstat figure as the README does: seconds per
// item in ns with the digits benchstat printed (1.338µ is 1,338), sizes in
// KiB and MiB, ratios as they are.
func readmeFigure(s string) string {
	switch {
	case strings.HasSuffix(s, "n"):
		return strings.TrimSuffix(s, "n")
	case strings.HasSuffix(s, "µ"):
		ns := int(math.Round(parseBenchstat(s) * 1e9))
		return fmt.Sprintf("%d,%03d", ns/1000, ns%1000)
	case strings.HasSuffix(s, "Ki"), strings.HasSuffix(s, "Mi"), strings.HasSuffix(s, "Gi"):
		return s[:len(s)-2] + " " + s[len(s)-2:] + "B"
	}
	return s
}

// tableCells returns the cells of a Markdown table row, trimmed, or nil.
func tableCells(line string) []string {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "|") || !strings.HasSuffix(line, "|") {
		return nil
	}
	cells := strings.Split(line[1:len(line)-1], "|")
	for i, c := range cells {
		cells[i] = strings.TrimSpace(c)
	}
	return cells
}

// TestComparisonVersions checks that docs/comparison.md describes the
// releases of the peers that bench/go.mod measures: the version in the
// column of each peer is the one bench/go.mod requires.
func TestComparisonVersions(t *testing.T) {
	required := map[string]string{} // module path -> version
	for _, line := range strings.Split(readFile(t, "bench/go.mod"), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && strings.HasPrefix(f[1], "v") {
			required[f[0]] = f[1]
		}
	}
	var header []string
	for _, line := range strings.Split(readFile(t, "docs/comparison.md"), "\n") {
		if cells := tableCells(line); len(cells) > 1 && cells[1] == "fofi" {
			header = cells
			break
		}
	}
	if header == nil {
		t.Fatal("docs/comparison.md has no table whose second column is fofi")
	}
	version := regexp.MustCompile(`v\d+\.\d+\.\d+[^\s)]*`)
	for _, mod := range []string{"golang.org/x/sync", "github.com/sourcegraph/conc", "github.com/alitto/pond/v2",
		"github.com/panjf2000/ants/v2", "github.com/destel/rill"} {
		want, ok := required[mod]
		if !ok {
			t.Errorf("bench/go.mod does not require %s", mod)
			continue
		}
		found := false
		for _, cell := range header {
			if !strings.Contains(cell, "pkg.go.dev/"+mod+")") && !strings.Contains(cell, "pkg.go.dev/"+mod+"/") {
				continue
			}
			found = true
			if got := version.FindAllString(cell, -1); len(got) != 1 || got[0] != want {
				t.Errorf("docs/comparison.md: the %s column names %v, bench/go.mod requires %s", mod, got, want)
			}
		}
		if !found {
			t.Errorf("docs/comparison.md has no column for %s", mod)
		}
	}
}
