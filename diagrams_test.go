package fofi_test

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// TestDiagramsRendered checks that every diagram source docs/img/NAME.dot
// has its docs/img/NAME.svg, and, where Graphviz's dot is installed, that
// the SVG shows what the source says today: the same clusters, nodes and
// edges with the same labels as the SVG that dot makes of the source now.
//
// It compares what the picture says, not its bytes. The bytes depend on the
// version of Graphviz (a comment names it, and layouts, coordinates,
// attributes and the way labels are split into <text> elements change from
// one version to another), so a byte comparison fails for every
// contributor whose dot is not the one that rendered the committed SVGs,
// and in CI whenever the runner's Graphviz is another. Running the check
// only when CI asks for it would leave a stale SVG to be found after the
// push, and by CI's Graphviz only. What this comparison cannot see is a
// change of colour, shape or layout alone; docs/img/render.sh after such
// an edit is up to its author.
func TestDiagramsRendered(t *testing.T) {
	sources, err := filepath.Glob(filepath.Join("docs", "img", "*.dot"))
	if err != nil || len(sources) == 0 {
		t.Fatalf("no diagram sources in docs/img: %v", err)
	}
	dot, lookErr := exec.LookPath("dot")
	for _, src := range sources {
		t.Run(filepath.Base(src), func(t *testing.T) {
			svgPath := strings.TrimSuffix(src, ".dot") + ".svg"
			svg, err := os.ReadFile(svgPath)
			if err != nil {
				t.Fatalf("%s has no SVG: %v (run docs/img/render.sh)", src, err)
			}
			got, err := svgContent(svg)
			if err != nil {
				t.Fatalf("%s: %v", svgPath, err)
			}
			if lookErr != nil {
				t.Skip("dot is not installed (apt-get install graphviz): not re-rendering")
			}
			fresh, err := exec.Command(dot, "-Tsvg", src).Output()
			if err != nil {
				t.Fatalf("dot -Tsvg %s: %v", src, err)
			}
			want, err := svgContent(fresh)
			if err != nil {
				t.Fatalf("dot -Tsvg %s: %v", src, err)
			}
			if len(want) == 0 {
				t.Fatalf("dot -Tsvg %s: no graph, cluster, node or edge found", src)
			}
			if missing, extra := multisetDiff(want, got); len(missing)+len(extra) > 0 {
				t.Errorf("%s is not what dot makes of %s today: run docs/img/render.sh\n"+
					"missing from the SVG:%s\nin the SVG but not in the source:%s",
					svgPath, src, indented(missing), indented(extra))
			}
		})
	}
}

// svgContent returns what a Graphviz SVG shows, one line per graph,
// cluster, node and edge, sorted: its class, its title (the name of the
// graph, cluster or node, "tail->head" for an edge) and the text of its
// labels, in document order. Whitespace is removed from titles and texts,
// and entities are decoded, since Graphviz versions differ in how they
// split, pad and escape label text; everything else (coordinates, sizes,
// ids, styles, comments) is left out. An anonymous graph's title (%0, %3:
// it varies with the version) is left out too.
func svgContent(svg []byte) ([]string, error) {
	type item struct {
		class       string
		title, text strings.Builder
	}
	var items []*item
	// stack holds, for every open element, the item its text belongs to
	// (the innermost enclosing <g> with a class of interest, or nil) and
	// whether it is in a <title> or a <text> element (or a <tspan> of one).
	type frame struct {
		it   *item
		kind string // "title", "text" or ""
	}
	var stack []frame
	d := xml.NewDecoder(bytes.NewReader(svg))
	d.Entity = xml.HTMLEntity
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			var top frame
			if len(stack) > 0 {
				top = stack[len(stack)-1]
			}
			switch tok.Name.Local {
			case "title", "text":
				top.kind = tok.Name.Local
			case "g":
				for _, a := range tok.Attr {
					if a.Name.Local == "class" && slices.Contains([]string{"graph", "cluster", "node", "edge"}, a.Value) {
						top = frame{it: &item{class: a.Value}}
						items = append(items, top.it)
					}
				}
			}
			stack = append(stack, top)
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, fmt.Errorf("unbalanced </%s>", tok.Name.Local)
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 || stack[len(stack)-1].it == nil {
				continue
			}
			top := stack[len(stack)-1]
			switch top.kind {
			case "title":
				top.it.title.Write(tok)
			case "text":
				top.it.text.Write(tok)
			}
		}
	}
	noSpace := func(s string) string {
		return strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) {
				return -1
			}
			return r
		}, s)
	}
	lines := make([]string, 0, len(items))
	for _, it := range items {
		title := noSpace(it.title.String())
		if it.class == "graph" && strings.HasPrefix(title, "%") {
			title = ""
		}
		lines = append(lines, fmt.Sprintf("%s %q: %q", it.class, title, noSpace(it.text.String())))
	}
	slices.Sort(lines)
	return lines, nil
}

