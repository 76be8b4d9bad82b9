package pamtest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/gopam/pam"
)

// PAM return codes that the tests below expect, in the numbers of the
// loaded libpam (Linux-PAM's or OpenPAM's).
var (
	codeSuccess     = codeNumber(pam.Success)
	codePermDenied  = codeNumber(pam.ErrPermDenied)
	codeAuthErr     = codeNumber(pam.ErrAuth)
	codeUserUnknown = codeNumber(pam.ErrUserUnknown)
	codeConvErr     = codeNumber(pam.ErrConv)
	codeAbort       = codeNumber(pam.ErrAbort)
)

func codeNumber(c pam.Code) int {
	n, _ := c.Errno()
	return n
}

// fatalRecorder is a testing.TB whose Fatal methods record the message and
// end the calling goroutine, so that tests can check how the kit fails.
type fatalRecorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
	hit bool
}

// Helper does nothing: the recorder reports no file positions.
func (f *fatalRecorder) Helper() {}

// Fatalf records the message and ends the goroutine, as testing.T does.
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg, f.hit = fmt.Sprintf(format, args...), true
	f.mu.Unlock()
	runtime.Goexit()
}

// Fatal records the message and ends the goroutine, as testing.T does.
func (f *fatalRecorder) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

// expectFatal runs fn on its own goroutine with a fatalRecorder and returns
// the message it failed with; it fails t if fn did not fail.
func expectFatal(t *testing.T, fn func(tb testing.TB)) string {
	t.Helper()
	f := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.hit {
		t.Fatal("expected the kit to fail the test, it did not")
	}
	return f.msg
}

// requireInstalled fails the test when err reports something not installed;
// the error names the Debian package to install.
func requireInstalled(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("not installed: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestModuleDir(t *testing.T) {
	dir, err := ModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(dir) || !isFile(filepath.Join(dir, "pam_permit.so")) {
		t.Fatalf("ModuleDir() = %q, which holds no pam_permit.so", dir)
	}
	if got, err := probeModuleDir(dir); err != nil || got != dir {
		t.Errorf("probeModuleDir(%q) = %q, %v; want the override itself", dir, got, err)
	}
	_, err = probeModuleDir(t.TempDir())
	var me *MissingError
	if !errors.As(err, &me) || !errors.Is(err, fs.ErrNotExist) || me.Package != "libpam-modules" {
		t.Errorf("probeModuleDir(empty dir) error = %v; want a *MissingError naming libpam-modules", err)
	}
}

func TestModulePath(t *testing.T) {
	dir, err := ModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	p, err := ModulePath("pam_permit.so")
	if err != nil || p != filepath.Join(dir, "pam_permit.so") {
		t.Errorf("ModulePath(pam_permit.so) = %q, %v", p, err)
	}

	_, err = ModulePath("pam_no_such_module.so")
	var me *MissingError
	if !errors.As(err, &me) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ModulePath(missing) error = %v; want a *MissingError", err)
	}
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not say where it looked", err)
	}

	if _, err := ModulePath("security/pam_permit.so"); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ModulePath with a slash: error = %v; want a usage error", err)
	}

	p, err = ModulePath("pam_matrix.so")
	requireInstalled(t, err)
	if !strings.Contains(p, "pam_wrapper") {
		t.Errorf("ModulePath(pam_matrix.so) = %q; want it in a pam_wrapper directory", p)
	}
}

