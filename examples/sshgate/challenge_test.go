package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// A challenge as the Go SSH client sees it.
type challenge struct {
	Instruction string
	Questions   []string
	Echos       []bool
}

// goLogin logs in to g with the x/crypto client, answering each challenge
// with answer, and returns the challenges and, when the login succeeds,
// the session's output. It may be called from any goroutine.
func goLogin(g *gate, user string, answer func(questions []string) []string) ([]challenge, string, error) {
	var seen []challenge
	cfg := &ssh.ClientConfig{
		User: user,
		Auth: []ssh.AuthMethod{ssh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
			seen = append(seen, challenge{instruction, questions, echos})
			return answer(questions), nil
		})},
		HostKeyCallback: ssh.FixedHostKey(g.hostKey),
		Timeout:         sshTimeout,
	}
	c, err := ssh.Dial("tcp", g.addr, cfg)
	if err != nil {
		return seen, "", err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return seen, "", err
	}
	out, err := s.Output("greet")
	return seen, string(out), err
}

// answers answers the test stacks' prompts.
func answers(password, code, newPW, retype string) func([]string) []string {
	return func(qs []string) []string {
		var as []string
		for _, q := range qs {
			switch q {
			case "Password: ":
				as = append(as, password)
			case codePrompt:
				as = append(as, code)
			case "Enter new STRESS password: ":
				as = append(as, newPW)
			case "Retype new STRESS password: ":
				as = append(as, retype)
			default:
				as = append(as, "unexpected prompt")
			}
		}
		return as
	}
}

// TestChallenges checks the mapping of PAM batches to challenges: one
// challenge per batch, echo flags from the prompt styles, messages as the
// instruction of the next challenge or of a challenge without questions.
func TestChallenges(t *testing.T) {
	st := newStacks(t)
	t.Run("otp", func(t *testing.T) {
		g := startGate(t, st.dir, st.otp, options{})
		seen, out, err := goLogin(g, testUser, answers(testPassword, testCode, "", ""))
		if err != nil {
			t.Fatal(err)
		}
		want := []challenge{
			{"Welcome to the test gate", []string{"Password: "}, []bool{false}},
			{"", []string{codePrompt}, []bool{true}},
		}
		if !reflect.DeepEqual(seen, want) {
			t.Errorf("challenges %+v, want %+v", seen, want)
		}
		if !strings.Contains(out, "SSHGATE_SESSION=open") || !strings.Contains(out, "from rhost 127.0.0.1") {
			t.Errorf("greeting:\n%s", out)
		}
	})
	t.Run("wrong code", func(t *testing.T) {
		g := startGate(t, st.dir, st.otp, options{})
		_, _, err := goLogin(g, testUser, answers(testPassword, "000000", "", ""))
		if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
			t.Fatalf("login with a wrong code: %v", err)
		}
		if !strings.Contains(g.log.String(), "failed: PAM_AUTH_ERR") {
			t.Errorf("no PAM_AUTH_ERR in the log:\n%s", g.log)
		}
	})
	t.Run("expired", func(t *testing.T) {
		g := startGate(t, st.dir, st.expired, options{})
		seen, out, err := goLogin(g, testUser, answers(testPassword, "", testNewPW, testNewPW))
		if err != nil {
			t.Fatal(err)
		}
		want := []challenge{
			{"", []string{"Password: "}, []bool{false}},
			{"Changing STRESS password for alice.", []string{"Enter new STRESS password: ", "Retype new STRESS password: "}, []bool{false, false}},
		}
		if !reflect.DeepEqual(seen, want) {
			t.Errorf("challenges %+v, want %+v", seen, want)
		}
		if !strings.Contains(out, "Hello, alice.") {
			t.Errorf("greeting:\n%s", out)
		}
	})
	t.Run("mistyped new password", func(t *testing.T) {
		g := startGate(t, st.dir, st.expired, options{})
		seen, _, err := goLogin(g, testUser, answers(testPassword, "", testNewPW, "other"))
		if err == nil {
			t.Fatal("a mistyped new password logged in")
		}
		// The module's error came last, in a challenge of its own.
		if len(seen) != 3 || !reflect.DeepEqual(seen[2], challenge{"Verification mis-typed; password unchanged", nil, nil}) {
			t.Errorf("challenges %+v, want a last one with the error and no questions", seen)
		}
		if !strings.Contains(g.log.String(), "failed: PAM_AUTHTOK_ERR") {
			t.Errorf("no PAM_AUTHTOK_ERR in the log:\n%s", g.log)
		}
	})
}

