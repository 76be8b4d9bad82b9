package pam_test

// TestREADMESnippets compiles every ```go block of README.md and checks that
// it is gofmt-clean, so that the README's code stays true to the API.
//
// The convention, for whoever adds a snippet to README.md:
//
//   - A block that starts with a package clause is a complete file and is
//     compiled as it is, as a package of its own.
//   - Any other block is a fragment: a list of statements. It must follow a
//     marker line, right before its opening fence, that declares the names
//     it uses without defining them:
//
//     <!-- go fragment: ctx context.Context; password []byte -->
//
//     (";" separates the declarations; "<!-- go fragment -->" declares
//     none). The test puts the declarations at package level and the
//     statements in the body of a function returning error, so a fragment
//     may "return err", and adds the imports of the packages it names
//     (the table stdImports below, and the gopam packages); a package it
//     names that the table lacks must be added there.
//   - A block in another language is not a Go block: fence it as ```sh,
//     ``` or anything but ```go.
//
// Every block must be gofmt-clean as written (a fragment as a statement
// list).

import (
	"bytes"
	"fmt"
	"go/format"
	"go/scanner"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// stdImports are the packages a README fragment may name, by name.
var stdImports = map[string]string{
	"pam": "github.com/gopam/pam", "pamtest": "github.com/gopam/pam/pamtest",
	"context": "context", "errors": "errors", "fmt": "fmt", "http": "net/http", "io": "io",
	"log": "log", "net": "net", "os": "os", "strings": "strings", "sync": "sync",
	"testing": "testing", "time": "time", "bytes": "bytes", "slog": "log/slog",
}

// readmeBlock is one ```go block of the README.
type readmeBlock struct {
	line     int    // of the opening fence
	code     string // the block's text
	fragment bool
	decls    []string // a fragment's declarations
}

var fragmentMarker = regexp.MustCompile(`^<!--\s*go fragment\s*(?::(.*?))?\s*-->\s*$`)

func readmeBlocks(t *testing.T, text string) []readmeBlock {
	t.Helper()
	var blocks []readmeBlock
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```go" {
			continue
		}
		b := readmeBlock{line: i + 1}
		if i > 0 {
			if m := fragmentMarker.FindStringSubmatch(strings.TrimSpace(lines[i-1])); m != nil {
				b.fragment = true
				for _, d := range strings.Split(m[1], ";") {
					if d = strings.TrimSpace(d); d != "" {
						b.decls = append(b.decls, d)
					}
				}
			}
		}
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) != "```" {
			j++
		}
		if j == len(lines) {
			t.Fatalf("README.md:%d: the ```go block is never closed", b.line)
		}
		b.code = strings.Join(lines[i+1:j], "\n") + "\n"
		blocks = append(blocks, b)
		i = j
	}
	return blocks
}

// namedPackages returns the names before a "." in src that stdImports
// knows, comments and strings aside.
func namedPackages(src string) []string {
	var s scanner.Scanner
	fset := token.NewFileSet()
	file := fset.AddFile("", fset.Base(), len(src))
	s.Init(file, []byte(src), nil, 0)
	seen := map[string]bool{}
	prevIdent, prevDot := "", false
	for {
		_, tok, lit := s.Scan()
		if tok == token.EOF {
			break
		}
		if tok == token.PERIOD {
			if prevIdent != "" && !prevDot {
				if _, ok := stdImports[prevIdent]; ok {
					seen[prevIdent] = true
				}
			}
			prevDot = true
			prevIdent = ""
			continue
		}
		if tok == token.IDENT {
			if prevDot {
				prevIdent = "" // a selector's field, not a package
			} else {
				prevIdent = lit
			}
		} else {
			prevIdent = ""
		}
		prevDot = false
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// fragmentFile wraps a fragment into a file of package pkg.
func fragmentFile(pkg string, b readmeBlock) string {
	var f strings.Builder
	fmt.Fprintf(&f, "package %s\n\nimport (\n", pkg)
	for _, n := range namedPackages(b.code + "\n" + strings.Join(b.decls, "\n")) {
		fmt.Fprintf(&f, "\t%q\n", stdImports[n])
	}
	f.WriteString(")\n\nvar (\n")
	for _, d := range b.decls {
		fmt.Fprintf(&f, "\t%s\n", d)
	}
	// The line directive makes compile errors point into README.md.
	fmt.Fprintf(&f, ")\n\nfunc _() error {\n//line README.md:%d\n%s\treturn nil\n}\n", b.line+1, b.code)
	return f.String()
}

func TestREADMESnippets(t *testing.T) {
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t, string(text))
	if len(blocks) == 0 {
		t.Fatal("README.md has no ```go block")
	}
	goMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go \S+$`).Find(goMod)

	mod := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(mod, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", fmt.Sprintf("module readme\n\n%s\n\nrequire github.com/gopam/pam v0.0.0\n\nreplace github.com/gopam/pam => %s\n", goLine, root))
	if sum, err := os.ReadFile(filepath.Join(root, "go.sum")); err == nil {
		write("go.sum", string(sum))
	}
	for i, b := range blocks {
		pkg := fmt.Sprintf("b%02d", i)
		switch {
		case strings.HasPrefix(strings.TrimSpace(b.code), "package "):
			if got, err := format.Source([]byte(b.code)); err != nil || !bytes.Equal(got, []byte(b.code)) {
				t.Errorf("README.md:%d: the file is not gofmt-clean (%v); gofmt makes it:\n%s", b.line, err, got)
			}
			write(filepath.Join(pkg, "main.go"), b.code)
		case b.fragment:
			if got, err := format.Source([]byte(b.code)); err != nil || !bytes.Equal(got, []byte(b.code)) {
				t.Errorf("README.md:%d: the fragment is not gofmt-clean (%v); gofmt makes it:\n%s", b.line, err, got)
			}
			write(filepath.Join(pkg, "fragment.go"), fragmentFile(pkg, b))
		default:
			t.Errorf("README.md:%d: a ```go block that is neither a complete file nor marked as a fragment (see readme_test.go)", b.line)
		}
	}
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goCmd); err != nil {
		if goCmd, err = exec.LookPath("go"); err != nil {
			t.Fatal("the go command is needed to compile the README's snippets")
		}
	}
	cmd := exec.Command(goCmd, "build", "-mod=mod", "-o", os.DevNull, "./...")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("the README's snippets do not compile: %v\n%s", err, out)
	}
}