// multisetDiff returns the lines of the sorted want that are not in the
// sorted got, and those of got that are not in want, each as often as it is
// missing.
func multisetDiff(want, got []string) (missing, extra []string) {
	for len(want) > 0 || len(got) > 0 {
		switch {
		case len(got) == 0 || len(want) > 0 && want[0] < got[0]:
			missing, want = append(missing, want[0]), want[1:]
		case len(want) == 0 || got[0] < want[0]:
			extra, got = append(extra, got[0]), got[1:]
		default:
			want, got = want[1:], got[1:]
		}
	}
	return missing, extra
}

// indented returns lines, each on a line of its own after a tab, or " none".
func indented(lines []string) string {
	if len(lines) == 0 {
		return " none"
	}
	return "\n\t" + strings.Join(lines, "\n\t")
}

// TestSVGContent keeps svgContent honest: it must see through what differs
// between Graphviz versions and renderings, and see every change of a
// title or a label, or TestDiagramsRendered passes a stale SVG.
func TestSVGContent(t *testing.T) {
	const base = `<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN"
 "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">
<!-- Generated by graphviz version 2.43.0 (0)
 -->
<svg width="100pt" height="50pt" viewBox="0.00 0.00 100.00 50.00" xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">
<g id="graph0" class="graph" transform="scale(1 1) rotate(0) translate(4 46)">
<title>flow</title>
<g id="clust1" class="cluster"><title>cluster_w</title>
<text x="1" y="2">the window</text></g>
<!-- a -->
<g id="node1" class="node"><title>a</title>
<path fill="#e3f2fd" d="M1,2C3,4"/>
<text x="1" y="2">inputs</text><text x="1" y="3">iter.Seq[In]</text></g>
<g id="node2" class="node"><title>b</title>
<text x="5" y="2"><tspan>Blocked</tspan></text><text x="6" y="2">: idle …</text></g>
<!-- a&#45;&gt;b -->
<g id="edge1" class="edge"><title>a&#45;&gt;b</title>
<path d="M1,2C3,4"/><text x="3" y="3">pulls</text></g>
</g>
</svg>
`
	same := []struct{ name, svg string }{
		{"another version and layout", `<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<!-- Generated by graphviz version 12.2.1 (20241206.2353)
 -->
<!-- Title: flow Pages: 1 -->
<svg width="120pt" height="60pt" viewBox="0.00 0.00 120.00 60.00" xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">
<g id="graph0" class="graph" transform="scale(1 1) rotate(0) translate(4 56)">
<title>flow</title>
<polygon fill="white" stroke="none" points="-4,4 -4,-56 116,-56 116,4 -4,4"/>
<g id="clust1" class="cluster"><title>cluster_w</title>
<text xml:space="preserve" x="9" y="8">the window</text></g>
<g id="edge1" class="edge"><title>a&#45;&gt;b</title>
<path d="M9,9C9,9"/><g id="a_edge1_label"><a><text xml:space="preserve">pulls</text></a></g></g>
<g id="node1" class="node"><title>a</title>
<text xml:space="preserve">inputs</text><text>iter.Seq[In]</text></g>
<g id="node2" class="node"><title>b</title>
<text xml:space="preserve">Blocked: idle&#160;&#8230;</text></g>
</g>
</svg>
`},
	}
	changed := []struct{ name, old, new string }{
		{"node label", ">inputs<", ">input<"},
		{"line order in a label", "<text x=\"1\" y=\"2\">inputs</text><text x=\"1\" y=\"3\">iter.Seq[In]</text>", "<text>iter.Seq[In]</text><text>inputs</text>"},
		{"edge label", ">pulls<", ">pushes<"},
		{"edge", "<title>a&#45;&gt;b</title>", "<title>b&#45;&gt;a</title>"},
		{"cluster label", ">the window<", ">a window<"},
		{"node name", "<title>b</title>", "<title>c</title>"},
		{"graph name", "<title>flow</title>", "<title>flows</title>"},
		{"a node more", "<!-- a -->", `<g class="node"><title>z</title></g>`},
	}
	want, err := svgContent([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 5 {
		t.Fatalf("svgContent(base) = %q, want 5 lines", want)
	}
	for _, tc := range same {
		t.Run(tc.name, func(t *testing.T) {
			got, err := svgContent([]byte(tc.svg))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("svgContent(%s) = %q, want %q", tc.name, got, want)
			}
		})
	}
	for _, tc := range changed {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(base, tc.old) {
				t.Fatalf("base has no %q", tc.old)
			}
			got, err := svgContent([]byte(strings.Replace(base, tc.old, tc.new, 1)))
			if err != nil {
				t.Fatal(err)
			}
			if slices.Equal(got, want) {
				t.Errorf("svgContent does not see a changed %s: %q", tc.name, got)
			}
		})
	}
}