// TestBadInput: untrusted user names are quoted in the log, an empty user
// name is refused (pam.Config would take it for the server's own user), and
// an overlong answer fails the login without harm.
func TestBadInput(t *testing.T) {
	st := newStacks(t)
	g := startGate(t, st.dir, st.otp, options{})
	evil := "al\x1b[31mice\nconn 99: logged in"
	if _, _, err := goLogin(g, evil, answers(testPassword, testCode, "", "")); err == nil {
		t.Fatal("an unknown user logged in")
	}
	logs := g.log.String()
	if strings.ContainsAny(logs, "\x1b") || strings.Contains(logs, "\nconn 99") {
		t.Errorf("the log holds the raw user name:\n%s", logs)
	}
	if !strings.Contains(logs, `"al\x1b[31mice\nconn 99: logged in"`) {
		t.Errorf("the log lacks the quoted user name:\n%s", logs)
	}
	if _, _, err := goLogin(g, "", answers(testPassword, testCode, "", "")); err == nil {
		t.Fatal("an empty user name logged in")
	}
	if !strings.Contains(g.log.String(), "refused an empty user name") {
		t.Errorf("the log does not show the empty user name refused:\n%s", g.log)
	}
	long := strings.Repeat("x", maxAnswer+1)
	if _, _, err := goLogin(g, testUser, func(qs []string) []string { return []string{long} }); err == nil {
		t.Fatal("an overlong answer logged in")
	}
	if !strings.Contains(g.log.String(), "more than 512") {
		t.Errorf("the log does not show the overlong answer refused:\n%s", g.log)
	}
	nul := func(qs []string) []string { return []string{testPassword[:3] + "\x00" + testPassword[3:]} }
	if _, _, err := goLogin(g, testUser, nul); err == nil {
		t.Fatal("an answer with a NUL byte logged in")
	}
	if !regexp.MustCompile(`failed: PAM_CONV_ERR .*NUL`).MatchString(g.log.String()) {
		t.Errorf("the log does not show the NUL answer refused:\n%s", g.log)
	}
	// The server still works.
	if _, out, err := goLogin(g, testUser, answers(testPassword, testCode, "", "")); err != nil || !strings.Contains(out, "Hello, alice.") {
		t.Fatalf("login after bad input: %v\n%s", err, out)
	}
	g.waitInFlight(t, 0, waitBound)
}

// TestSlotBound: with the only slot held by a client at a prompt, another
// login waits for the slot and runs once the first client goes away; no more
// transactions than the bound are ever in flight.
func TestSlotBound(t *testing.T) {
	st := newStacks(t)
	g := startGate(t, st.dir, st.otp, options{MaxTxns: 1, Idle: time.Hour})
	hung := startHung(t, g)
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		_, out, err := goLogin(g, testUser, answers(testPassword, testCode, "", ""))
		done <- result{out, err}
	}()
	waitLog(t, g, `keyboard-interactive for "alice": waiting for a transaction slot`)
	if n, _ := g.InFlight(); n != 1 {
		t.Fatalf("%d in flight, want 1", n)
	}
	syscall.Kill(-hung.Process.Pid, syscall.SIGKILL)
	r := <-done
	if r.err != nil || !strings.Contains(r.out, "Hello, alice.") {
		t.Fatalf("the waiting login: %v\n%s", r.err, r.out)
	}
	g.waitInFlight(t, 0, waitBound)
	for _, m := range regexp.MustCompile(`\((\d+) in flight\)`).FindAllStringSubmatch(g.log.String(), -1) {
		if m[1] != "0" && m[1] != "1" {
			t.Errorf("%s transactions in flight, more than the bound 1", m[1])
		}
	}
}

func TestCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:2222": true, "[::1]:0": true, "localhost:22": true, "127.9.9.9:1": true,
		"0.0.0.0:2222": false, ":2222": false, "10.0.0.1:22": false, "example.com:22": false, "garbage": false,
	} {
		if err := checkLoopback(addr); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"hello from pam_env": "hello from pam_env",
		"é ü":                "é ü",
		"a\x1b[2Jb":          `"a\x1b[2Jb"`,
		"line\nbreak":        `"line\nbreak"`,
		"bad\xffutf8":        `"bad\xffutf8"`,
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"Welcome\n\tto the gate": "Welcome\n\tto the gate",
		"a\x1b]0;title\a":        `"a\x1b]0;title\a"`,
		"carriage\rreturn":       `"carriage\rreturn"`,
	} {
		if got := message(in); got != want {
			t.Errorf("message(%q) = %s, want %s", in, got, want)
		}
	}
	if got := message(strings.Repeat("x", 513)); !strings.HasSuffix(got, "...(257 more bytes)") {
		t.Errorf("message of 513 bytes = %s", got)
	}
	if got := printable(strings.Repeat("x", 300)); !strings.HasSuffix(got, "...(44 more bytes)") {
		t.Errorf("printable of 300 bytes = %s", got)
	}
}

// TestDemoStack logs in on the embedded demo stack, as `go run .` serves it.
func TestDemoStack(t *testing.T) {
	confDir, err := writeDemoStack(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	g := startGate(t, confDir, demoService, options{})
	answer := func(pw string) func([]string) []string {
		return func(qs []string) []string {
			if len(qs) != 1 || qs[0] != "Password: " {
				return []string{"unexpected prompts"}
			}
			return []string{pw}
		}
	}
	seen, out, err := goLogin(g, demoUser, answer(demoPassword))
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || !strings.Contains(seen[0].Instruction, "gopam sshgate demo") {
		t.Errorf("challenges %+v, want one with pam_echo's line as instruction", seen)
	}
	for _, want := range []string{
		"Welcome to the sshgate demo session, demo from 127.0.0.1.\n",
		"Hello, demo.",
		"    SSHGATE_GREETING=hello from pam_env\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the session output lacks %q:\n%s", want, out)
		}
	}
	if _, _, err := goLogin(g, demoUser, answer("wrong")); err == nil {
		t.Error("a wrong demo password logged in")
	}
	if strings.Contains(g.log.String(), demoPassword) {
		t.Errorf("the log holds the demo password:\n%s", g.log)
	}
}

// TestLoadHostKey: a generated key is written to a file that loads again
// and is removed by cleanup.
func TestLoadHostKey(t *testing.T) {
	signer, cleanup, err := loadHostKey("")
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	files, _ := filepath.Glob(filepath.Join(os.TempDir(), "sshgate-hostkey-*", "ssh_host_ed25519_key"))
	found := false
	for _, f := range files {
		s2, _, err := loadHostKey(f)
		if err == nil && bytes.Equal(s2.PublicKey().Marshal(), signer.PublicKey().Marshal()) {
			found = true
			cleanup()
			if _, err := os.Stat(f); !os.IsNotExist(err) {
				t.Errorf("cleanup left %s: %v", f, err)
			}
		}
	}
	if !found {
		t.Errorf("no host key file holds the generated key among %q", files)
	}
	if _, _, err := loadHostKey(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing host key file loaded")
	}
}