func TestMissingErrorNamesPackage(t *testing.T) {
	for module, pkg := range map[string]string{
		"pam_matrix.so":    "libpam-wrapper",
		"pam_chatty.so":    "libpam-wrapper",
		"pam_get_items.so": "libpam-wrapper",
		"pam_set_items.so": "libpam-wrapper",
		"pam_userdb.so":    "libpam-modules",
		"pam_stress.so":    "libpam-modules",
		"pam_foo.so":       "",
	} {
		if got := debianPackage(module); got != pkg {
			t.Errorf("debianPackage(%s) = %q, want %q", module, got, pkg)
		}
	}
	err := &MissingError{What: "module pam_matrix.so", Package: "libpam-wrapper", Searched: []string{"/a", "/b"}}
	want := "pamtest: module pam_matrix.so not found (looked in /a, /b); on Debian install package libpam-wrapper"
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestServiceRewritesModules(t *testing.T) {
	LinuxPAMOnly(t, "Linux-PAM's modules and control syntax")
	s := New(t)
	dir, err := ModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	mod := func(name string) string { return filepath.Join(dir, name) }
	lines := []struct{ in, want string }{
		{"# a comment with pam_permit.so", "# a comment with pam_permit.so"},
		{"", ""},
		{"auth required pam_permit.so", "auth required " + mod("pam_permit.so")},
		{"AUTH Required pam_permit.so", "AUTH Required " + mod("pam_permit.so")},
		{
			"account [success=1 default=ignore] pam_succeed_if.so user = alice",
			"account [success=1 default=ignore] " + mod("pam_succeed_if.so") + " user = alice",
		},
		{"session\toptional\tpam_echo.so\thello  there", "session\toptional\t" + mod("pam_echo.so") + "\thello  there"},
		{"-session optional pam_no_such_module.so", "-session optional pam_no_such_module.so"},
		{"auth required /nonexistent/pam_x.so arg", "auth required /nonexistent/pam_x.so arg"},
		{"password include common", "password include " + filepath.Join(s.Dir(), "common")},
		{"auth substack /abs/common", "auth substack /abs/common"},
		{"@include common", "@include " + filepath.Join(s.Dir(), "common")},
	}
	var in, want []string
	for _, l := range lines {
		in = append(in, l.in)
		want = append(want, l.want)
	}
	if got := s.Service("login", in...); got != "login" {
		t.Errorf("Service returned %q, want login", got)
	}
	data, err := os.ReadFile(filepath.Join(s.Dir(), "login"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(data); got != strings.Join(want, "\n")+"\n" {
		t.Errorf("service file:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestServiceFailures(t *testing.T) {
	cases := []struct {
		name, service, line, want string
	}{
		{"uppercase name", "Login", "auth required pam_permit.so", "lowercase"},
		{"slash in name", "a/b", "auth required pam_permit.so", "'/'"},
		{"empty name", "", "auth required pam_permit.so", "not a file name"},
		{"unknown type", "x", "authx required pam_permit.so", "unknown module type"},
		{"no module", "x", "auth required", "missing module"},
		{"no control", "x", "auth", "missing control"},
		{"open bracket", "x", "auth [default=die pam_permit.so", "no closing"},
		{"newline", "x", "auth required pam_permit.so\nauth required pam_deny.so", "newline"},
		{"missing module", "x", "auth required pam_no_such_module.so", "pam_no_such_module.so not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := expectFatal(t, func(tb testing.TB) {
				New(tb).Service(c.service, c.line)
			})
			if !strings.Contains(msg, c.want) {
				t.Errorf("failure message %q does not contain %q", msg, c.want)
			}
		})
	}
}

func TestFileAndScript(t *testing.T) {
	s := New(t)
	p := s.File("sub/dir/conf", "hello\n")
	if !filepath.IsAbs(p) || strings.HasPrefix(p, s.Dir()+string(filepath.Separator)) {
		t.Errorf("File path %q: want an absolute path outside the confdir %q", p, s.Dir())
	}
	if data, err := os.ReadFile(p); err != nil || string(data) != "hello\n" {
		t.Errorf("reading %s: %q, %v", p, data, err)
	}
	for _, bad := range []string{"", "../escape", "/abs"} {
		msg := expectFatal(t, func(tb testing.TB) { New(tb).File(bad, "x") })
		if !strings.Contains(msg, "relative path") {
			t.Errorf("File(%q) failed with %q", bad, msg)
		}
	}

	sh := s.Script("hello.sh", "echo \"hi $1\"\n")
	out, err := exec.Command(sh, "there").Output()
	if err != nil || string(out) != "hi there\n" {
		t.Errorf("running script: %q, %v", out, err)
	}
	data, _ := os.ReadFile(sh)
	if !bytes.HasPrefix(data, []byte("#!/bin/sh\n")) {
		t.Errorf("script does not start with a shebang: %q", data)
	}
	own := s.Script("own.sh", "#!/bin/sh -e\nexit 3\n")
	data, _ = os.ReadFile(own)
	if !bytes.HasPrefix(data, []byte("#!/bin/sh -e\nexit 3")) {
		t.Errorf("script's own shebang was changed: %q", data)
	}
	if err := exec.Command(own).Run(); err == nil {
		t.Errorf("script exiting 3 succeeded")
	}
}

func TestMatrixPasswd(t *testing.T) {
	s := New(t)
	p := s.MatrixPasswd("passdb", MatrixUser{"alice", "secret", "login"}, MatrixUser{"bob", "pw", "other"})
	data, err := os.ReadFile(p)
	if err != nil || string(data) != "alice:secret:login\nbob:pw:other\n" {
		t.Errorf("passdb = %q, %v", data, err)
	}
	msg := expectFatal(t, func(tb testing.TB) {
		New(tb).MatrixPasswd("passdb", MatrixUser{"alice", "a:b", "login"})
	})
	if !strings.Contains(msg, "':'") {
		t.Errorf("bad entry failed with %q", msg)
	}
}

// pamtester runs pamtester through pam_wrapper against the stack's
// services, feeding stdin to its prompts, and returns its combined output
// and whether it exited 0.
func pamtester(t *testing.T, s *Stack, stdin, service, user string) (string, bool) {
	t.Helper()
	bin, err := lookProgram("pamtester", "pamtester")
	requireInstalled(t, err)
	_, err = WrapperLibrary()
	requireInstalled(t, err)
	cmd := exec.Command(bin, "-v", service, user, "authenticate")
	cmd.Env = append(os.Environ(), s.WrapperEnv()...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running pamtester: %v", err)
	}
	return string(out), err == nil
}

func TestPamtesterThroughWrapper(t *testing.T) {
	LinuxPAMOnly(t, "pamtester and cwrap's pam_wrapper run Linux-PAM")
	s := New(t)
	s.Service("permit", "auth required pam_permit.so")
	s.Service("deny", "auth required pam_deny.so")
	db := s.UserDB("users", map[string]string{"alice": "secret", `back\slash`: `pa\ss word`})
	s.Service("userdb", "auth required pam_userdb.so db="+db+" crypt=none")

	cases := []struct {
		service, user, stdin string
		ok                   bool
		want                 string
	}{
		{"permit", "alice", "", true, "successfully authenticated"},
		{"deny", "alice", "", false, "Authentication failure"},
		{"userdb", "alice", "secret\n", true, "successfully authenticated"},
		{"userdb", "alice", "wrong\n", false, "Authentication failure"},
		{"userdb", "bob", "secret\n", false, "User not known"},
		{"userdb", `back\slash`, "pa\\ss word\n", true, "successfully authenticated"},
	}
	for _, c := range cases {
		out, ok := pamtester(t, s, c.stdin, c.service, c.user)
		if ok != c.ok || !strings.Contains(out, c.want) {
			t.Errorf("pamtester %s %s: exit ok=%v, output:\n%s\nwant ok=%v and %q", c.service, c.user, ok, out, c.ok, c.want)
		}
	}
}

// runHost runs the host bin with args, feeding stdin to its prompts, and
// returns its standard output and exit status.
func runHost(t *testing.T, bin, stdin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running host: %v", err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// host compiles the host with Host and returns a function that runs it
// against a stack, feeding stdin to its prompts, and returns its standard
// output.
func host(t *testing.T) func(s *Stack, stdin, service, user string, ops ...string) string {
	t.Helper()
	bin := Host(t)
	return func(s *Stack, stdin, service, user string, ops ...string) string {
		t.Helper()
		out, _ := runHost(t, bin, stdin, append([]string{s.Dir(), service, user}, ops...)...)
		return out
	}
}

// wantLines fails t unless every line of want appears in out.
func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		have[l] = true
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("output lacks line %q; got:\n%s", w, out)
		}
	}
}

