package pamtest

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/gopam/pam/internal/libpam"
)

// CompileModule compiles a PAM module written in C and returns the absolute
// path of the shared object, named name (".so" is appended when missing) in
// a directory from t.TempDir. The source is built with
// "cc -shared -fPIC -Wall -Werror -O2 ... -lpam", so it must compile without
// warnings; $CC, if set, replaces cc. When the loaded libpam is an OpenPAM
// with headers beside it (GOPAM_LIBPAM naming PREFIX/lib/libpam.so.2), the
// source is compiled against PREFIX/include and linked to that libpam.
//
// Each distinct source is compiled once per test binary process, even when
// many tests, possibly in parallel, ask for it; later calls copy the cached
// object, so every test gets a private file that is removed with its
// temporary directory. A missing compiler fails the test naming Debian
// package gcc, a missing <security/...> header or libpam.so naming
// libpam0g-dev, and any other compiler error shows the compiler's output.
func CompileModule(t testing.TB, name, csource string) string {
	t.Helper()
	return compileInto(t, t.TempDir(), name, ".so", csource, true, nil)
}

// Module compiles a PAM module like CompileModule but puts the shared
// object in the stack's own temporary area, beside the configuration and
// data directories, and returns its absolute path.
func (s *Stack) Module(name, csource string) string {
	s.t.Helper()
	dir := filepath.Join(s.root, "lib")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Fatalf("pamtest: %v", err)
	}
	return compileInto(s.t, dir, name, ".so", csource, true, nil)
}

// CompileProgram compiles a C program, typically a small PAM application
// used as a test host, and returns the absolute path of the executable,
// named name in a directory from t.TempDir. The source is built with
// "cc -Wall -Werror -O2 -o name source.c args... -lpam", so args can add
// flags such as "-fsanitize=address" or more libraries. Caching and failure
// reporting are those of CompileModule.
func CompileProgram(t testing.TB, name, csource string, args ...string) string {
	t.Helper()
	return compileInto(t, t.TempDir(), name, "", csource, false, args)
}

// compileInto builds the source (or takes it from the cache) and writes the
// result to dir/name+suffix.
func compileInto(t testing.TB, dir, name, suffix, csource string, shared bool, args []string) string {
	t.Helper()
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		t.Fatalf("pamtest: output name %q must be a plain file name", name)
	}
	if !strings.HasSuffix(name, suffix) {
		name += suffix
	}
	bin, err := compileCached(csource, shared, args)
	if err != nil {
		t.Fatalf("%v", err)
	}
	p := filepath.Join(dir, name)
	if err := writeExecutable(p, bin); err != nil {
		t.Fatalf("pamtest: %v", err)
	}
	return p
}

// writeExecutable writes an executable file while holding
// syscall.ForkLock, so that no process started meanwhile by another
// goroutine inherits the open file; such a child would make running the
// file fail with ETXTBSY until it calls exec.
func writeExecutable(path string, content []byte) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	if err := os.WriteFile(path, content, 0o755); err != nil {
		return err
	}
	// WriteFile leaves an existing file's mode alone.
	return os.Chmod(path, 0o755)
}

// build is one cached compilation; once guards the fields.
type build struct {
	once sync.Once
	bin  []byte
	err  error
}

// builds maps a hash of compiler, flags and source to its *build.
var builds sync.Map

// compileCached returns the compiled bytes for the source, compiling it on
// first use. Failures are cached too, so that every test asking for a broken
// source reports the same error without recompiling.
func compileCached(csource string, shared bool, args []string) ([]byte, error) {
	cc, err := compiler()
	if err != nil {
		return nil, err
	}
	flags := []string{"-Wall", "-Werror", "-O2"}
	if l, err := libpam.Load(); err == nil {
		// OpenPAM in a private prefix: its headers and its libpam.
		flags = append(flags, l.BuildFlags()...)
	}
	if shared {
		flags = append(flags, "-shared", "-fPIC")
	}
	argv := append(append([]string{}, cc[1:]...), flags...)

	h := sha256.New()
	for _, s := range append(append([]string{cc[0]}, argv...), args...) {
		fmt.Fprintf(h, "%d:%s;", len(s), s)
	}
	h.Write([]byte(csource))
	var key [sha256.Size]byte
	h.Sum(key[:0])

	v, _ := builds.LoadOrStore(key, new(build))
	b := v.(*build)
	b.once.Do(func() { b.bin, b.err = runCompiler(cc[0], argv, csource, args) })
	return b.bin, b.err
}

// compiler returns the C compiler command: $CC split into fields, or cc.
func compiler() ([]string, error) {
	cc := strings.Fields(os.Getenv("CC"))
	if len(cc) == 0 {
		cc = []string{"cc"}
	}
	p, err := lookProgram(cc[0], "gcc")
	if err != nil {
		return nil, err
	}
	cc[0] = p
	return cc, nil
}

// missingHeader matches the compiler's complaint about an absent PAM header,
// in gcc's and clang's wording.
var missingHeader = regexp.MustCompile(`(security/_?pam_[A-Za-z0-9_]+\.h)'?:? *(No such file|file not found)`)

// runCompiler compiles the source in a scratch directory and returns the
// output file's bytes.
func runCompiler(cc string, flags []string, csource string, args []string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "pamtest-cc-")
	if err != nil {
		return nil, fmt.Errorf("pamtest: %v", err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "source.c")
	out := filepath.Join(dir, "out")
	if err := os.WriteFile(src, []byte(csource), 0o644); err != nil {
		return nil, fmt.Errorf("pamtest: %v", err)
	}

	argv := append(append(append([]string{}, flags...), "-o", out, src), args...)
	argv = append(argv, "-lpam")
	cmd := exec.Command(cc, argv...)
	cmd.Dir = dir
	msg, err := cmd.CombinedOutput()
	if err != nil {
		if m := missingHeader.FindSubmatch(msg); m != nil {
			return nil, &MissingError{What: "header <" + string(m[1]) + ">", Package: "libpam0g-dev"}
		}
		if strings.Contains(string(msg), "cannot find -lpam") {
			return nil, &MissingError{What: "library libpam.so for -lpam", Package: "libpam0g-dev"}
		}
		return nil, fmt.Errorf("pamtest: %s %s: %v\n%s", cc, strings.Join(argv, " "), err, msg)
	}
	return os.ReadFile(out)
}
