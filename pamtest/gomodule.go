package pamtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// GoModule is a PAM module written in Go with package
// github.com/gopam/pam/module, built by BuildGoModule in each of its forms.
// Every path is absolute and private to the test.
type GoModule struct {
	// InProcess is the c-shared library (the in-process mode), with the
	// helper installed beside it as NAME-helper, so that calls after a
	// fork or inside a Go host run there.
	InProcess string
	// Isolated is the C shim built from package module's gopam_shim.c (the
	// isolated mode), with the helper beside it.
	Isolated string
	// Bare is the c-shared library alone, without a helper: where it
	// cannot run in-process it refuses the call with PAM_SYSTEM_ERR.
	Bare string
	// Helper is the helper executable.
	Helper string
}

// goBuild is one cached build of a Go module's three objects.
type goBuild struct {
	once               sync.Once
	shared, helper, cs []byte
	err                error
}

var goBuilds sync.Map

// BuildGoModule builds the main package in dir, a PAM module written with
// package module, the way its documentation says: "go build
// -buildmode=c-shared" for the in-process library, "go build" for the
// helper, and cc for the shim. name is the module's file name without
// ".so" (such as "pam_hashfile"). The builds run once per test binary
// process; each test gets private copies. A missing go command, compiler
// or PAM header fails the test with the package to install.
func BuildGoModule(t testing.TB, dir, name string) GoModule {
	t.Helper()
	if name == "" || strings.ContainsAny(name, "/\x00") {
		t.Fatalf("pamtest: module name %q must be a plain file name", name)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatalf("pamtest: %v", err)
	}
	v, _ := goBuilds.LoadOrStore(abs, new(goBuild))
	b := v.(*goBuild)
	b.once.Do(func() { b.shared, b.helper, b.cs, b.err = buildGoModule(abs) })
	if b.err != nil {
		t.Fatalf("%v", b.err)
	}
	root := t.TempDir()
	var m GoModule
	for _, f := range []struct {
		dir, file string
		bin       []byte
		out       *string
	}{
		{"in", name + ".so", b.shared, &m.InProcess},
		{"in", name + "-helper", b.helper, &m.Helper},
		{"iso", name + ".so", b.cs, &m.Isolated},
		{"iso", name + "-helper", b.helper, nil},
		{"bare", name + ".so", b.shared, &m.Bare},
	} {
		d := filepath.Join(root, f.dir)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("pamtest: %v", err)
		}
		p := filepath.Join(d, f.file)
		if err := writeExecutable(p, f.bin); err != nil {
			t.Fatalf("pamtest: %v", err)
		}
		if f.out != nil {
			*f.out = p
		}
	}
	return m
}

// buildGoModule runs the three builds in a scratch directory.
func buildGoModule(dir string) (shared, helper, shim []byte, err error) {
	goCmd, err := lookProgram("go", "golang-go")
	if err != nil {
		return nil, nil, nil, err
	}
	tmp, err := os.MkdirTemp("", "pamtest-gomodule-")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("pamtest: %v", err)
	}
	defer os.RemoveAll(tmp)
	run := func(env []string, args ...string) error {
		cmd := exec.Command(goCmd, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("pamtest: go %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out)
		}
		return nil
	}
	so := filepath.Join(tmp, "m.so")
	if err := run([]string{"CGO_ENABLED=1"}, "build", "-buildmode=c-shared", "-o", so, "."); err != nil {
		return nil, nil, nil, err
	}
	exe := filepath.Join(tmp, "helper")
	if err := run([]string{"CGO_ENABLED=0"}, "build", "-o", exe, "."); err != nil {
		return nil, nil, nil, err
	}
	if shared, err = os.ReadFile(so); err == nil {
		helper, err = os.ReadFile(exe)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("pamtest: %v", err)
	}
	// The shim is package module's gopam_shim.c, found the way the
	// documented build command finds it.
	cmd := exec.Command(goCmd, "list", "-f", "{{.Dir}}", "github.com/gopam/pam/module")
	cmd.Dir = dir
	moddir, err := cmd.Output()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("pamtest: go list github.com/gopam/pam/module (in %s): %v", dir, err)
	}
	src := filepath.Join(strings.TrimSpace(string(moddir)), "gopam_shim.c")
	csource, err := os.ReadFile(src)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("pamtest: %v", err)
	}
	cc, err := compiler()
	if err != nil {
		return nil, nil, nil, err
	}
	flags := append(append([]string{}, cc[1:]...), "-Wall", "-Werror", "-O2", "-shared", "-fPIC")
	shim, err = runCompiler(cc[0], flags, string(csource), []string{"-I" + filepath.Dir(src)})
	return shared, helper, shim, err
}

// Mode is one way of installing a GoModule: its name ("in-process" or
// "isolated") and the path of the object to name in a service file.
type Mode struct{ Name, Path string }

// Modes returns the in-process and the isolated mode, for tests that run
// a module both ways.
func (m GoModule) Modes() []Mode {
	return []Mode{{"in-process", m.InProcess}, {"isolated", m.Isolated}}
}
