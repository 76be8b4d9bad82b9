package testmodule_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
)

// Linux-PAM return codes that the tests expect.
const (
	success        = 0
	serviceErr     = 3
	permDenied     = 6
	authErr        = 7
	userUnknown    = 10
	maxTries       = 11
	newAuthtokReqd = 12
	acctExpired    = 13
	sessionErr     = 14
	credErr        = 17
	convErr        = 19
	authtokErr     = 20
	badItem        = 29
)

// fixture is a stack with pam_gotest built and the C host compiled.
type fixture struct {
	t      *testing.T
	stack  *pamtest.Stack
	module string
	host   string
}

// newFixture builds the module and pamtest's host for t in a fresh stack.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	return &fixture{
		t:      t,
		stack:  pamtest.New(t),
		module: testmodule.Build(t),
		host:   pamtest.Host(t),
	}
}

// service writes a service whose lines are "TYPE CONTROL pam_gotest ARGS"
// for each "TYPE CONTROL|ARGS" spec, and returns its name.
func (f *fixture) service(name string, specs ...string) string {
	f.t.Helper()
	var lines []string
	for _, spec := range specs {
		head, args, _ := strings.Cut(spec, "|")
		lines = append(lines, strings.TrimSpace(head+" "+f.module+" "+args))
	}
	return f.stack.Service(name, lines...)
}

// command returns the host command for a run; hostArgs are the host's own
// options (-a, -f, -m, -N, -B). Its standard input is empty, so prompts
// have only the -a answers.
func (f *fixture) command(hostArgs []string, service string, ops ...string) *exec.Cmd {
	args := append(append(append([]string{}, hostArgs...), f.stack.Dir(), service, "alice"), ops...)
	return exec.Command(f.host, args...)
}

// run runs the host and returns its standard output.
func (f *fixture) run(hostArgs []string, service string, ops ...string) string {
	f.t.Helper()
	out, err := f.command(hostArgs, service, ops...).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			f.t.Fatalf("host failed: %v\n%s%s", err, out, exit.Stderr)
		}
		f.t.Fatal(err)
	}
	return string(out)
}

// want fails the test unless out holds each line of lines, in that order
// (other lines may come between).
func want(t *testing.T, out string, lines ...string) {
	t.Helper()
	rest := strings.Split(out, "\n")
	for _, l := range lines {
		i := 0
		for i < len(rest) && rest[i] != l {
			i++
		}
		if i == len(rest) {
			t.Errorf("output lacks line %q (in order); got:\n%s", l, out)
			return
		}
		rest = rest[i+1:]
	}
}

// code returns the line the host prints after calling op with result c.
func code(op string, c int) string { return fmt.Sprintf("%s %d", op, c) }

func TestTidfileAllOps(t *testing.T) {
	f := newFixture(t)
	tids := filepath.Join(t.TempDir(), "tids")
	arg := "tidfile=" + tids
	f.service("all",
		"auth required|"+arg,
		"account required|"+arg,
		"password required|"+arg,
		"session required|"+arg,
	)
	ops := []string{"auth", "setcred", "acct", "open_session", "close_session", "chauthtok"}
	out := f.run(nil, "all", ops...)
	for _, op := range ops {
		want(t, out, code(op, success))
	}
	var tid string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "tid ") {
			tid = strings.TrimPrefix(l, "tid ")
		}
	}
	data, err := os.ReadFile(tids)
	if err != nil {
		t.Fatal(err)
	}
	var wantFile strings.Builder
	for _, op := range append(ops, "chauthtok") {
		fmt.Fprintf(&wantFile, "%s %s\n", op, tid)
	}
	if string(data) != wantFile.String() {
		t.Errorf("tidfile:\n%s\nwant:\n%s", data, wantFile.String())
	}
}

func TestNmsg(t *testing.T) {
	f := newFixture(t)
	f.service("three", "auth required|nmsg=3")
	want(t, f.run(nil, "three", "auth"),
		"conv n=3 resp=set", "info 5 msg 0", "info 5 msg 1", "info 5 msg 2", code("auth", success))

	f.service("max", "auth required|nmsg=32")
	want(t, f.run(nil, "max", "auth"), "conv n=32 resp=set", "info 6 msg 31", code("auth", success))

	for _, n := range []int{0, 33} {
		svc := f.service(fmt.Sprint("n", n), fmt.Sprintf("auth required|nmsg=%d", n))
		want(t, f.run(nil, svc, "auth"), fmt.Sprintf("conv n=%d refused", n), code("auth", convErr))
	}

	want(t, f.run([]string{"-f", "24"}, "three", "auth"), "conv n=3 resp=set", code("auth", 24))
}

