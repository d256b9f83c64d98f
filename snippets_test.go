package fofi_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The Go code blocks of README.md and of the Markdown pages under docs/
// compile. How each ```go block is checked:
//
//   - On the pages in quotedPages, every block must be a verbatim quote of
//     code in docs/guide, which go test compiles and runs there
//     (TestGuideQuotesCode).
//   - Everywhere else TestGoSnippets compiles it, each block in a package of
//     its own, with go vet (which type-checks it as the compiler does, and
//     vets it) in a scratch module that requires this one, offline.
//
// A block that begins with a package clause is a whole file and compiles as
// it is. Any other block is a fragment. A fragment that uses names it does
// not declare (ctx, a fetch function, a type) gets them from a context
// comment right above its fence, blank lines allowed in between:
//
//	<!-- go-snippet: any text to the end of this line
//	type Page struct{ URL string }
//
//	func example(ctx context.Context, fetch func(context.Context, string) (Page, error)) error {
//		// snippet
//	}
//	-->
//
// The lines between the first line and the line "-->" are Go declarations;
// the block replaces the line "// snippet", or follows them when there is no
// such line. A fragment without a context comment compiles as top-level
// declarations if it parses as them, and otherwise as the body of a
// function without results. The package clause is added, and so is the
// import of every package in snippetImports the code names and does not
// import itself. Errors point at the page's lines (a //line directive).
// Only modules already in go.sum may be used: the check runs offline.

// quotedPages are the pages whose Go blocks quote docs/guide.
var quotedPages = []string{"docs/guide.md", "docs/errors-and-cancellation.md", "docs/ordering.md"}

// snippetImports are the packages a fragment may use without importing
// them, by the name it uses.
var snippetImports = map[string]string{
	"atomic":    "sync/atomic",
	"bufio":     "bufio",
	"context":   "context",
	"errgroup":  "golang.org/x/sync/errgroup",
	"errors":    "errors",
	"fmt":       "fmt",
	"fofi":      "github.com/fofi-go/fofi",
	"http":      "net/http",
	"io":        "io",
	"iter":      "iter",
	"json":      "encoding/json",
	"log":       "log",
	"maps":      "maps",
	"os":        "os",
	"runtime":   "runtime",
	"semaphore": "golang.org/x/sync/semaphore",
	"slices":    "slices",
	"strconv":   "strconv",
	"strings":   "strings",
	"sync":      "sync",
	"time":      "time",
}

// snippetMarker opens a context comment; snippetHere is the line of the
// context that the block replaces.
const (
	snippetMarker = "<!-- go-snippet"
	snippetHere   = "// snippet"
)

// mdBlock is a fenced code block of a Markdown page.
type mdBlock struct {
	lang       string // the first word of the info string: "go", "diff", or ""
	line       int    // the page's line of the block's first line of code, from 1
	code       string // the lines between the fences, less the opening fence's indentation
	context    string // the Go code of the context comment above the block
	hasContext bool
}

// openFence is the opening line of a fenced code block: its indentation,
// its fence (three or more backticks or tildes) and its info string.
var openFence = regexp.MustCompile("^( *)(```+|~~~+)\\s*([^`\\s]*)")

// fencedBlocks returns the fenced code blocks of a Markdown text, indented
// ones (in list items) included, and the lines of the context comments that
// no Go block follows.
func fencedBlocks(text string) (blocks []mdBlock, orphans []int) {
	lines := strings.Split(text, "\n")
	var (
		ctx     string // the pending context comment's code
		ctxLine int    // its first line, 0 if none is pending
	)
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		m := openFence.FindStringSubmatch(line)
		switch {
		case m != nil:
			indent, fence := len(m[1]), m[2]
			b := mdBlock{lang: m[3], line: i + 2}
			var code []string
			for i++; i < len(lines); i++ {
				l := lines[i]
				if t := strings.TrimSpace(l); strings.HasPrefix(t, fence[:1]) &&
					strings.Trim(t, fence[:1]) == "" && len(t) >= len(fence) {
					break
				}
				code = append(code, strings.TrimPrefix(l, strings.Repeat(" ", min(indent, leadingSpaces(l)))))
			}
			b.code = strings.Join(code, "\n")
			if ctxLine != 0 {
				if b.lang == "go" {
					b.context, b.hasContext = ctx, true
				} else {
					orphans = append(orphans, ctxLine)
				}
				ctxLine = 0
			}
			blocks = append(blocks, b)
		case strings.HasPrefix(trimmed, snippetMarker):
			if ctxLine != 0 {
				orphans = append(orphans, ctxLine)
			}
			ctxLine = i + 1
			var code []string
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "-->"; i++ {
				code = append(code, lines[i])
			}
			ctx = strings.Join(code, "\n")
		case trimmed != "" && ctxLine != 0:
			orphans = append(orphans, ctxLine) // text between the comment and the block
			ctxLine = 0
		}
	}
	if ctxLine != 0 {
		orphans = append(orphans, ctxLine)
	}
	return blocks, orphans
}

