package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// The test account: pam_userdb checks the password, pam_gotest asks for the
// one-time code with echo on.
const (
	testUser     = "alice"
	testPassword = "wonderland-7"
	testCode     = "424242"
	testNewPW    = "looking-glass-9"
	codePrompt   = "One-time code: "
)

// Bounds on waiting for an event. None decides a verdict: each is far
// beyond what the step takes on a loaded machine (an ssh login takes well
// under a second here), so that a slow run still passes.
const (
	sshTimeout = 5 * time.Minute
	waitBound  = 2 * time.Minute
)

// lockedBuffer collects the server's log, which connection goroutines write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// stacks are the private PAM stacks of the tests, one confdir.
type stacks struct {
	dir string
	// otp: password (pam_userdb), then the one-time code (pam_gotest, echo
	// on); the session sets a variable and echoes PAM_RHOST.
	otp string
	// expired: the password, then pam_stress's account check says the
	// password has expired and its password module changes it.
	expired string
	// password: the password only.
	password string
}

func newStacks(t *testing.T) stacks {
	t.Helper()
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	db := st.UserDB("users", map[string]string{testUser: testPassword})
	userdb := "pam_userdb.so crypt=none db=" + db
	session := []string{
		"session required " + mod + " setenv=SSHGATE_SESSION=open",
		"session optional pam_echo.so session for %u from rhost %H",
	}
	return stacks{
		dir: st.Dir(),
		otp: st.Service("gate-otp", append([]string{
			"auth optional pam_echo.so Welcome to the test gate",
			"auth requisite " + userdb,
			"auth required " + mod + " [echoprompt=" + codePrompt + "] expect=" + testCode,
			"account required pam_permit.so",
		}, session...)...),
		expired: st.Service("gate-expired", append([]string{
			"auth requisite " + userdb,
			"account required pam_stress.so expired",
			"password required pam_stress.so",
		}, session...)...),
		password: st.Service("gate-password", append([]string{
			"auth requisite " + userdb,
			"account required pam_permit.so",
		}, session...)...),
	}
}

// gate is a server under test, on a random loopback port.
type gate struct {
	*server
	addr       string // host:port
	port       string
	knownHosts string // a known_hosts file naming the server's key
	hostKey    ssh.PublicKey
	log        *lockedBuffer
}

func startGate(t *testing.T, confDir, service string, opt options) *gate {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if opt.Grace == 0 {
		opt.Grace = 10 * time.Minute // a loaded machine's logins are slow
	}
	logs := new(lockedBuffer)
	opt.Service, opt.ConfDir, opt.HostKey = service, confDir, signer
	opt.Log = log.New(logs, "", log.Lmicroseconds)
	s := newServer(opt)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	g := &gate{server: s, addr: ln.Addr().String(), hostKey: signer.PublicKey(), log: logs}
	_, g.port, _ = net.SplitHostPort(g.addr)
	g.knownHosts = filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{g.addr}, signer.PublicKey())
	if err := os.WriteFile(g.knownHosts, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if err := <-served; !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve returned %v, want net.ErrClosed", err)
		}
		if n, _ := s.InFlight(); n != 0 {
			t.Errorf("%d transactions in flight after Close", n)
		}
		for _, secret := range []string{testPassword, testCode, testNewPW} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("the server logged the answer %q", secret)
			}
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	return g
}

// waitInFlight waits until the server counts want transactions in flight.
// It waits on the server's notifications; bound only ends a hung test.
func (g *gate) waitInFlight(t *testing.T, want int, bound time.Duration) {
	t.Helper()
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	for {
		n, changed := g.InFlight()
		if n == want {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("still %d transactions in flight after %v, want %d", n, bound, want)
		}
	}
}

