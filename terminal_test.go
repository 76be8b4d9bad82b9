package pam_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
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

// terminalChild authenticates with the zero Config's conversation.
func terminalChild(confdir string) {
	h, err := pam.Start(pam.Config{Service: "term", User: "alice", ConfDir: confdir})
	if err == nil {
		start := time.Now()
		err = h.Authenticate(context.Background(), 0)
		fmt.Fprintf(os.Stdout, "took=%v\n", time.Since(start).Round(time.Millisecond))
		h.Close()
	}
	fmt.Fprintf(os.Stdout, "RESULT: %v\n", err)
}

func terminalStack(t *testing.T) string {
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	fail := st.Script("fail.sh", "exit 3\n")
	st.Service("term",
		"auth optional pam_echo.so welcome-info",
		"auth optional pam_exec.so "+fail,
		"auth required "+mod+" [echoprompt=Name: ] expect=alice",
		"auth required "+mod+" [prompt=Password: ] expect=hunter2")
	return st.Dir()
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

func TestTerminalConversation(t *testing.T) {
	confdir := terminalStack(t)
	master, slave := openPTY(t)
	var stderr syncBuffer
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+confdir)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var screen syncBuffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			screen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	waitFor(t, &screen, "Name: ")
	master.Write([]byte("alice\n"))
	waitFor(t, &screen, "Password: ")
	master.Write([]byte("hunter2\n"))
	waitFor(t, &screen, "RESULT: ")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\nterminal:\n%s\nstderr:\n%s", err, screen.String(), stderr.String())
	}
	waitFor(t, &screen, "RESULT: <nil>")
	out := screen.String()
	if strings.Contains(out, "hunter2") {
		t.Errorf("the echo-off answer was echoed:\n%s", out)
	}
	if !strings.Contains(out, "alice") {
		t.Errorf("the echo-on answer was not echoed:\n%s", out)
	}
	if !strings.Contains(out, "welcome-info") {
		t.Errorf("the info message is not on standard output:\n%s", out)
	}
	if strings.Contains(stderr.String(), "welcome-info") || !strings.Contains(stderr.String(), "exit code 3") {
		t.Errorf("standard error should hold pam_exec's error and nothing else:\n%s", stderr.String())
	}
	if strings.Contains(out, "exit code 3") {
		t.Errorf("the error message went to standard output:\n%s", out)
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