func leadingSpaces(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }

// snippetSource returns the Go file that compiles block b of page, as the
// convention above says.
func snippetSource(page string, b mdBlock) (string, error) {
	if !b.hasContext && isWholeFile(b.code) {
		return fmt.Sprintf("//line %s:%d\n%s\n", page, b.line, b.code), nil
	}

	// The file is two lines of package clause and imports, then body, where
	// a //line directive before the block's code makes errors point at the
	// page, and one after it gives the lines that follow their own numbers.
	var body []string
	addBlock := func() {
		body = append(body, fmt.Sprintf("//line %s:%d", page, b.line))
		body = append(body, strings.Split(b.code, "\n")...)
		body = append(body, fmt.Sprintf("//line snippet.go:%d", 2+len(body)+2))
	}
	switch {
	case b.hasContext && containsLine(b.context, snippetHere):
		before, after := splitAtLine(b.context, snippetHere)
		body = append(body, before...)
		addBlock()
		body = append(body, after...)
	case b.hasContext:
		body = append(body, strings.Split(b.context, "\n")...)
		addBlock()
	case parses("package p\n" + b.code):
		addBlock()
	default:
		body = append(body, "func _() {")
		addBlock()
		body = append(body, "}")
	}
	src := strings.Join(body, "\n") + "\n"

	f, err := parser.ParseFile(token.NewFileSet(), "snippet.go", "package snippet\n\n"+src, parser.SkipObjectResolution)
	if err != nil {
		return "", err
	}
	var imports []string
	for _, name := range missingImports(f) {
		imports = append(imports, strconv.Quote(snippetImports[name]))
	}
	header := "package snippet\n\n"
	if len(imports) > 0 {
		header = "package snippet\nimport (" + strings.Join(imports, "; ") + ")\n"
	}
	return header + src, nil
}

// isWholeFile reports whether code begins with a package clause.
func isWholeFile(code string) bool {
	_, err := parser.ParseFile(token.NewFileSet(), "", code, parser.PackageClauseOnly)
	return err == nil
}

func parses(src string) bool {
	_, err := parser.ParseFile(token.NewFileSet(), "", src, parser.SkipObjectResolution)
	return err == nil
}

func containsLine(text, line string) bool {
	return slices.ContainsFunc(strings.Split(text, "\n"), func(l string) bool { return strings.TrimSpace(l) == line })
}

// splitAtLine returns the lines of text before and after its first line
// that is line, less indentation.
func splitAtLine(text, line string) (before, after []string) {
	ls := strings.Split(text, "\n")
	i := slices.IndexFunc(ls, func(l string) bool { return strings.TrimSpace(l) == line })
	return ls[:i], ls[i+1:]
}

// missingImports returns, sorted, the names of snippetImports that f uses as
// the package of a selector (fofi.Run) but neither imports nor declares.
func missingImports(f *ast.File) []string {
	have := map[string]bool{}
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		name := path[strings.LastIndex(path, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		have[name] = true
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			have[d.Name.Name] = true
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.ValueSpec:
					for _, n := range s.Names {
						have[n.Name] = true
					}
				case *ast.TypeSpec:
					have[s.Name.Name] = true
				}
			}
		}
	}
	var missing []string
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && !have[id.Name] && snippetImports[id.Name] != "" &&
				!slices.Contains(missing, id.Name) {
				missing = append(missing, id.Name)
			}
		}
		return true
	})
	slices.Sort(missing)
	return missing
}

