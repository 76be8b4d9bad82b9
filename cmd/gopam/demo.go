package main

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/esc"
)

// The demo's service name and password. Both are documented in help.txt and
// the README.
const (
	demoService  = "demo-login"
	demoPassword = "gopam-demo"
)

//go:embed demo
var demoFiles embed.FS

// demoModules are the modules the demo stack names.
var demoModules = []string{"pam_exec.so", "pam_deny.so", "pam_permit.so", "pam_env.so", "pam_echo.so"}

// runDemo writes the embedded stack to a temporary directory and runs a
// whole login against it.
func runDemo(o *options, stdin *os.File, stdout, stderr io.Writer) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "gopam demo: %s\n", oneLine(fmt.Sprintf(format, args...)))
		return exitFailure
	}
	mods, err := moduleDir(o.moduleDir)
	if err != nil {
		return fail("%v", err)
	}
	if !o.userSet {
		o.user = currentUser()
	}
	dir, err := os.MkdirTemp("", "gopam-demo-")
	if err != nil {
		return fail("%v", err)
	}
	atExit(func() { os.RemoveAll(dir) })
	defer runCleanups()
	if strings.ContainsAny(dir+mods, " \t\n") {
		return fail("the paths %q and %q must not contain white space, which PAM configuration files cannot hold (set TMPDIR or --module-dir)", dir, mods)
	}
	stack, err := writeDemo(dir, mods)
	if err != nil {
		return fail("writing the stack: %v", err)
	}

	o.service, o.pamUser, o.confDir = demoService, o.user, filepath.Join(dir, "pam.d")
	o.ops = nil
	for _, spec := range []string{"authenticate", "acct_mgmt", "setcred(PAM_ESTABLISH_CRED)", "open_session", "close_session"} {
		op, err := parseOperation(spec)
		if err != nil {
			panic(err) // the list above is fixed
		}
		o.ops = append(o.ops, op)
	}

	t := newTransaction(o, "demo", stdin, stdout, stderr)
	human := !o.json
	if human {
		fmt.Fprintf(stdout, "gopam demo: PAM stack %q written to %s (removed on exit)\n", demoService, o.confDir)
		fmt.Fprintf(stdout, "gopam demo: logging in as %s; the demo password is %q\n", esc.Quote(o.user), demoPassword)
	}
	if o.verbose {
		fmt.Fprintf(stderr, "gopam demo: %s:\n%s", filepath.Join(o.confDir, demoService), stack)
	}
	t.afterOp = func(op operation, h *pam.Handle) {
		if !human || op.name != "open_session" {
			return
		}
		env, err := t.env(h)
		if err != nil {
			fmt.Fprintf(stderr, "gopam demo: reading the PAM environment: %v\n", err)
			return
		}
		fmt.Fprintln(stdout, "gopam demo: the PAM environment of the session:")
		t.printEnv(env, "    ")
	}
	t.onFailure = func(op operation, err error) {
		if !human {
			return
		}
		if hint(err) != "" {
			fmt.Fprintf(stderr, "gopam demo: login failed: no password was given (run it on a terminal, or add --answer %s)\n", demoPassword)
			return
		}
		if errors.Is(err, pam.ErrAuth) {
			fmt.Fprintf(stderr, "gopam demo: login failed: wrong password (the demo password is %q)\n", demoPassword)
			return
		}
		fmt.Fprintf(stderr, "gopam demo: login failed at %s\n", op.name)
	}
	status := t.run()
	if status == exitOK && human {
		fmt.Fprintln(stdout, "gopam demo: login complete")
	}
	return status
}

// writeDemo writes the embedded stack under dir with the module directory
// mods and returns the service file's text.
func writeDemo(dir, mods string) (string, error) {
	r := strings.NewReplacer("@MODULES@", mods, "@DIR@", dir, "@PASSWORD@", demoPassword)
	files := []struct {
		src, dst string
		mode     os.FileMode
	}{
		{"demo/service", filepath.Join("pam.d", demoService), 0o644},
		{"demo/check-password.sh", "check-password.sh", 0o755},
		{"demo/environment.conf", "environment.conf", 0o644},
	}
	if err := os.Mkdir(filepath.Join(dir, "pam.d"), 0o755); err != nil {
		return "", err
	}
	var stack string
	for _, f := range files {
		b, err := demoFiles.ReadFile(f.src)
		if err != nil {
			return "", err
		}
		text := r.Replace(string(b))
		if err := os.WriteFile(filepath.Join(dir, f.dst), []byte(text), f.mode); err != nil {
			return "", err
		}
		if f.src == "demo/service" {
			stack = text
		}
	}
	// MkdirTemp makes the directory private; modules that drop privileges
	// must still be able to read the files.
	return stack, os.Chmod(dir, 0o755)
}

// currentUser names the user running gopam, falling back on $USER and then
// on the user ID where the user database has no entry.
func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	for _, v := range []string{"USER", "LOGNAME"} {
		if s := os.Getenv(v); s != "" {
			return s
		}
	}
	return strconv.Itoa(os.Getuid())
}

// moduleDir finds the directory of the system's PAM modules: dir if given,
// else pam.ModuleDir. It checks that the demo's modules are all there.
func moduleDir(dir string) (string, error) {
	if dir == "" {
		d, err := pam.ModuleDir()
		if err != nil {
			return "", fmt.Errorf("%v; name one with --module-dir", err)
		}
		dir = d
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for _, m := range demoModules {
		if !exists(filepath.Join(abs, m)) {
			return "", fmt.Errorf("module %s is not in %s (Debian and Ubuntu ship it in package libpam-modules; --module-dir names another directory)", m, abs)
		}
	}
	return abs, nil
}
