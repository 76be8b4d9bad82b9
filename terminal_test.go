package pam_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
)

// The terminal tests run this test binary again as a child whose standard
// input is a pseudo-terminal (or not a terminal at all) and whose
// conversation is the default one.
const childEnv = "GOPAM_TEST_TERMINAL_CHILD"

// threadsEnv names the environment variable that runs the suite under the
// strict ThreadPerHandle policy: GOPAM_TEST_THREADS=strict.
const threadsEnv = "GOPAM_TEST_THREADS"

func TestMain(m *testing.M) {
	switch v := os.Getenv(threadsEnv); v {
	case "", "default":
	case "strict":
		pam.SetDefaultThreads(pam.ThreadPerHandle)
	default:
		fmt.Fprintf(os.Stderr, "%s=%q: want default or strict\n", threadsEnv, v)
		os.Exit(2)
	}
	if dir := os.Getenv(childEnv); dir != "" {
		terminalChild(dir)
		return
	}
	os.Exit(m.Run())
}

// strictSuite reports whether the suite runs under ThreadPerHandle.
func strictSuite() bool { return os.Getenv(threadsEnv) == "strict" }

// terminalModeEnv chooses what terminalChild does (see terminalChild).
const terminalModeEnv = "GOPAM_TEST_TERMINAL_MODE"

// terminalChild runs in a child whose standard input is a terminal (or
// not), with the default conversation, and prints its results on standard
// output. Modes: "" authenticates alice on the stack "term"; "zero" uses
// the zero Config's user and conversation on the stack "me"; "cancel"
// authenticates alice on "cancel" with a context that SIGUSR1 ends, then
// reads one more line with an echo-on prompt "Next: ".
func terminalChild(confdir string) {
	ctx := context.Background()
	cfg := pam.Config{Service: "term", User: "alice", ConfDir: confdir}
	mode := os.Getenv(terminalModeEnv)
	switch mode {
	case "zero":
		cfg = pam.Config{Service: "me", ConfDir: confdir}
	case "cancel":
		cfg.Service = "cancel"
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, syscall.SIGUSR1)
		defer stop()
	}
	h, err := pam.Start(cfg)
	if err == nil {
		start := time.Now()
		err = h.Authenticate(ctx, 0)
		fmt.Fprintf(os.Stdout, "took=%v\n", time.Since(start).Round(time.Millisecond))
		h.Close()
	}
	fmt.Fprintf(os.Stdout, "RESULT: %v\n", err)
	if mode == "cancel" {
		r, err := pam.TerminalConversation{}.Converse(context.Background(), []pam.Message{{Style: pam.PromptEchoOn, Text: "Next: "}})
		if err != nil {
			fmt.Fprintf(os.Stdout, "NEXT failed: %v\n", err)
			return
		}
		fmt.Fprintf(os.Stdout, "NEXT: %s\n", r[0].Data)
	}
}

func terminalStack(t *testing.T) string {
	pamtest.LinuxPAMOnly(t, "modules pam_echo and pam_exec")
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	fail := st.Script("fail.sh", "exit 3\n")
	st.Service("term",
		"auth optional pam_echo.so welcome-info",
		"auth optional pam_exec.so "+fail,
		"auth required "+mod+" [echoprompt=Name: ] expect=alice",
		"auth required "+mod+" [prompt=Password: ] expect=hunter2")
	st.Service("me",
		"auth required pam_succeed_if.so quiet user = "+currentUser(t),
		"auth required "+mod+" [prompt=Password: ] expect=hunter2")
	st.Service("cancel", "auth required "+mod+" [prompt=Password: ] expect=hunter2")
	return st.Dir()
}

// terminalRun is a child running terminalChild in a mode, with a pty as its
// terminal (standard input and error) and a file as its standard output.
type terminalRun struct {
	cmd    *exec.Cmd
	master *os.File
	slave  int // a descriptor of the pty's slave, kept to read its modes
	screen syncBuffer
	out    string // the standard output file
}

func startTerminalChild(t *testing.T, mode, confdir string) *terminalRun {
	t.Helper()
	master, slave := openPTY(t)
	r := &terminalRun{master: master, out: filepath.Join(t.TempDir(), "stdout")}
	f, err := os.Create(r.out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r.cmd = exec.Command(os.Args[0], "-test.run=^$")
	r.cmd.Env = append(os.Environ(), childEnv+"="+confdir, terminalModeEnv+"="+mode)
	r.cmd.Stdin, r.cmd.Stdout, r.cmd.Stderr = slave, f, slave
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if r.slave, err = unix.Dup(int(slave.Fd())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(r.slave) })
	slave.Close()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			r.screen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	return r
}

