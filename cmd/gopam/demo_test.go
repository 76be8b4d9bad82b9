package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gopam/pam/pamtest"
)

func TestDemoScripted(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "the demo stack's modules pam_exec and pam_env")
	o := gopam(t, "", "demo", "--answer", demoPassword)
	if o.status != 0 {
		t.Fatalf("demo with the right password failed:\n%v", o)
	}
	for _, line := range []string{
		"gopam: successfully authenticated",
		"gopam: account management done.",
		"gopam: credential info has successfully been set.",
		"gopam: successfully opened a session",
		"gopam: session has successfully been closed.",
		"    GOPAM_DEMO=1",
		"gopam demo: login complete",
	} {
		if !hasLine(o.stdout, line) {
			t.Errorf("demo output lacks the line %q:\n%v", line, o)
		}
	}
	if strings.Contains(o.stdout, "GOPAM_DEMO_PASSWORD") {
		t.Errorf("the session's password variable was not scrubbed:\n%v", o)
	}
	if !strings.Contains(o.stdout, "Welcome to the gopam demo, ") {
		t.Errorf("no welcome message:\n%v", o)
	}
	// The temporary stack is gone.
	_, rest, _ := strings.Cut(o.stdout, "written to ")
	dir, _, _ := strings.Cut(rest, " ")
	if dir == "" {
		t.Fatalf("the demo does not say where its stack is:\n%v", o)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the demo left %s behind (%v)", dir, err)
	}
}

func TestDemoUserAndJSON(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "the demo stack's modules pam_exec and pam_env")
	o := gopam(t, "", "demo", "--json", "--user", "demo-user-x", "--answer", demoPassword)
	if o.status != 0 {
		t.Fatalf("%v", o)
	}
	r, _ := decodeReport(t, o)
	var ops []string
	for _, op := range r.Operations {
		ops = append(ops, op.Op)
		if !op.OK {
			t.Errorf("%s failed: %+v", op.Op, op)
		}
	}
	if got := strings.Join(ops, " "); got != "authenticate acct_mgmt setcred open_session close_session" {
		t.Errorf("demo operations: %s", got)
	}
	if r.Mode != "demo" || r.User != "demo-user-x" || r.Service != demoService || !r.OK {
		t.Errorf("report: %+v", r)
	}
	if strings.Contains(o.stdout, `"`+demoPassword+`"`) {
		t.Errorf("the password appears in the JSON:\n%s", o.stdout)
	}
}

func TestDemoWrongPassword(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "the demo stack's modules pam_exec and pam_env")
	o := gopam(t, "", "demo", "--answer", "not-the-password")
	if o.status != 1 {
		t.Fatalf("want exit status 1:\n%v", o)
	}
	if !hasLine(o.stderr, "gopam: Authentication failure") || !strings.Contains(o.stderr, "wrong password") {
		t.Errorf("want a clear failure:\n%v", o)
	}
	if strings.Contains(o.stdout+o.stderr, "not-the-password") {
		t.Errorf("the password typed appears in the output:\n%v", o)
	}
	if strings.Contains(o.stdout, "login complete") {
		t.Errorf("%v", o)
	}
}

// TestDemoNoTerminalNoAnswer: without a terminal and without answers the
// demo fails at once instead of waiting (a wait would end in runProgram's
// deadline, with another status and message).
func TestDemoNoTerminalNoAnswer(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "the demo stack's modules pam_exec and pam_env")
	o := gopam(t, "", "demo")
	if o.status != 1 || !strings.Contains(o.stderr, "standard input is not a terminal") || !strings.Contains(o.stderr, "--answer") {
		t.Errorf("want a clear error:\n%v", o)
	}
}

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlocking the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("reading the pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("opening the pty's slave: %v", err)
	}
	return m, s
}

// ptyOutput collects what a program writes to its terminal.
type ptyOutput struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
}