// TestGoSnippets compiles the Go blocks of README.md and docs/, as the
// convention at the top of this file says.
func TestGoSnippets(t *testing.T) {
	var files []snippetFile
	for _, page := range markdownPages(t) {
		blocks, orphans := fencedBlocks(readFile(t, page))
		for _, line := range orphans {
			t.Errorf("%s:%d: a %s comment that no ```go block follows", page, line, snippetMarker)
		}
		for _, b := range blocks {
			if b.lang != "go" || slices.Contains(quotedPages, page) && !b.hasContext {
				continue
			}
			src, err := snippetSource(page, b)
			if err != nil {
				t.Errorf("%s:%d: %v", page, b.line, err)
				continue
			}
			files = append(files, snippetFile{page, b.line, src})
		}
	}
	if len(files) == 0 {
		t.Fatal("no ```go block outside the pages that quote docs/guide: the page list is wrong")
	}
	if out, err := vetSnippets(t, files); err != nil {
		t.Errorf("Go blocks of the docs do not compile (go vet: %v); for a fragment, give it a %s comment as snippets_test.go says:\n%s",
			err, snippetMarker, out)
	}
}

// snippetFile is the Go file made of the block at page:line.
type snippetFile struct {
	page string
	line int
	src  string
}

// markdownPages returns README.md and the Markdown pages under docs/.
func markdownPages(t *testing.T) []string {
	t.Helper()
	pages := []string{"README.md"}
	err := filepath.WalkDir("docs", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			pages = append(pages, filepath.ToSlash(path))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return pages
}

// vetSnippets writes files, each into a package of its own, in a scratch
// module that requires this one (by a replace directive) and what it
// requires, and runs go vet over them, offline. It returns go vet's output.
func vetSnippets(t *testing.T, files []snippetFile) (string, error) {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to compile the snippets with: %v", err)
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mod := readFile(t, "go.mod")
	if !strings.HasPrefix(mod, "module github.com/fofi-go/fofi\n") {
		t.Fatalf("go.mod does not begin with this module's path:\n%s", mod)
	}
	mod = "module fofisnippets\n" + strings.TrimPrefix(mod, "module github.com/fofi-go/fofi\n") +
		"\nrequire github.com/fofi-go/fofi v0.0.0-00010101000000-000000000000\n" +
		"\nreplace github.com/fofi-go/fofi => " + strconv.Quote(root) + "\n"
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "go.mod"), mod)
	write(filepath.Join(dir, "go.sum"), readFile(t, "go.sum"))
	nonIdent := regexp.MustCompile(`[^a-z0-9]+`)
	var pkgs []string
	for _, f := range files {
		pkg := fmt.Sprintf("%s_%d", nonIdent.ReplaceAllString(strings.ToLower(f.page), "_"), f.line)
		write(filepath.Join(dir, pkg, "snippet.go"), f.src)
		// The page as go vet names it (relative to the package or to the
		// module), and as it is.
		pkgs = append(pkgs, pkg+"/"+f.page, f.page, filepath.Join(dir, f.page), f.page)
	}

	cmd := exec.Command(goCmd, "vet", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GOFLAGS=-mod=mod -buildvcs=false", // go.sum has every module; no network
		"GOPROXY=off",
		"GOWORK=off",
		"GOTOOLCHAIN=local", // the go command that runs the tests
	)
	out, err := cmd.CombinedOutput()
	return strings.NewReplacer(pkgs...).Replace(string(out)), err
}