// waitLog waits until the server log holds want. The log has no
// notification, so it is read every few milliseconds; bound only ends a
// hung test.
func waitLog(t *testing.T, g *gate, want string) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for !strings.Contains(g.log.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the server log does not show %q after %v:\n%s", want, waitBound, g.log)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sshPath is where Debian's openssh-client installs the client.
const sshPath = "/usr/bin/ssh"

// askpass answers ssh's prompts from the environment and appends every
// prompt it is asked to $ASK_LOG. With $ASK_HANG set (a FIFO) it writes the
// code prompt there instead of answering and then never answers.
const askpass = `#!/bin/sh
printf '%s\n' "$1" >> "$ASK_LOG"
case "$1" in
*'One-time code'*)
	if [ -n "$ASK_HANG" ]; then
		printf '%s\n' "$1" > "$ASK_HANG"
		exec sleep 3600
	fi
	printf '%s\n' "$ASK_CODE" ;;
*'new STRESS password'*) printf '%s\n' "$ASK_NEW" ;;
*[Pp]assword*) printf '%s\n' "$ASK_PASSWORD" ;;
*) exit 1 ;;
esac
`

// client runs the real OpenSSH client against a gate.
type client struct {
	g        *gate
	method   string // PreferredAuthentications
	user     string
	password string
	hang     string // ASK_HANG
}

type sshResult struct {
	status         int
	stdout, stderr string
	prompts        []string // what ssh asked askpass, in order
	err            error
}

func (r sshResult) String() string {
	return fmt.Sprintf("exit status %d (%v)\nstdout:\n%s\nstderr:\n%s\nprompts: %q", r.status, r.err, r.stdout, r.stderr, r.prompts)
}

// command builds the ssh command line. It may be called from any goroutine;
// dir is a private directory for the run (HOME, askpass, its log).
func (c client) command(ctx context.Context, dir string) (*exec.Cmd, string, error) {
	ask := filepath.Join(dir, "askpass")
	if err := os.WriteFile(ask, []byte(askpass), 0o755); err != nil {
		return nil, "", err
	}
	promptLog := filepath.Join(dir, "prompts")
	user, method := c.user, c.method
	if user == "" {
		user = testUser
	}
	if method == "" {
		method = "keyboard-interactive"
	}
	cmd := exec.CommandContext(ctx, sshPath,
		"-F", "/dev/null", "-T", "-p", c.g.port,
		"-o", "PreferredAuthentications="+method,
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile="+c.g.knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "UpdateHostKeys=no",
		"-o", "NumberOfPasswordPrompts=1",
		"-o", "ConnectTimeout=120",
		user+"@127.0.0.1", "greet")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir, // a private home: nobody's /nonexistent would do, but warn
		"DISPLAY=:0",
		"SSH_ASKPASS=" + ask,
		"SSH_ASKPASS_REQUIRE=force",
		"ASK_LOG=" + promptLog,
		"ASK_PASSWORD=" + c.password,
		"ASK_CODE=" + testCode,
		"ASK_NEW=" + testNewPW,
		"ASK_HANG=" + c.hang,
	}
	cmd.Stdin = nil // /dev/null
	// ssh in a session of its own, without a terminal, so that it asks
	// askpass; killing the process group takes askpass along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	return cmd, promptLog, nil
}

func needSSH(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(sshPath); err != nil {
		t.Fatalf("this test drives the real OpenSSH client and needs %s: install Debian package openssh-client (apt-get install -y openssh-client): %v", sshPath, err)
	}
}