func (p *ptyOutput) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// waitFor waits until the output contains s.
func (p *ptyOutput) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q; it shows:\n%s", s, p.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readPTY collects everything the terminal shows until the program closes
// its side (reads then fail with EIO).
func readPTY(master *os.File) *ptyOutput {
	out := &ptyOutput{done: make(chan struct{})}
	go func() {
		defer close(out.done)
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			out.mu.Lock()
			out.buf.Write(b[:n])
			out.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return out
}

// runOnPTY starts gopam with a pseudo-terminal as its controlling terminal
// and standard streams, types typed after the password prompt, and returns
// everything the terminal showed and the exit status.
func runOnPTY(t *testing.T, typed string, args ...string) (string, int) {
	t.Helper()
	master, slave := openPTY(t)
	defer master.Close()
	cmd := exec.Command(gopamBin, args...)
	cmd.Env = cleanEnv()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		slave.Close()
		t.Fatalf("starting gopam on a pty: %v", err)
	}
	slave.Close()
	out := readPTY(master)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	}()

	out.waitFor(t, "Password: ")
	// Wait until ReadPassword has turned echo off: typing before that would
	// echo, which is the terminal's doing, not gopam's. (The minute only
	// guards against a hang.)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		tio, err := unix.IoctlGetTermios(int(master.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatalf("reading the terminal's mode: %v", err)
		}
		if tio.Lflag&unix.ECHO == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("echo stayed on at the password prompt")
		}
	}
	if _, err := master.Write([]byte(typed + "\r")); err != nil {
		t.Fatalf("typing: %v", err)
	}
	var err error
	select {
	case err = <-waited:
	case <-time.After(30 * time.Second):
		t.Fatalf("gopam did not finish; the terminal shows:\n%s", out.String())
	}
	select {
	case <-out.done:
	case <-time.After(5 * time.Second):
	}
	status := 0
	if ee, ok := err.(*exec.ExitError); ok {
		status = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("waiting for gopam: %v", err)
	}
	return out.String(), status
}

func TestDemoTerminalNoEcho(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "the demo stack's modules pam_exec and pam_env")
	shown, status := runOnPTY(t, demoPassword, "demo")
	if status != 0 || !strings.Contains(shown, "gopam demo: login complete") {
		t.Fatalf("the demo on a terminal failed (status %d):\n%s", status, shown)
	}
	// The banner names the demo password before the prompt; after the
	// prompt, what was typed must not come back.
	_, afterPrompt, _ := strings.Cut(shown, "Password: ")
	if strings.Contains(afterPrompt, demoPassword) {
		t.Errorf("the password typed was echoed:\n%s", shown)
	}

	typed := "typed-secret-31337"
	shown, status = runOnPTY(t, typed, "demo")
	if status != 1 || !strings.Contains(shown, "Authentication failure") {
		t.Errorf("want an authentication failure (status %d):\n%s", status, shown)
	}
	if strings.Contains(shown, typed) {
		t.Errorf("the password typed appears on the terminal:\n%s", shown)
	}
}

// TestInterruptRestoresTerminal interrupts gopam at a password prompt, when
// the terminal's echo is off, and checks that echo is back afterwards.
func TestInterruptRestoresTerminal(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "the demo stack's modules pam_exec and pam_env")
	master, slave := openPTY(t)
	defer master.Close()
	before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatalf("reading the terminal's settings: %v", err)
	}
	if before.Lflag&unix.ECHO == 0 {
		t.Fatalf("a new pty should echo")
	}
	cmd := exec.Command(gopamBin, "demo")
	cmd.Env = cleanEnv()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting gopam on a pty: %v", err)
	}
	out := readPTY(master)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	out.waitFor(t, "Password: ")
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		if err == nil && st.Lflag&unix.ECHO == 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("echo was never turned off at the password prompt")
		}
		time.Sleep(10 * time.Millisecond)
	}
	master.Write([]byte{3}) // Ctrl-C
	select {
	case err = <-waited:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("gopam did not stop on Ctrl-C:\n%s", out.String())
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitSignal {
		t.Errorf("want exit status %d after Ctrl-C, got %v", exitSignal, err)
	}
	after, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatalf("reading the terminal's settings: %v", err)
	}
	if after.Lflag&unix.ECHO == 0 {
		t.Errorf("gopam left the terminal without echo")
	}
	slave.Close()
}