func TestConfdirHost(t *testing.T) {
	LinuxPAMOnly(t, "modules pam_userdb and pam_exec")
	run := host(t)
	s := New(t)

	db := s.UserDB("users.db", map[string]string{"alice": "secret"})
	s.Service("userdb",
		"auth    required pam_userdb.so db="+db+" crypt=none",
		"account required pam_permit.so",
	)
	wantLines(t, run(s, "secret\n", "userdb", "alice", "auth", "acct"),
		"start 0", fmt.Sprint("auth ", codeSuccess), fmt.Sprint("acct ", codeSuccess))
	wantLines(t, run(s, "nope\n", "userdb", "alice", "auth"), fmt.Sprint("auth ", codeAuthErr))
	wantLines(t, run(s, "secret\n", "userdb", "carol", "auth"), fmt.Sprint("auth ", codeUserUnknown))

	// A relative include must land in the stack, not in /etc/pam.d.
	s.Service("common", "auth required pam_echo.so included from common", "auth required pam_permit.so")
	s.Service("main", "auth include common")
	wantLines(t, run(s, "", "main", "alice", "auth"), "info 20 included from common", "auth 0")
	s.Service("deb", "@include common")
	wantLines(t, run(s, "", "deb", "alice", "auth"), "info 20 included from common", "auth 0")

	// A module type missing from a service with no "other" is denied.
	wantLines(t, run(s, "", "main", "alice", "acct"), fmt.Sprint("acct ", codePermDenied))
	// No service file and no "other": pam_start itself fails.
	wantLines(t, run(s, "", "absent", "alice"), fmt.Sprint("start ", codeAbort))
	s.Service("other", "auth required pam_deny.so")
	wantLines(t, run(s, "", "absent", "alice", "auth"), "start 0", fmt.Sprint("auth ", codeAuthErr))

	// Scripts run under pam_exec with the password on standard input.
	check := s.Script("check.sh", "read -r pw || true\n[ \"$PAM_USER:$pw\" = alice:open-sesame ]\n")
	s.Service("exec",
		"auth [success=1 default=ignore] pam_exec.so quiet expose_authtok "+check,
		"auth requisite pam_deny.so",
		"auth required pam_permit.so",
	)
	wantLines(t, run(s, "open-sesame\n", "exec", "alice", "auth"), "auth 0")
	wantLines(t, run(s, "wrong\n", "exec", "alice", "auth"), fmt.Sprint("auth ", codeAuthErr))

	// pam_env reads its files from the data directory.
	conf := s.File("env.conf", "")
	envfile := s.File("environment", "GREETING=hello\n")
	s.Service("env", "session required pam_env.so conffile="+conf+" envfile="+envfile)
	wantLines(t, run(s, "", "env", "alice", "open_session", "env"), "open_session 0", "env GREETING=hello")
}