func TestNullresp(t *testing.T) {
	f := newFixture(t)
	f.service("null", "session required|nullresp")
	want(t, f.run(nil, "null", "open_session"),
		"conv n=1 resp=null", "info 8 nullresp", code("open_session", success))
	want(t, f.run([]string{"-f", fmt.Sprint(convErr)}, "null", "open_session"), code("open_session", convErr))
}

func TestBigmsg(t *testing.T) {
	f := newFixture(t)
	f.service("big", "auth required|bigmsg=100000")
	want(t, f.run([]string{"-m", "64"}, "big", "auth"), "info 100000 "+strings.Repeat("x", 64), code("auth", success))
	f.service("small", "auth required|bigmsg=513")
	want(t, f.run(nil, "small", "auth"), "info 513 "+strings.Repeat("x", 513), code("auth", success))
	want(t, f.run([]string{"-f", "5"}, "small", "auth"), code("auth", 5))
}

func TestBinary(t *testing.T) {
	f := newFixture(t)
	f.service("bin", "auth required|binary")
	want(t, f.run(nil, "bin", "auth"), "conv n=1 resp=set", "binary 9 1 ping", code("auth", success))
	want(t, f.run([]string{"-B"}, "bin", "auth"), "binary 9 1 ping", code("auth", authErr))
	want(t, f.run([]string{"-f", fmt.Sprint(convErr)}, "bin", "auth"), code("auth", convErr))
}

func TestPrompts(t *testing.T) {
	f := newFixture(t)
	f.service("pw", "auth required|prompt=Password: expect=secret")
	want(t, f.run([]string{"-a", "secret"}, "pw", "auth"), "prompt-off 9 Password:", code("auth", success))
	want(t, f.run([]string{"-a", "wrong"}, "pw", "auth"), code("auth", authErr))
	want(t, f.run([]string{"-N"}, "pw", "auth"), code("auth", authErr))
	want(t, f.run(nil, "pw", "auth"), code("auth", convErr))

	f.service("two",
		"auth required|[prompt=Your password: ] expect=one",
		"auth required|echoprompt=Token: expect=two",
		"auth required|echoprompt=Anything:",
	)
	want(t, f.run([]string{"-a", "one", "-a", "two", "-a", "x"}, "two", "auth"),
		"prompt-off 15 Your password: ", "prompt-on 6 Token:", "prompt-on 9 Anything:", code("auth", success))
	want(t, f.run([]string{"-a", "one", "-a", "three", "-a", "x"}, "two", "auth"), code("auth", authErr))
	want(t, f.run([]string{"-N"}, "two", "auth"), code("auth", authErr))
}

func TestSetenv(t *testing.T) {
	f := newFixture(t)
	f.service("env",
		"auth required|setenv=SECRET=hunter2 setenv=EMPTY= setenv=GONE=1 setenv=GONE",
	)
	out := f.run(nil, "env", "auth", "env")
	want(t, out, code("auth", success), "env SECRET=hunter2", "env EMPTY=")
	if strings.Contains(out, "GONE") {
		t.Errorf("setenv=GONE did not unset the variable:\n%s", out)
	}

	// The environment is set before the conversation steps run.
	f.service("first", "auth required|setenv=A=1 nmsg=1")
	want(t, f.run([]string{"-f", fmt.Sprint(convErr)}, "first", "auth", "env"), code("auth", convErr), "env A=1")

	f.service("bad", "auth required|setenv==x")
	want(t, f.run(nil, "bad", "auth"), code("auth", badItem))
}

func TestSleepAfterTidfile(t *testing.T) {
	f := newFixture(t)
	tids := filepath.Join(t.TempDir(), "tids")
	f.service("slow", "account required|tidfile="+tids+" sleepms=700")
	cmd := f.command(nil, "slow", "acct")
	var out strings.Builder
	cmd.Stdout = &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// The line must be there before the host ends; the file is read after
	// each look at the host, so a slow poller cannot mistake the order.
	var exited error
	for ended := false; ; {
		select {
		case exited = <-done:
			ended = true
		case <-time.After(5 * time.Millisecond):
		}
		data, _ := os.ReadFile(tids)
		if strings.HasPrefix(string(data), "acct ") {
			if !ended {
				exited = <-done
			}
			break
		}
		if ended {
			t.Fatalf("host exited (%v) and the tidfile has no line", exited)
		}
	}
	if exited != nil {
		t.Fatal(exited)
	}
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Errorf("acct took %v, want at least 700ms", d)
	}
	want(t, out.String(), code("acct", success))
}

