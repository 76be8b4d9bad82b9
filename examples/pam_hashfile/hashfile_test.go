package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/pamtest"
	"golang.org/x/crypto/bcrypt"
)

// hashOf makes a bcrypt hash quickly (the module accepts any cost).
func hashOf(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// passwordFile writes alice (password "wonderland"), carol (expired) and
// dave (expires in the far future) to a fresh file and returns its path.
func passwordFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "passwd")
	content := strings.Join([]string{
		"# pam_hashfile test users",
		"alice:" + hashOf(t, "wonderland"),
		"carol:" + hashOf(t, "looking-glass") + ":2000-01-01",
		"dave:" + hashOf(t, "rabbit-hole") + ":2999-12-31",
		"",
	}, "\n")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func build(t *testing.T) pamtest.GoModule {
	t.Helper()
	return pamtest.BuildGoModule(t, ".", "pam_hashfile")
}

// hashfileStack writes service "hashfile" with the module on every line.
func hashfileStack(t *testing.T, module, file string) *pamtest.Stack {
	t.Helper()
	st := pamtest.New(t)
	line := module + " file=" + file
	st.Service("hashfile",
		"auth required "+line,
		"account required "+line,
		"session required "+line,
		"password required "+line)
	return st
}

func want(t *testing.T, o pamtest.Outcome, op string, code pam.Code) {
	t.Helper()
	got, ran := o.Code(op)
	if !ran || got != code {
		t.Errorf("%s: %s = %s (ran %v), want %s\n%s", o.Host, op, got.Name(), ran, code.Name(), o.Output)
	}
	if (o.Host == pamtest.HostPamtester || o.Host == pamtest.HostGopam) && code != pam.Success && o.Status != 1 {
		t.Errorf("%s: exit status %d, want 1", o.Host, o.Status)
	}
}

// TestEveryHostEveryMode is acceptance 1: pam_hashfile in both modes, from
// pamtester and python3-pam (through pam_wrapper), the gopam command (a Go
// host) and the kit's C host.
func TestEveryHostEveryMode(t *testing.T) {
	m := build(t)
	for _, md := range m.Modes() {
		for _, host := range pamtest.Hosts {
			t.Run(md.Name+"/"+string(host), func(t *testing.T) {
				file := passwordFile(t)
				st := hashfileStack(t, md.Path, file)
				run := func(user string, answers []string, ops ...string) pamtest.Outcome {
					return pamtest.RunHost(t, st, host, pamtest.Transaction{Service: "hashfile", User: user, Answers: answers, Ops: ops})
				}

				o := run("alice", []string{"wonderland"}, "authenticate", "acct_mgmt")
				want(t, o, "authenticate", pam.Success)
				want(t, o, "acct_mgmt", pam.Success)
				if o.Status != 0 {
					t.Errorf("right password: exit status %d", o.Status)
				}
				want(t, run("alice", []string{"wrong"}, "authenticate"), "authenticate", pam.ErrAuth)
				want(t, run("bob", []string{"whatever"}, "authenticate"), "authenticate", pam.ErrUserUnknown)
				want(t, run("dave", []string{"rabbit-hole"}, "authenticate", "acct_mgmt"), "acct_mgmt", pam.Success)
				o = run("carol", []string{"looking-glass"}, "authenticate", "acct_mgmt")
				want(t, o, "authenticate", pam.Success)
				want(t, o, "acct_mgmt", pam.ErrAcctExpired)

				// chauthtok: old, new and new again in one batch; then the
				// new password works and the old one does not.
				o = run("alice", []string{"wonderland", "cheshire", "cheshire"}, "chauthtok")
				want(t, o, "chauthtok", pam.Success)
				want(t, run("alice", []string{"cheshire"}, "authenticate"), "authenticate", pam.Success)
				want(t, run("alice", []string{"wonderland"}, "authenticate"), "authenticate", pam.ErrAuth)
				want(t, run("alice", []string{"cheshire", "a", "b"}, "chauthtok"), "chauthtok", pam.ErrAuthTok)
				if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("password file after chauthtok: %v, %v; want mode 0600", fi.Mode(), err)
				}

				o = run("alice", nil, "open_session")
				want(t, o, "open_session", pam.Success)
				if o.Env != nil && (o.Env["HASHFILE_SESSION"] != "open" || o.Env["HASHFILE_USER"] != "alice") {
					t.Errorf("environment after open_session: %v", o.Env)
				}
				o = run("alice", nil, "open_session", "close_session")
				want(t, o, "close_session", pam.Success)
				if o.Env != nil && o.Env["HASHFILE_SESSION"] != "closed" {
					t.Errorf("environment after close_session: %v", o.Env)
				}
			})
		}
	}
}

