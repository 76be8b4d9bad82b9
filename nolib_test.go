package pam_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/libpam"
	"github.com/gopam/pam/pamtest"
)

// TestWithoutLibpam builds a program with CGO_ENABLED=0 and runs it where
// libpam cannot be loaded, then where it can.
func TestWithoutLibpam(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "nolib")
	build := exec.Command("go", "build", "-o", bin, "./testdata/nolib")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 build: %v\n%s", err, out)
	}
	st := pamtest.New(t)
	st.Service("nolib", "auth required pam_permit.so")

	run := func(env ...string) string {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), append(env, "NOLIB_CONFDIR="+st.Dir())...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", env, err, out)
		}
		return string(out)
	}
	out := run(libpam.EnvLibrary + "=/nonexistent/libpam.so.0")
	for _, want := range []string{"implementation: unknown", "extensions: 0", "not supported: true",
		"cannot load libpam", "/nonexistent/libpam.so.0", "still running"} {
		if !strings.Contains(out, want) {
			t.Errorf("without libpam, output lacks %q:\n%s", want, out)
		}
	}
	out = run()
	for _, want := range []string{"implementation: " + pam.Implementation(), "not supported: false", "authenticate: <nil>", "still running"} {
		if !strings.Contains(out, want) {
			t.Errorf("with libpam, output lacks %q:\n%s", want, out)
		}
	}
}
