package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopam/pam/pamtest"
)

// checkUsageError checks the contract for bad input: exit status 2, one
// line on standard error naming the problem, nothing on standard output.
func checkUsageError(t *testing.T, o outcome, want string) {
	t.Helper()
	if o.status != 2 {
		t.Errorf("exit status %d, want 2", o.status)
	}
	if o.stdout != "" {
		t.Errorf("bad input printed on standard output")
	}
	if strings.Count(o.stderr, "\n") != 1 || !strings.HasSuffix(o.stderr, "\n") || !strings.HasPrefix(o.stderr, "gopam: ") {
		t.Errorf("want exactly one line on standard error starting with \"gopam: \"")
	}
	if !strings.Contains(o.stderr, want) {
		t.Errorf("the error does not mention %q", want)
	}
	if t.Failed() {
		t.Logf("%v", o)
	}
}

func TestBadInput(t *testing.T) {
	s := pamtest.New(t)
	svc := s.Service("svc", "auth required pam_permit.so")
	file := s.File("not-a-dir", "x")
	nulAnswers := s.File("nul-answers", "one\ntw\x00o\n")
	confdir := []string{"--confdir", s.Dir()}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no arguments", nil, "usage"},
		{"no operation", []string{svc, "alice"}, "usage"},
		{"unknown operation", append(confdir, svc, "alice", "frobnicate"), `"frobnicate"`},
		{"unknown operation after good ones", append(confdir, svc, "alice", "authenticate", "login"), `"login"`},
		{"unclosed flags", append(confdir, svc, "alice", "authenticate(PAM_SILENT"), "malformed"},
		{"text after flags", append(confdir, svc, "alice", "authenticate(PAM_SILENT)x"), "malformed"},
		{"nested parentheses", append(confdir, svc, "alice", "authenticate((PAM_SILENT))"), "malformed"},
		{"empty flag", append(confdir, svc, "alice", "authenticate(|PAM_SILENT)"), "empty flag"},
		{"unknown flag", append(confdir, svc, "alice", "authenticate(PAM_BOGUS)"), `"PAM_BOGUS"`},
		{"numeric flag", append(confdir, svc, "alice", "authenticate(0x8000)"), `"0x8000"`},
		{"cred flag elsewhere", append(confdir, svc, "alice", "acct_mgmt(PAM_DELETE_CRED)"), "setcred only"},
		{"two cred flags", append(confdir, svc, "alice", "setcred(PAM_DELETE_CRED|PAM_REFRESH_CRED)"), "one of"},
		{"unknown item", append(confdir, "-I", "bogus=x", svc, "alice", "authenticate"), `"bogus"`},
		{"item without value", append(confdir, "-Itty", svc, "alice", "authenticate"), "item=value"},
		{"-I at the end", append(confdir, svc, "alice", "authenticate", "-I"), "needs a value"},
		{"empty env name", append(confdir, "-E", "=x", svc, "alice", "authenticate"), "name is empty"},
		{"unknown option", append(confdir, "--frobnicate", svc, "alice", "authenticate"), "--frobnicate"},
		{"unknown short option", append(confdir, "-x", svc, "alice", "authenticate"), "-x"},
		{"value for a switch", append(confdir, "--json=yes", svc, "alice", "authenticate"), "--json"},
		{"missing confdir", []string{"--confdir", filepath.Join(s.Dir(), "nope"), svc, "alice", "authenticate"}, "no such directory"},
		{"confdir is a file", []string{"--confdir", file, svc, "alice", "authenticate"}, "not a directory"},
		{"confdir without value", []string{svc, "alice", "authenticate", "--confdir"}, "needs a value"},
		{"bad timeout", append(confdir, "--timeout", "soon", svc, "alice", "authenticate"), "--timeout"},
		{"negative timeout", append(confdir, "--timeout", "-1s", svc, "alice", "authenticate"), "--timeout"},
		{"missing answers file", append(confdir, "--answers-file", filepath.Join(s.Dir(), "nope"), svc, "alice", "authenticate"), "--answers-file"},
		{"NUL in answers file", append(confdir, "--answers-file", nulAnswers, svc, "alice", "authenticate"), "NUL"},
		{"empty service", append(confdir, "", "alice", "authenticate"), "service"},
		{"user outside demo", append(confdir, "--user", "bob", svc, "alice", "authenticate"), "demo"},
		{"confdir with demo", append(confdir, "demo"), "demo"},
		{"newline in an item name", append(confdir, "-I", "t\nty=x", svc, "alice", "authenticate"), "unknown item"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkUsageError(t, gopam(t, "", c.args...), c.want)
		})
	}
}

// TestNULArgument passes a NUL byte in an argument, which exec cannot do, by
// calling the program's run function.
func TestNULArgument(t *testing.T) {
	for _, args := range [][]string{
		{"svc\x00x", "alice", "authenticate"},
		{"svc", "al\x00ice", "authenticate"},
		{"svc", "alice", "authenticate\x00"},
		{"-I", "tty=a\x00b", "svc", "alice", "authenticate"},
		{"-E", "A=\x00", "svc", "alice", "authenticate"},
		{"--answer", "pw\x00", "svc", "alice", "authenticate"},
	} {
		var stdout, stderr bytes.Buffer
		status := run(args, os.Stdin, &stdout, &stderr)
		checkUsageError(t, outcome{stdout: stdout.String(), stderr: stderr.String(), status: status}, "NUL")
	}
}

func TestHelp(t *testing.T) {
	for _, flag := range []string{"--help", "-h"} {
		o := gopam(t, "", flag)
		if o.status != 0 || o.stdout != helpText || o.stderr != "" {
			t.Errorf("gopam %s: status %d, stderr %q", flag, o.status, o.stderr)
		}
	}
	// Every option the parser knows is documented.
	for name := range valueOptions {
		if !strings.Contains(helpText, name+" ") {
			t.Errorf("--help does not document %s", name)
		}
	}
	for _, name := range []string{"--json", "--env", "--verbose", "-v", "-I", "-E", "--help"} {
		if !strings.Contains(helpText, name) {
			t.Errorf("--help does not document %s", name)
		}
	}
	for op := range ops {
		if !strings.Contains(helpText, "    "+op+" ") {
			t.Errorf("--help does not document operation %s", op)
		}
	}
	for f := range opFlags {
		if !strings.Contains(helpText, f) {
			t.Errorf("--help does not document %s", f)
		}
	}
	for f := range credFlags {
		if !strings.Contains(helpText, f) {
			t.Errorf("--help does not document %s", f)
		}
	}
}