func TestConfdirHostMatrix(t *testing.T) {
	LinuxPAMOnly(t, "cwrap's pam_matrix is built for Linux-PAM")
	_, err := ModulePath("pam_matrix.so")
	requireInstalled(t, err)
	run := host(t)
	s := New(t)
	passdb := s.MatrixPasswd("passdb", MatrixUser{"alice", "secret", "matrix"}, MatrixUser{"bob", "pw", "elsewhere"})
	s.Service("matrix",
		"auth    required pam_matrix.so passdb="+passdb,
		"account required pam_matrix.so passdb="+passdb,
	)
	wantLines(t, run(s, "secret\n", "matrix", "alice", "auth", "acct"), "auth 0", "acct 0")
	wantLines(t, run(s, "wrong\n", "matrix", "alice", "auth"), fmt.Sprint("auth ", codeAuthErr))
	wantLines(t, run(s, "pw\n", "matrix", "bob", "auth", "acct"), "auth 0", fmt.Sprint("acct ", codePermDenied))
}

// chattySource is a PAM module for TestHostTranscript. Its auth sends an
// information and an error message in one conversation call without a
// response pointer, then asks "First: " (echo off), which must be answered
// "one", and "Second:" (echo on), which must be answered "two", each in a
// call of its own; it returns a conversation failure unchanged and
// PAM_AUTH_ERR for a wrong answer. On success it sets V to "a", newline, "b".
// With the argument "noresp" it only prompts "Q:" without a response
// pointer and returns the conversation's result.
const chattySource = `
#include <stdlib.h>
#include <string.h>
#include <security/pam_appl.h>
#include <security/pam_modules.h>

static int ask(const struct pam_conv *conv, int style, const char *text, const char *want)
{
	const struct pam_message m = { style, (char *)text }, *mp = &m;
	struct pam_response *r = NULL;
	int rc, ok;

	rc = conv->conv(1, &mp, &r, conv->appdata_ptr);
	if (rc != PAM_SUCCESS)
		return rc;
	ok = r != NULL && r->resp != NULL && strcmp(r->resp, want) == 0;
	if (r != NULL)
		free(r->resp);
	free(r);
	return ok ? PAM_SUCCESS : PAM_AUTH_ERR;
}

int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const struct pam_message m[2] = {
		{ PAM_TEXT_INFO, "two\nlines\tand \\ and \x01 end" },
		{ PAM_ERROR_MSG, "oops" },
	};
	const struct pam_message *mp[2] = { &m[0], &m[1] };
	const struct pam_conv *conv = NULL;
	int rc;

	(void)flags;
	rc = pam_get_item(pamh, PAM_CONV, (const void **)&conv);
	if (rc != PAM_SUCCESS || conv == NULL)
		return PAM_SYSTEM_ERR;
	if (argc == 1 && strcmp(argv[0], "noresp") == 0) {
		const struct pam_message q = { PAM_PROMPT_ECHO_OFF, "Q:" }, *qp = &q;

		return conv->conv(1, &qp, NULL, conv->appdata_ptr);
	}
	rc = conv->conv(2, mp, NULL, conv->appdata_ptr);
	if (rc == PAM_SUCCESS)
		rc = ask(conv, PAM_PROMPT_ECHO_OFF, "First: ", "one");
	if (rc == PAM_SUCCESS)
		rc = ask(conv, PAM_PROMPT_ECHO_ON, "Second:", "two");
	if (rc == PAM_SUCCESS)
		rc = pam_putenv(pamh, "V=a\nb");
	return rc;
}
`