// TestUseFirstPass: with use_first_pass the module takes the password that
// pam_stress read and asks nothing itself.
func TestUseFirstPass(t *testing.T) {
	m := build(t)
	for _, md := range m.Modes() {
		t.Run(md.Name, func(t *testing.T) {
			file := passwordFile(t)
			st := pamtest.New(t)
			st.Service("hashfile",
				"auth required pam_stress.so",
				"auth required "+md.Path+" file="+file+" use_first_pass")
			for pw, code := range map[string]pam.Code{"wonderland": pam.Success, "nope": pam.ErrAuth} {
				o := pamtest.RunHost(t, st, pamtest.HostC, pamtest.Transaction{
					Service: "hashfile", User: "alice", Answers: []string{pw}, Ops: []string{"authenticate"}})
				want(t, o, "authenticate", code)
				if n := strings.Count(o.Output, "prompt-off"); n != 1 {
					t.Errorf("%d password prompts, want pam_stress's one:\n%s", n, o.Output)
				}
			}
		})
	}
}

// TestRefusesFileWritableByOthers: the module will not trust such a file.
func TestRefusesFileWritableByOthers(t *testing.T) {
	m := build(t)
	file := passwordFile(t)
	if err := os.Chmod(file, 0o606); err != nil {
		t.Fatal(err)
	}
	st := hashfileStack(t, m.InProcess, file)
	o := pamtest.RunHost(t, st, pamtest.HostC, pamtest.Transaction{
		Service: "hashfile", User: "alice", Answers: []string{"wonderland", "wonderland", "x", "x"}, Ops: []string{"authenticate", "chauthtok"}})
	want(t, o, "authenticate", pam.ErrAuthInfoUnavail)
	want(t, o, "chauthtok", pam.ErrAuthTok)
}

// TestRewriteLosesNothing: a rewrite that fails just before its rename (as
// a crash there would) leaves the old file whole and no temporary file;
// one that succeeds keeps every other line and the file's mode.
func TestRewriteLosesNothing(t *testing.T) {
	file := passwordFile(t)
	before, _ := os.ReadFile(file)
	p, err := readFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p.lines[p.users["alice"]] = "alice:changed"
	boom := errors.New("crash")
	if err := p.rewrite(func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("rewrite = %v, want the injected failure", err)
	}
	after, _ := os.ReadFile(file)
	if string(after) != string(before) {
		t.Errorf("a failed rewrite changed the file:\n%s", after)
	}
	if ents, _ := os.ReadDir(filepath.Dir(file)); len(ents) != 1 {
		t.Errorf("files left in the directory: %v", ents)
	}
	if err := p.rewrite(nil); err != nil {
		t.Fatal(err)
	}
	after, _ = os.ReadFile(file)
	wantContent := strings.Replace(string(before), strings.Split(string(before), "\n")[1], "alice:changed", 1)
	if string(after) != wantContent {
		t.Errorf("rewritten file:\n%s\nwant:\n%s", after, wantContent)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode())
	}
}

func TestExpiry(t *testing.T) {
	day := time.Date(2026, 3, 10, 12, 0, 0, 0, time.Local)
	for expiry, want := range map[string]bool{"": false, "2026-03-10": false, "2026-03-09": true, "2027-01-01": false} {
		if got, err := expired(expiry, day); err != nil || got != want {
			t.Errorf("expired(%q) = %v, %v; want %v", expiry, got, err, want)
		}
	}
	if _, err := expired("10/03/2026", day); err == nil {
		t.Error("a malformed date was accepted")
	}
}

