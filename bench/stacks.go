package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
)

// The user every transaction runs as (the stacks never look it up) and the
// answer to every prompt.
const (
	benchUser   = "bench"
	benchAnswer = "bench-secret"
)

// The service names (lowercase: libpam lowercases them).
const (
	svcPermit    = "permit"
	svcEcho1     = "echo1"
	svcBatch3    = "batch3"
	svcFailDelay = "faildelay"
	svcFlood     = "flood"
	svcLeak      = "leak"
	svcLogin     = "login"
)

// moduleDirs are the usual homes of the system's PAM modules, most specific
// first.
var moduleDirs = []string{
	"/lib/x86_64-linux-gnu/security", "/usr/lib/x86_64-linux-gnu/security",
	"/lib/aarch64-linux-gnu/security", "/usr/lib/aarch64-linux-gnu/security",
	"/lib64/security", "/usr/lib64/security", "/lib/security", "/usr/lib/security",
}

// moduleDir returns the first directory of moduleDirs that holds every module
// the bench uses.
func moduleDir() (string, error) {
	need := []string{"pam_permit.so", "pam_deny.so", "pam_echo.so", "pam_stress.so", "pam_faildelay.so", "pam_env.so",
		"pam_nologin.so", "pam_userdb.so", "pam_unix.so", "pam_limits.so"}
next:
	for _, d := range moduleDirs {
		for _, m := range need {
			if _, err := os.Stat(filepath.Join(d, m)); err != nil {
				continue next
			}
		}
		return d, nil
	}
	return "", fmt.Errorf("no PAM module directory with %s among %s (Debian: apt install libpam-modules)",
		strings.Join(need, ", "), strings.Join(moduleDirs, ", "))
}

// stacks is a private configuration directory holding one service file per
// case, read through pam_start_confdir; nothing under /etc is used.
type stacks struct {
	dir    string // the confdir
	modDir string
	user   string // the login case's user: the one running the bench
}

// userFor returns the user a service's transactions run as: the login
// stack's pam_unix needs a real one, the others never look it up.
func (s *stacks) userFor(service string) string {
	if service == svcLogin {
		return s.user
	}
	return benchUser
}

// modules returns the module paths a service file names, in order, once each.
func (s *stacks) modules(service string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, service))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && filepath.IsAbs(f[2]) && !slices.Contains(out, f[2]) {
			out = append(out, f[2])
		}
	}
	return out, nil
}

// writeStacks writes the service files into a new temporary directory.
// failDelayUS and floodDelayUS are the pam_faildelay delays in microseconds.
func writeStacks(failDelayUS, floodDelayUS int) (*stacks, error) {
	md, err := moduleDir()
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "gopam-bench-")
	if err != nil {
		return nil, err
	}
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	s := &stacks{dir: filepath.Join(root, "pam.d"), modDir: md, user: u.Username}
	if err := os.Mkdir(s.dir, 0o755); err != nil {
		return nil, err
	}
	// pam_userdb's database: the login case's user with the bench's answer.
	userdb := filepath.Join(root, "users")
	load, err := exec.LookPath("db5.3_load")
	if err != nil {
		return nil, fmt.Errorf("the login case needs db5.3_load to build pam_userdb's database (Debian: apt install db5.3-util)")
	}
	dbIn := filepath.Join(root, "users.txt")
	if err := os.WriteFile(dbIn, []byte(s.user+"\n"+benchAnswer+"\n"), 0o600); err != nil {
		return nil, err
	}
	if out, err := exec.Command(load, "-T", "-t", "hash", "-f", dbIn, userdb+".db").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("db5.3_load: %v: %s", err, out)
	}
	limits := filepath.Join(root, "limits.conf")
	m := func(name string) string { return filepath.Join(md, name) }
	envConf := filepath.Join(root, "pam_env.conf")
	envFile := filepath.Join(root, "environment")
	files := map[string]string{
		envConf:                         "",
		envFile:                         "BENCH_FROM_PAM_ENV=1\n",
		filepath.Join(s.dir, svcPermit): "auth required " + m("pam_permit.so") + "\n",
		filepath.Join(s.dir, svcEcho1): "auth required " + m("pam_echo.so") + " hello from pam_echo\n" +
			"auth required " + m("pam_permit.so") + "\n",
		filepath.Join(s.dir, svcBatch3): "password required " + m("pam_stress.so") + "\n",
		filepath.Join(s.dir, svcFailDelay): fmt.Sprintf("auth required %s delay=%d\nauth required %s\n",
			m("pam_faildelay.so"), failDelayUS, m("pam_deny.so")),
		filepath.Join(s.dir, svcFlood): fmt.Sprintf("auth required %s delay=%d\nauth required %s\n",
			m("pam_faildelay.so"), floodDelayUS, m("pam_deny.so")),
		limits: "",
		// A login-like stack of stock modules (a Debian login's, less the
		// modules that need a terminal or write logs of their own).
		filepath.Join(s.dir, svcLogin): strings.Join([]string{
			"auth     required " + m("pam_faildelay.so") + " delay=1000000",
			"auth     required " + m("pam_nologin.so"),
			"auth     required " + m("pam_userdb.so") + " db=" + userdb + " crypt=none",
			"auth     required " + m("pam_permit.so"),
			"account  required " + m("pam_unix.so"),
			"session  required " + m("pam_limits.so") + " conf=" + limits,
			"session  required " + m("pam_env.so") + " conffile=" + envConf + " envfile=" + envFile,
			"session  required " + m("pam_unix.so"),
		}, "\n") + "\n",
		filepath.Join(s.dir, svcLeak): strings.Join([]string{
			"auth     required " + m("pam_env.so") + " conffile=" + envConf + " envfile=" + envFile,
			"auth     required " + m("pam_stress.so"),
			"account  required " + m("pam_stress.so"),
			"password required " + m("pam_stress.so"),
			"session  required " + m("pam_env.so") + " conffile=" + envConf + " envfile=" + envFile,
			"session  required " + m("pam_stress.so"),
		}, "\n") + "\n",
	}
	var errs []error
	for p, body := range files {
		errs = append(errs, os.WriteFile(p, []byte(body), 0o644))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// remove deletes the stacks' directory.
func (s *stacks) remove() { os.RemoveAll(filepath.Dir(s.dir)) }