// tidLine matches the host's first line.
var tidLine = regexp.MustCompile(`^tid [1-9][0-9]*\n`)

func TestHostTranscript(t *testing.T) {
	bin := Host(t)
	if !filepath.IsAbs(bin) || filepath.Base(bin) != "pamtest-host" {
		t.Errorf("Host(t) = %q; want an absolute path to pamtest-host", bin)
	}
	s := New(t)
	module := s.Module("pam_chatty_test", chattySource)
	s.Service("chatty", "auth required "+module)
	s.Service("noresp", "auth required "+module+" noresp")
	message := "two\nlines\tand \\ and \x01 end" // as the module sends it
	full := strings.Join([]string{
		"start 0",
		"conv n=2 resp=null",
		fmt.Sprintf("info %d %s", len(message), `two\nlines\tand \\ and \x01 end`),
		"error 4 oops",
		"conv n=1 resp=set",
		"prompt-off 7 First: ",
		"conv n=1 resp=set",
		"prompt-on 7 Second:",
		"auth 0",
		"env V=a\\nb",
		"",
	}, "\n")
	cases := []struct {
		name, stdin string
		args        []string
		want        string // the output after the tid line; "" checks only the auth line
		auth        int
	}{
		{"options then stdin", "two\n", []string{"-a", "one"}, full, codeSuccess},
		{"options only", "", []string{"-a", "one", "-a", "two"}, full, codeSuccess},
		{"stdin only", "one\ntwo\n", nil, full, codeSuccess},
		{"last line without newline", "one\ntwo", nil, full, codeSuccess},
		{"options in order", "", []string{"-a", "two", "-a", "one"}, "", codeAuthErr},
		{"options before stdin", "two\n", []string{"-a", "two"}, "", codeAuthErr},
		{"answers run out", "", []string{"-a", "one"}, "", codeConvErr},
		{"null answers", "one\ntwo\n", []string{"-N"}, "", codeAuthErr},
		{"failing conversation", "", []string{"-f", "24"}, "start 0\nconv n=2 resp=null\nauth 24\n", 24},
		{"cut text", "", []string{"-m", "3", "-a", "one", "-a", "two"}, strings.Join([]string{
			"start 0",
			"conv n=2 resp=null",
			fmt.Sprintf("info %d two", len(message)),
			"error 4 oop",
			"conv n=1 resp=set",
			"prompt-off 7 Fir",
			"conv n=1 resp=set",
			"prompt-on 7 Sec",
			"auth 0",
			"env V=a\\nb",
			"",
		}, "\n"), codeSuccess},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, status := runHost(t, bin, c.stdin, append(c.args, s.Dir(), "chatty", "alice", "auth", "env")...)
			if status != 0 {
				t.Errorf("exit status %d, want 0", status)
			}
			loc := tidLine.FindStringIndex(out)
			if loc == nil {
				t.Fatalf("output does not start with a tid line:\n%s", out)
			}
			if c.want != "" && out[loc[1]:] != c.want {
				t.Errorf("transcript:\n%s\nwant:\n%s", out[loc[1]:], c.want)
			}
			wantLines(t, out, fmt.Sprint("auth ", c.auth))
		})
	}

	// A prompt without a response pointer cannot be answered.
	out, _ := runHost(t, bin, "", "-a", "x", s.Dir(), "noresp", "alice", "auth")
	wantLines(t, out, "conv n=1 resp=null", "prompt-off 2 Q:", fmt.Sprint("auth ", codeConvErr))
}