// run runs ssh to the end; safe to call from any goroutine.
func (c client) run(dir string) sshResult {
	ctx, cancel := context.WithTimeout(context.Background(), sshTimeout)
	defer cancel()
	cmd, promptLog, err := c.command(ctx, dir)
	if err != nil {
		return sshResult{status: -1, err: err}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	r := sshResult{status: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String(), err: err}
	if b, rerr := os.ReadFile(promptLog); rerr == nil {
		r.prompts = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	return r
}

func (c client) runT(t *testing.T) sshResult {
	t.Helper()
	needSSH(t)
	return c.run(t.TempDir())
}

// wantGreeting checks a successful login's exit status and greeting.
func wantGreeting(t *testing.T, r sshResult, service string) {
	t.Helper()
	for _, want := range []string{
		"Hello, " + testUser + ". sshgate authenticated you with PAM service " + service + ".",
		"    SSHGATE_SESSION=open\n",
		"session for " + testUser + " from rhost 127.0.0.1\n",
	} {
		if r.status != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("want exit status 0 and %q in the output; got %v", want, r)
		}
	}
}

// TestSSHLogin: the right password and code log in (acceptance 1).
func TestSSHLogin(t *testing.T) {
	st := newStacks(t)
	g := startGate(t, st.dir, st.otp, options{})
	r := client{g: g, password: testPassword}.runT(t)
	wantGreeting(t, r, st.otp)
	want := []string{"(alice@127.0.0.1) Password: ", "(alice@127.0.0.1) " + codePrompt}
	if strings.Join(r.prompts, "|") != strings.Join(want, "|") {
		t.Errorf("ssh asked %q, want %q", r.prompts, want)
	}
	// pam_echo's message was the instruction of the first challenge.
	if !strings.Contains(r.stderr, "Welcome to the test gate") {
		t.Errorf("the first challenge's instruction is missing:\n%s", r)
	}
	g.waitInFlight(t, 0, waitBound)
	for _, want := range []string{`logged in as "alice"`, `session of "alice" opened`, `session of "alice" closed`} {
		if !strings.Contains(g.log.String(), want) {
			t.Errorf("the server log lacks %q", want)
		}
	}
}

// TestSSHWrongPassword: a wrong password is refused (acceptance 2), and so
// is a wrong user.
func TestSSHWrongPassword(t *testing.T) {
	st := newStacks(t)
	g := startGate(t, st.dir, st.otp, options{})
	r := client{g: g, password: "not-" + testPassword}.runT(t)
	if r.status != 255 || !strings.Contains(r.stderr, "Permission denied") {
		t.Fatalf("want exit status 255 and Permission denied; got %v", r)
	}
	if len(r.prompts) != 1 {
		t.Errorf("pam_userdb is requisite: want one prompt, got %q", r.prompts)
	}
	if !strings.Contains(g.log.String(), `keyboard-interactive for "alice" failed: PAM_AUTH_ERR`) {
		t.Errorf("the server log does not show PAM_AUTH_ERR:\n%s", g.log)
	}
	r = client{g: g, user: "mallory", password: testPassword}.runT(t)
	if r.status != 255 || !strings.Contains(r.stderr, "Permission denied") {
		t.Fatalf("unknown user: want exit status 255 and Permission denied; got %v", r)
	}
	if !strings.Contains(g.log.String(), `keyboard-interactive for "mallory" failed: PAM_USER_UNKNOWN`) {
		t.Errorf("the server log does not show PAM_USER_UNKNOWN:\n%s", g.log)
	}
	g.waitInFlight(t, 0, waitBound)
}

// TestSSHExpiredPassword: an expired password is changed within the same
// keyboard-interactive exchange, and the login completes (acceptance 3).
func TestSSHExpiredPassword(t *testing.T) {
	st := newStacks(t)
	g := startGate(t, st.dir, st.expired, options{})
	r := client{g: g, password: testPassword}.runT(t)
	wantGreeting(t, r, st.expired)
	want := []string{"(alice@127.0.0.1) Password: ", "(alice@127.0.0.1) Enter new STRESS password: ", "(alice@127.0.0.1) Retype new STRESS password: "}
	if strings.Join(r.prompts, "|") != strings.Join(want, "|") {
		t.Errorf("ssh asked %q, want %q", r.prompts, want)
	}
	if !strings.Contains(r.stderr, "Changing STRESS password for alice.") {
		t.Errorf("pam_stress's message was not the instruction of the change challenge:\n%s", r)
	}
	logs := g.log.String()
	if strings.Count(logs, "connection from") != 1 || !strings.Contains(logs, "the password has expired: changing it") {
		t.Errorf("want one connection that changed the password:\n%s", logs)
	}
}

// TestSSHPasswordMethod: the password method logs in on a password-only
// stack (acceptance 4), refuses a wrong password, and refuses a stack that
// prompts again.
func TestSSHPasswordMethod(t *testing.T) {
	st := newStacks(t)
	g := startGate(t, st.dir, st.password, options{})
	r := client{g: g, method: "password", password: testPassword}.runT(t)
	wantGreeting(t, r, st.password)
	if len(r.prompts) != 1 || !strings.HasSuffix(r.prompts[0], "alice@127.0.0.1's password: ") {
		t.Errorf("want ssh's own password prompt; got %q", r.prompts)
	}
	if !strings.Contains(g.log.String(), `password for "alice": logged in as "alice"`) {
		t.Errorf("the server log does not show a password login:\n%s", g.log)
	}
	r = client{g: g, method: "password", password: "wrong"}.runT(t)
	if r.status != 255 || !strings.Contains(r.stderr, "Permission denied") {
		t.Fatalf("wrong password: want exit status 255 and Permission denied; got %v", r)
	}

	otp := startGate(t, st.dir, st.otp, options{})
	r = client{g: otp, method: "password", password: testPassword}.runT(t)
	if r.status != 255 || !strings.Contains(r.stderr, "Permission denied") {
		t.Fatalf("a stack with a second prompt: want exit status 255; got %v", r)
	}
	if !strings.Contains(otp.log.String(), "answers one password prompt only") {
		t.Errorf("the server log does not say why:\n%s", otp.log)
	}
}

// startHung starts ssh on the otp stack and waits until askpass has been
// asked for the code: the client is then mid-prompt, never to answer.
func startHung(t *testing.T, g *gate) *exec.Cmd {
	t.Helper()
	needSSH(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "hang")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), sshTimeout)
	t.Cleanup(cancel)
	cmd, _, err := client{g: g, password: testPassword, hang: fifo}.command(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	asked := make(chan string, 1)
	go func() {
		b, _ := os.ReadFile(fifo) // opens when askpass writes the prompt
		asked <- string(b)
	}()
	select {
	case p := <-asked:
		if !strings.Contains(p, codePrompt) {
			t.Fatalf("askpass was asked %q", p)
		}
	case err := <-exited:
		// Unblock the reader, then fail.
		if f, oerr := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); oerr == nil {
			f.Close()
		}
		t.Fatalf("ssh ended before the code prompt: %v\n%s", err, out.String())
	case <-time.After(waitBound):
		t.Fatalf("no code prompt within %v", waitBound)
	}
	return cmd
}

