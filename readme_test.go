package fofi_test

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeQuickStart keeps the README's quick start honest: the body of
// its main function is the body of Example, which runs and whose output is
// checked, with the same lines in the same order.
func TestReadmeQuickStart(t *testing.T) {
	readme := readFile(t, "README.md")
	_, block, ok := strings.Cut(readme, "<!-- quickstart")
	if !ok {
		t.Fatal("README.md has no <!-- quickstart --> marker")
	}
	block = between(t, block, "func main() {\n", "\n}\n")

	example := readFile(t, "example_test.go")
	body := between(t, example, "func Example() {\n", "\n}\n")
	body, _, _ = strings.Cut(body, "\n\t// Output:")

	if got, want := dedent(block), dedent(body); got != want {
		t.Errorf("README quick start differs from Example in example_test.go:\n--- README\n%s\n--- Example\n%s", got, want)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func between(t *testing.T, s, start, end string) string {
	t.Helper()
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		t.Fatalf("%q not found", start)
	}
	mid, _, ok := strings.Cut(rest, end)
	if !ok {
		t.Fatalf("%q not found after %q", end, start)
	}
	return mid
}

func dedent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, "\n")
}