// wait waits for the child and returns its standard output.
func (r *terminalRun) wait(t *testing.T) string {
	t.Helper()
	err := r.cmd.Wait()
	out, rerr := os.ReadFile(r.out)
	if err != nil || rerr != nil {
		t.Fatalf("child: %v %v\nterminal:\n%s\nstdout:\n%s", err, rerr, r.screen.String(), out)
	}
	return string(out)
}

// openPTY returns a pseudo-terminal's master and slave.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening /dev/ptmx: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening the pty slave: %v", err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// syncBuffer collects what a reader produces.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until buf holds want.
func waitFor(t *testing.T, buf *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(buf.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("waited for %q; the terminal shows:\n%s", want, buf.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTerminalConversation is acceptance 1(d), first part: with standard
// output redirected to a file, the prompts and messages appear on the
// terminal, the password without echo, and the file holds only what the
// program printed.
func TestTerminalConversation(t *testing.T) {
	r := startTerminalChild(t, "", terminalStack(t))
	waitFor(t, &r.screen, "Name: ")
	r.master.Write([]byte("alice\n"))
	waitFor(t, &r.screen, "Password: ")
	r.master.Write([]byte("hunter2\n"))
	out := r.wait(t)
	if !strings.Contains(out, "RESULT: <nil>") {
		t.Fatalf("stdout: %q; terminal:\n%s", out, r.screen.String())
	}
	for _, s := range []string{"Name:", "Password:", "welcome-info", "exit code 3", "alice"} {
		if strings.Contains(out, s) {
			t.Errorf("%q reached standard output: %q", s, out)
		}
	}
	screen := r.screen.String()
	if strings.Contains(screen, "hunter2") {
		t.Errorf("the echo-off answer was echoed:\n%s", screen)
	}
	for _, s := range []string{"welcome-info", "exit code 3", "alice"} {
		if !strings.Contains(screen, s) {
			t.Errorf("%q is not on the terminal:\n%s", s, screen)
		}
	}
}

// TestTerminalZeroConfig: the zero Config still means the current user,
// interactively (pam_succeed_if checks the user; the password is asked on the
// terminal).
func TestTerminalZeroConfig(t *testing.T) {
	r := startTerminalChild(t, "zero", terminalStack(t))
	waitFor(t, &r.screen, "Password: ")
	r.master.Write([]byte("hunter2\n"))
	if out := r.wait(t); !strings.Contains(out, "RESULT: <nil>") {
		t.Fatalf("stdout: %q; terminal:\n%s", out, r.screen.String())
	}
}

// TestTerminalCancelRestoresEcho is acceptance 1(d), second part: when the
// context ends during a password read, the terminal has echo on again and
// the next line typed is read by the program, not by an abandoned read.
func TestTerminalCancelRestoresEcho(t *testing.T) {
	r := startTerminalChild(t, "cancel", terminalStack(t))
	waitFor(t, &r.screen, "Password: ")
	if err := r.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, &r.screen, "Next: ")
	tio, err := unix.IoctlGetTermios(r.slave, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&unix.ECHO == 0 {
		t.Errorf("echo is off after the cancelled password read")
	}
	r.master.Write([]byte("typed-after\n"))
	out := r.wait(t)
	if !strings.Contains(out, "RESULT: ") || !strings.Contains(out, "signal received") {
		t.Errorf("want the authentication to end with the context: %q", out)
	}
	if !strings.Contains(out, "NEXT: typed-after\n") {
		t.Errorf("the line typed after the cancel was not read by the program: %q; terminal:\n%s", out, r.screen.String())
	}
	if !strings.Contains(r.screen.String(), "Next: typed-after") {
		t.Errorf("the next line was not echoed:\n%s", r.screen.String())
	}
}

func TestTerminalConversationWithoutTerminal(t *testing.T) {
	confdir := terminalStack(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+confdir)
	cmd.Stdin = nil // /dev/null
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v (killed if it hung waiting for input)\n%s%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "RESULT: ") || !strings.Contains(out, "not a terminal") || !strings.Contains(out, `"Name: "`) {
		t.Errorf("want a failure naming the missing terminal and the prompt, got:\n%s", out)
	}
	if !strings.Contains(out, "Conversation error") {
		t.Errorf("want a conversation error:\n%s", out)
	}
}