func TestHostExitStatus(t *testing.T) {
	bin := Host(t)
	s := New(t)
	s.Service("permit", "auth required pam_permit.so", "account required pam_deny.so")
	cases := []struct {
		name   string
		args   []string
		status int
		want   string // a line of the output, or "" for no output
	}{
		{"success", []string{s.Dir(), "permit", "alice", "auth", "acct"}, 0, fmt.Sprint("acct ", codeAuthErr)},
		{"no operations", []string{s.Dir(), "permit", "alice"}, 0, "start 0"},
		{"no service", []string{s.Dir(), "absent", "alice", "auth"}, 1, fmt.Sprint("start ", codeAbort)},
		{"unknown operation", []string{s.Dir(), "permit", "alice", "auth", "bogus"}, 2, ""},
		{"too few arguments", []string{s.Dir(), "permit"}, 2, ""},
		{"unknown option", []string{"-x", s.Dir(), "permit", "alice"}, 2, ""},
		{"bad code", []string{"-f", "x1", s.Dir(), "permit", "alice"}, 2, ""},
		{"negative code", []string{"-f", "-1", s.Dir(), "permit", "alice"}, 2, ""},
		{"bad limit", []string{"-m", "1k", s.Dir(), "permit", "alice"}, 2, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, status := runHost(t, bin, "", c.args...)
			if status != c.status {
				t.Errorf("exit status %d, want %d; output:\n%s", status, c.status, out)
			}
			if c.want == "" && out != "" {
				t.Errorf("a usage error printed %q; want no output", out)
			}
			if c.want != "" {
				wantLines(t, out, c.want)
			}
		})
	}
}

// moduleSource is a PAM module that admits alice only.
const moduleSource = `
#include <string.h>
#include <security/pam_appl.h>
#include <security/pam_modules.h>

int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const char *user = NULL;

	(void)flags; (void)argc; (void)argv;
	if (pam_get_item(pamh, PAM_USER, (const void **)&user) != PAM_SUCCESS || user == NULL)
		return PAM_USER_UNKNOWN;
	return strcmp(user, "alice") == 0 ? PAM_SUCCESS : PAM_AUTH_ERR;
}
`

func TestCompileModule(t *testing.T) {
	run := host(t)
	a := CompileModule(t, "pam_alice", moduleSource)
	b := CompileModule(t, "pam_alice.so", moduleSource)
	if filepath.Base(a) != "pam_alice.so" || a == b {
		t.Errorf("CompileModule paths %q and %q: want two private pam_alice.so files", a, b)
	}
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if len(da) == 0 || !bytes.Equal(da, db) {
		t.Errorf("the two builds differ or are empty (%d and %d bytes)", len(da), len(db))
	}
	first, err := compileCached(moduleSource, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := compileCached(moduleSource, true, nil)
	if &first[0] != &again[0] {
		t.Errorf("the same source was compiled twice")
	}

	s := New(t)
	c := s.Module("pam_alice", moduleSource)
	if !strings.HasPrefix(c, filepath.Dir(s.Dir())) {
		t.Errorf("Stack.Module path %q is outside the stack", c)
	}
	s.Service("custom", "auth required "+c)
	wantLines(t, run(s, "", "custom", "alice", "auth"), "auth 0")
	wantLines(t, run(s, "", "custom", "bob", "auth"), fmt.Sprint("auth ", codeAuthErr))
}

func TestCompileModuleParallel(t *testing.T) {
	src := moduleSource + "\n/* parallel */\n"
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			p := CompileModule(t, "pam_par", src)
			if !isFile(p) {
				t.Errorf("%s was not written", p)
			}
		})
	}
}

