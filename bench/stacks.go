package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	need := []string{"pam_permit.so", "pam_deny.so", "pam_echo.so", "pam_stress.so", "pam_faildelay.so", "pam_env.so"}
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
	s := &stacks{dir: filepath.Join(root, "pam.d"), modDir: md}
	if err := os.Mkdir(s.dir, 0o755); err != nil {
		return nil, err
	}
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
