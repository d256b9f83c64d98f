package fofi_test

import (
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDocsLinks checks that every relative link and image in README.md and
// in the Markdown pages under docs/ points to a file or directory that
// exists. Anchors (#...) and queries are stripped; http(s) and mailto links
// and links within the page (#anchor) are not checked.
func TestDocsLinks(t *testing.T) {
	pages := []string{"README.md"}
	err := filepath.WalkDir("docs", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			pages = append(pages, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range pages {
		t.Run(page, func(t *testing.T) {
			links := markdownLinks(readFile(t, page))
			for _, link := range links {
				target, ok := localTarget(link)
				if !ok {
					continue
				}
				path := filepath.Join(filepath.Dir(page), filepath.FromSlash(target))
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s links to %q: %s does not exist", page, link, path)
				}
			}
		})
	}
}

var (
	// fence opens or closes a fenced code block, indented or not.
	fence = regexp.MustCompile("^\\s*(```|~~~)")
	// codeSpan is an inline code span, whose text is not Markdown.
	codeSpan = regexp.MustCompile("`+[^`]*`+")
	// inlineLink is [text](target "title") or ![alt](target), text
	// possibly holding one level of brackets.
	inlineLink = regexp.MustCompile(`\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	// refLink is a reference definition: [label]: target.
	refLink = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)`)
	// htmlLink is the href or src of an HTML tag.
	htmlLink = regexp.MustCompile(`(?i)<[a-z]+\s[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']`)
)

// markdownLinks returns the targets of the links and images in a Markdown
// text, outside code blocks and code spans.
func markdownLinks(text string) []string {
	var links []string
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		if fence.MatchString(line) {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		line = codeSpan.ReplaceAllString(line, "")
		for _, re := range []*regexp.Regexp{inlineLink, refLink, htmlLink} {
			for _, m := range re.FindAllStringSubmatch(line, -1) {
				links = append(links, m[1])
			}
		}
	}
	return links
}

// localTarget returns the file part of a link to a file of the repository,
// and false for an external link or a link within the page.
func localTarget(link string) (string, bool) {
	if i := strings.IndexAny(link, "#?"); i >= 0 {
		link = link[:i]
	}
	lower := strings.ToLower(link)
	if link == "" || strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") ||
		strings.HasPrefix(lower, "mailto:") {
		return "", false
	}
	if p, err := url.PathUnescape(link); err == nil {
		link = p
	}
	return link, true
}

// TestMarkdownLinks keeps the link extraction above honest: a checker that
// finds no link passes every page.
func TestMarkdownLinks(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string // local targets
	}{
		{"inline", "see [the guide](docs/guide.md) and [x](a/b.md#part)", []string{"docs/guide.md", "a/b.md"}},
		{"image", "![flow](img/flow.svg \"title\")", []string{"img/flow.svg"}},
		{"code in text", "[`*fofi.PanicError`](errors.md)", []string{"errors.md"}},
		{"nested brackets", "[a [b] c](x.md)", []string{"x.md"}},
		{"reference", "[label]: ../README.md", []string{"../README.md"}},
		{"html", `<img src="img/a.svg" alt="a"> <a href="b.md#c">b</a>`, []string{"img/a.svg", "b.md"}},
		{"escaped", "[a](my%20file.md)", []string{"my file.md"}},
		{"external and anchors", "[a](https://x.y/z.md) [b](mailto:a@b.c) [c](#here) [d](HTTP://X)", nil},
		{"fenced code", "```go\nx := m[k](v)\n```\n~~~\n[a](no.md)\n~~~\n  ```diff\n  [b](no.md)\n  ```\n[c](yes.md)", []string{"yes.md"}},
		{"code span", "`f[i](x)` and [real](yes.md)", []string{"yes.md"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, l := range markdownLinks(tc.text) {
				if target, ok := localTarget(l); ok {
					got = append(got, target)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("links in %q = %q, want %q", tc.text, got, tc.want)
			}
		})
	}
}

// TestGuideQuotesCode checks that the Go code the docs pages show is the
// code that docs/guide compiles and tests: every ```go block of the pages in
// quotedPages must appear verbatim in a .go file of docs/guide, unless it
// has a go-snippet context comment, which makes TestGoSnippets compile it.
func TestGuideQuotesCode(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("docs", "guide", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in docs/guide: %v", err)
	}
	var code strings.Builder
	for _, f := range files {
		code.WriteString(readFile(t, f))
		code.WriteString("\n")
	}
	for _, page := range quotedPages {
		t.Run(page, func(t *testing.T) {
			blocks, _ := fencedBlocks(readFile(t, page))
			quoted := 0
			for _, b := range blocks {
				if b.lang != "go" || b.hasContext {
					continue
				}
				quoted++
				if !strings.Contains(code.String(), b.code) {
					t.Errorf("%s:%d quotes code that is in no file of docs/guide:\n%s", page, b.line, b.code)
				}
			}
			if quoted == 0 {
				t.Fatalf("%s has no ```go block quoting docs/guide", page)
			}
		})
	}
}