// TestSSHD is acceptance 3's real OpenSSH: sshd (Debian openssh-server),
// started by the test on a loopback port with a private sshd_config and a
// private PAM service through pam_wrapper, logs a user in by
// keyboard-interactive through pam_hashfile (the password from
// SSH_ASKPASS), hands the session the module's environment variables, and
// refuses a wrong password. sshd authenticates in a forked child of its
// monitor, so the in-process mode runs there through its helper.
func TestSSHD(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: sshd must run as root to authenticate a login (the root pass of the test command runs it)")
	}
	for _, prog := range []struct{ path, pkg string }{
		{"/usr/sbin/sshd", "openssh-server"}, {"/usr/bin/ssh", "openssh-client"}, {"/usr/bin/ssh-keygen", "openssh-client"},
	} {
		if _, err := os.Stat(prog.path); err != nil {
			t.Fatalf("%s is missing: install Debian package %s", prog.path, prog.pkg)
		}
	}
	wrapper, err := pamtest.WrapperLibrary()
	if err != nil {
		t.Fatal(err)
	}
	// sshd's privilege-separation directory, which its service unit
	// normally creates.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	m := build(t)
	for _, md := range m.Modes() {
		t.Run(md.Name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "passwd")
			if err := os.WriteFile(file, []byte("root:"+hashOf(t, "sesame")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			st := hashfileStack(t, md.Path, file)
			// hashfileStack names the service "hashfile"; sshd's is "sshd".
			conf, _ := os.ReadFile(filepath.Join(st.Dir(), "hashfile"))
			if err := os.WriteFile(filepath.Join(st.Dir(), "sshd"), conf, 0o644); err != nil {
				t.Fatal(err)
			}
			key := filepath.Join(dir, "hostkey")
			if out, err := exec.Command("/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
				t.Fatalf("ssh-keygen: %v\n%s", err, out)
			}
			port := startSSHD(t, dir, key, st.Dir(), wrapper)

			ok, out := sshLogin(t, dir, port, "sesame")
			if !ok || !strings.Contains(out, "gopam-ok:root:open") {
				t.Errorf("login with the right password failed or lost the session's environment:\n%s", out)
			}
			ok, out = sshLogin(t, dir, port, "not-sesame")
			if ok || !strings.Contains(out, "Permission denied") {
				t.Errorf("login with a wrong password: ok=%v\n%s", ok, out)
			}
		})
	}
}

// startSSHD starts sshd on a free loopback port (retrying when another
// process takes the port first) and returns the port once sshd listens.
func startSSHD(t *testing.T, dir, key, pamdir, wrapper string) int {
	t.Helper()
	for attempt := 0; attempt < 5; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		cfg := filepath.Join(dir, "sshd_config")
		os.WriteFile(cfg, []byte(fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication no
PubkeyAuthentication no
PermitRootLogin yes
PidFile %s/sshd.pid
StrictModes no
`, port, key, dir)), 0o644)
		log := filepath.Join(dir, fmt.Sprintf("sshd-%d.log", attempt))
		lf, err := os.Create(log)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfg)
		cmd.Env = append(os.Environ(), "LD_PRELOAD="+wrapper, "PAM_WRAPPER=1", "PAM_WRAPPER_SERVICE_DIR="+pamdir)
		cmd.Stdout, cmd.Stderr = lf, lf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
			lf.Close()
			if t.Failed() {
				b, _ := os.ReadFile(log)
				t.Logf("sshd log:\n%s", b)
			}
		})
		// Ready when it accepts a connection; a bind failure ends it.
		for {
			select {
			case <-exited:
				b, _ := os.ReadFile(log)
				if strings.Contains(string(b), "Address already in use") {
					goto retry
				}
				t.Fatalf("sshd exited:\n%s", b)
			default:
			}
			if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				c.Close()
				return port
			}
			time.Sleep(20 * time.Millisecond)
		}
	retry:
	}
	t.Fatal("sshd found no free port in 5 attempts")
	return 0
}

// sshLogin logs in as root with keyboard-interactive, answering every
// prompt with password through SSH_ASKPASS, and runs a command that prints
// the module's session variables.
func sshLogin(t *testing.T, dir string, port int, password string) (bool, string) {
	t.Helper()
	askpass := filepath.Join(dir, "askpass-"+password)
	if err := os.WriteFile(askpass, []byte("#!/bin/sh\necho '"+password+"'\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/ssh", "-p", fmt.Sprint(port),
		"-o", "PreferredAuthentications=keyboard-interactive", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile="+filepath.Join(dir, "known_hosts"), "-o", "NumberOfPasswordPrompts=1",
		"-o", "BatchMode=no", "root@127.0.0.1", `echo "gopam-ok:$HASHFILE_USER:$HASHFILE_SESSION"`)
	cmd.Env = append(os.Environ(), "SSH_ASKPASS="+askpass, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("ssh: %v\n%s", err, out)
	}
	return err == nil, string(out)
}