func TestCompileFailures(t *testing.T) {
	msg := expectFatal(t, func(tb testing.TB) {
		CompileModule(tb, "pam_broken", "int f(void) { return undeclared; }\n")
	})
	if !strings.Contains(msg, "undeclared") {
		t.Errorf("compile error message lacks the compiler's output: %q", msg)
	}
	msg = expectFatal(t, func(tb testing.TB) {
		CompileModule(tb, "pam_warn", "static int unused;\nint f(void) { return 0; }\n")
	})
	if !strings.Contains(msg, "unused") {
		t.Errorf("a warning did not fail the build: %q", msg)
	}
	msg = expectFatal(t, func(tb testing.TB) {
		CompileModule(tb, "pam_hdr", "#include <security/pam_no_such_header.h>\n")
	})
	if !strings.Contains(msg, "<security/pam_no_such_header.h> not found") || !strings.Contains(msg, "libpam0g-dev") {
		t.Errorf("missing header message %q does not name the header and libpam0g-dev", msg)
	}
	msg = expectFatal(t, func(tb testing.TB) { CompileModule(tb, "a/b", moduleSource) })
	if !strings.Contains(msg, "plain file name") {
		t.Errorf("bad name failed with %q", msg)
	}

	t.Setenv("CC", "pamtest-no-such-compiler")
	msg = expectFatal(t, func(tb testing.TB) { CompileModule(tb, "pam_x", moduleSource) })
	if !strings.Contains(msg, "pamtest-no-such-compiler") || !strings.Contains(msg, "package gcc") {
		t.Errorf("missing compiler message %q does not name it and gcc", msg)
	}
}

func TestUserDBFailures(t *testing.T) {
	msg := expectFatal(t, func(tb testing.TB) {
		New(tb).UserDB("users", map[string]string{"alice": "two\nlines"})
	})
	if !strings.Contains(msg, "newline") {
		t.Errorf("bad password failed with %q", msg)
	}
	t.Setenv("PATH", t.TempDir())
	msg = expectFatal(t, func(tb testing.TB) {
		New(tb).UserDB("users", map[string]string{"alice": "x"})
	})
	if !strings.Contains(msg, "db5.3_load") || !strings.Contains(msg, "db5.3-util") {
		t.Errorf("missing loader message %q does not name db5.3_load and db5.3-util", msg)
	}
}

func TestNeverWritesOutsideTempDir(t *testing.T) {
	s := New(t)
	root := filepath.Dir(s.Dir())
	paths := []string{
		s.Dir(),
		s.File("f", ""),
		s.Script("s", ""),
		s.UserDB("u", nil) + ".db",
		s.MatrixPasswd("m"),
		s.Module("pam_m", moduleSource),
	}
	for _, p := range paths {
		if !strings.HasPrefix(p, root+string(filepath.Separator)) {
			t.Errorf("%s is outside the stack's temporary directory %s", p, root)
		}
	}
}

// TestServiceLinuxPAMModule: a Linux-PAM module in a service skips the test
// on OpenPAM, which cannot load it, and is found on Linux-PAM.
func TestServiceLinuxPAMModule(t *testing.T) {
	var wrote, skipped bool
	t.Run("stress", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		New(t).Service("s", "auth required pam_stress.so")
		wrote = true
	})
	if openpam := pam.Implementation() == "OpenPAM"; wrote == openpam || skipped != openpam {
		t.Errorf("on %s: service written %v, test skipped %v", pam.Implementation(), wrote, skipped)
	}
}