// TestSSHClientKilled: a client killed while the code prompt waits for it
// cancels the transaction (acceptance 5). The idle timeout is far away, so
// only the disconnect can end it.
func TestSSHClientKilled(t *testing.T) {
	st := newStacks(t)
	g := startGate(t, st.dir, st.otp, options{Idle: time.Hour})
	cmd := startHung(t, g)
	if n, _ := g.InFlight(); n != 1 {
		t.Fatalf("%d transactions in flight at the prompt, want 1", n)
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	g.waitInFlight(t, 0, waitBound)
	// The count drops just before the line is written.
	waitLog(t, g, `(the client disconnected) (0 in flight)`)
	// The failure is PAM_CONV_ERR from the module, or the abandoned call
	// when the context ended first.
	if !regexp.MustCompile(`keyboard-interactive for "alice" failed: .*\(the client disconnected\) \(0 in flight\)`).MatchString(g.log.String()) {
		t.Errorf("the server log does not show the login cancelled by the disconnect:\n%s", g.log)
	}
}

// TestSSHIdleTimeout: a client that stays silent at a prompt past the idle
// timeout loses its transaction (acceptance 5). The verdict is the count
// reaching 0, an event; the bound is 40 times the timeout. The timeout is
// long enough for the password challenge before it to be answered on a
// loaded machine (it takes milliseconds).
func TestSSHIdleTimeout(t *testing.T) {
	const idle = 10 * time.Second
	st := newStacks(t)
	g := startGate(t, st.dir, st.otp, options{Idle: idle})
	startHung(t, g)
	g.waitInFlight(t, 0, 40*idle)
	// The count drops just before the line is written.
	waitLog(t, g, "(the client did not answer within the idle timeout) (0 in flight)")
	if !strings.Contains(g.log.String(), `keyboard-interactive for "alice" failed: `) {
		t.Errorf("the server log does not show the idle timeout:\n%s", g.log)
	}
}

// TestSSHConcurrentLogins: 50 logins, ten clients at a time against a bound
// of six transactions in flight, all succeed (acceptance 6).
func TestSSHConcurrentLogins(t *testing.T) {
	const logins, clients, maxTxns = 50, 10, 6
	needSSH(t)
	st := newStacks(t)
	g := startGate(t, st.dir, st.otp, options{MaxTxns: maxTxns, Idle: 5 * time.Minute})
	dirs := make([]string, logins)
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	results := make([]sshResult, logins)
	sem := make(chan struct{}, clients)
	var wg sync.WaitGroup
	for i := range logins {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = client{g: g, password: testPassword}.run(dirs[i])
		}()
	}
	wg.Wait()
	for i, r := range results {
		t.Run(strconv.Itoa(i), func(t *testing.T) { wantGreeting(t, r, st.otp) })
	}
	g.waitInFlight(t, 0, waitBound)
	logs := g.log.String()
	if n := strings.Count(logs, `session of "alice" closed`); n != logins {
		t.Errorf("%d sessions closed, want %d", n, logins)
	}
	for _, m := range regexp.MustCompile(`\((\d+) in flight\)`).FindAllStringSubmatch(logs, -1) {
		if n, _ := strconv.Atoi(m[1]); n > maxTxns {
			t.Errorf("%d transactions in flight, more than the bound %d", n, maxTxns)
		}
	}
}