// TestFencedBlocks keeps the block extraction honest: a block it misses is
// a block nobody compiles.
func TestFencedBlocks(t *testing.T) {
	ctxComment := snippetMarker + ": the context\nvar ctx context.Context\n-->\n"
	tests := []struct {
		name    string
		text    string
		want    []mdBlock
		orphans []int
	}{
		{"plain", "text\n```go\nx := 1\n```\n", []mdBlock{{lang: "go", line: 3, code: "x := 1"}}, nil},
		{"tildes and info", "~~~go title\na\n~~~\n````go\nb\n```\n````\n",
			[]mdBlock{{lang: "go", line: 2, code: "a"}, {lang: "go", line: 5, code: "b\n```"}}, nil},
		{"other languages", "```\n$ go test\n```\n```diff\n-a\n```\n",
			[]mdBlock{{line: 2, code: "$ go test"}, {lang: "diff", line: 5, code: "-a"}}, nil},
		{"in a list item", "1. step\n\n   ```go\n   if ok {\n   \tx()\n   }\n   ```\n",
			[]mdBlock{{lang: "go", line: 4, code: "if ok {\n\tx()\n}"}}, nil},
		{"context", ctxComment + "\n```go\nf(ctx)\n```\n",
			[]mdBlock{{lang: "go", line: 6, code: "f(ctx)", context: "var ctx context.Context", hasContext: true}}, nil},
		{"context in a table cell", "<tr><td>\n\n" + ctxComment + "```go\nf(ctx)\n```\n\n</td>",
			[]mdBlock{{lang: "go", line: 7, code: "f(ctx)", context: "var ctx context.Context", hasContext: true}}, nil},
		{"context before text", ctxComment + "some text\n```go\nf(ctx)\n```\n",
			[]mdBlock{{lang: "go", line: 6, code: "f(ctx)"}}, []int{1}},
		{"context before another language", ctxComment + "```sh\nls\n```\n",
			[]mdBlock{{lang: "sh", line: 5, code: "ls"}}, []int{1}},
		{"context at the end", "a\n" + ctxComment, nil, []int{2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, orphans := fencedBlocks(tc.text)
			if !slices.Equal(got, tc.want) || !slices.Equal(orphans, tc.orphans) {
				t.Errorf("fencedBlocks(%q) = %+v, orphans %v; want %+v, orphans %v", tc.text, got, orphans, tc.want, tc.orphans)
			}
		})
	}
}

// TestGoSnippetsFailWhenBroken checks that a block that does not compile
// fails TestGoSnippets, with an error at its line of the page, whichever way
// it is compiled, and that a good block beside it does not.
func TestGoSnippetsFailWhenBroken(t *testing.T) {
	page := strings.Join([]string{
		"# broken.md",
		"```go",
		"x := 1 // fragment, no context: declared and not used",
		"```",
		"```go",
		"fofi.Run(ctx, nil, nil, nil) // fragment: undefined ctx",
		"```",
		snippetMarker + ": a context",
		"func f(ctx context.Context) error {",
		"\t// snippet",
		"}",
		"-->",
		"```go",
		"var n int",
		"return fmt.Errorf(\"%d\", n, ctx) // in the context: a vet failure",
		"```",
		snippetMarker + ": a context with no snippet line",
		"type T struct{}",
		"-->",
		"```go",
		"func (T) String() int { return 0 }",
		"var _ fmt.Stringer = T{} // T's String returns an int",
		"```",
		"```go",
		"package main",
		"",
		"func main() { undefinedFunc() }",
		"```",
		"```go",
		"// A good block: it compiles.",
		"func good() string { return fmt.Sprint(fofi.ErrClosed, time.Second) }",
		"```",
	}, "\n")
	want := []string{
		"broken.md:3: declared and not used: x",
		"broken.md:6: undefined: ctx",
		"broken.md:15:", // fmt.Errorf call needs 1 arg but has 2 args
		"broken.md:22:", // T does not implement fmt.Stringer
		"broken.md:27: undefined: undefinedFunc",
	}
	blocks, orphans := fencedBlocks(page)
	if len(orphans) > 0 {
		t.Fatalf("orphan context comments at lines %v", orphans)
	}
	var files []snippetFile
	for _, b := range blocks {
		src, err := snippetSource("broken.md", b)
		if err != nil {
			t.Fatalf("broken.md:%d: %v", b.line, err)
		}
		files = append(files, snippetFile{"broken.md", b.line, src})
	}
	out, err := vetSnippets(t, files)
	if err == nil {
		t.Fatalf("go vet passed blocks that do not compile:\n%s", out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("go vet's output has no %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "broken.md:31") || strings.Contains(out, "broken_md_30") {
		t.Errorf("go vet failed the good block:\n%s", out)
	}
}