// TestWaitfile: the call waits in C until the file exists, whatever time
// that takes; the test decides when.
func TestWaitfile(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	tids, gate := filepath.Join(dir, "tids"), filepath.Join(dir, "open")
	f.service("gated", "account required|tidfile="+tids+" waitfile="+gate)
	cmd := f.command(nil, "gated", "acct")
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if data, _ := os.ReadFile(tids); strings.HasPrefix(string(data), "acct ") {
			break
		}
		if time.Now().After(deadline) { // a hang guard only
			cmd.Process.Kill()
			t.Fatal("the call never started")
		}
	}
	select {
	case err := <-done:
		t.Fatalf("the host ended (%v) before the gate's file existed", err)
	default:
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want(t, out.String(), code("acct", success))

	f.service("badwait", "account required|waitfile=relative")
	want(t, f.run(nil, "badwait", "acct"), code("acct", serviceErr))
}

func TestRet(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		typ, op, token string
		code           int
	}{
		{"auth", "auth", "success", success},
		{"auth", "auth", "auth_err", authErr},
		{"auth", "auth", "perm_denied", permDenied},
		{"auth", "auth", "user_unknown", userUnknown},
		{"auth", "auth", "conv_err", convErr},
		{"auth", "auth", "maxtries", maxTries},
		{"auth", "auth", "10", userUnknown},
		{"auth", "setcred", "cred_err", credErr},
		{"account", "acct", "new_authtok_reqd", newAuthtokReqd},
		{"account", "acct", "acct_expired", acctExpired},
		{"session", "open_session", "session_err", sessionErr},
		{"session", "close_session", "session_err", sessionErr},
		{"password", "chauthtok", "authtok_err", authtokErr},
	}
	for i, c := range cases {
		svc := f.service(fmt.Sprint("ret", i), c.typ+" required|ret="+c.token)
		want(t, f.run(nil, svc, c.op), code(c.op, c.code))
	}
}

func TestBadArguments(t *testing.T) {
	f := newFixture(t)
	for i, args := range []string{
		"bogus",
		"nmsg=abc",
		"nmsg=-1",
		"bigmsg=99999999999",
		"sleepms=1s",
		"ret=nope",
		"expect=x",
		"tidfile=relative/path",
		"prompt=a echoprompt=b",
		"setenv=",
	} {
		svc := f.service(fmt.Sprint("bad", i), "auth required|"+args)
		out := f.run(nil, svc, "auth")
		if !strings.Contains(out, code("auth", serviceErr)) {
			t.Errorf("arguments %q: want PAM_SERVICE_ERR, got:\n%s", args, out)
		}
	}
}

// TestNoLeaks runs every option, across all six entry points, under
// valgrind, which fails on a leak or a bad memory access in the module or
// the host.
func TestNoLeaks(t *testing.T) {
	valgrind, err := exec.LookPath("valgrind")
	if err != nil {
		t.Fatal("valgrind is not installed: install Debian package valgrind")
	}
	f := newFixture(t)
	tids := filepath.Join(t.TempDir(), "tids")
	all := "tidfile=" + tids + " sleepms=1 setenv=K=v nmsg=3 nullresp bigmsg=1000 binary prompt=P: expect=a"
	f.service("all",
		"auth required|"+all,
		"auth required|echoprompt=Q: expect=b",
		"account required|"+all+" ret=success",
		"password required|"+all,
		"session required|"+all,
	)
	f.service("fail",
		"auth required|nmsg=2",
		"account required|prompt=P: expect=zzz",
		"password required|binary",
		"session required|nmsg=33",
	)
	run := func(hostArgs []string, stdin, service string, ops ...string) string {
		args := []string{"-q", "--error-exitcode=99", "--leak-check=full",
			"--errors-for-leak-kinds=definite,indirect", f.host}
		args = append(append(append(args, hostArgs...), f.stack.Dir(), service, "alice"), ops...)
		cmd := exec.Command(valgrind, args...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("valgrind %s: %v\n%s", service, err, out)
		}
		return string(out)
	}
	ops := []string{"auth", "setcred", "acct", "open_session", "close_session", "chauthtok", "env"}
	// The auth lines prompt in authenticate and again in setcred; every
	// other type prompts once. Half of the answers come from options, the
	// rest from standard input, the last line without its newline.
	answers := []string{"-a", "a", "-a", "b", "-a", "a", "-a", "b"}
	out := run(answers, "a\na\na\na", "all", ops...)
	for _, op := range ops[:6] {
		want(t, out, code(op, success))
	}
	out = run([]string{"-a", "a", "-B", "-m", "4"}, "", "fail", ops...)
	want(t, out, code("auth", success), code("acct", authErr), code("open_session", convErr), code("chauthtok", authErr))
	run([]string{"-f", fmt.Sprint(convErr)}, "", "all", "auth", "acct")
	// The answers run out at the second prompt of auth.
	want(t, run(nil, "a\n", "all", "auth"), code("auth", convErr))
}
