package main

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/gopam/pam/pamtest"
)

// compatCase is one stack and one invocation that pamtester (through cwrap's
// pam_wrapper) and gopam (through --confdir) must agree on.
type compatCase struct {
	name  string
	stack []string // the service file; nil means no service at all
	args  []string // -I/-E options, then USER and the operations
	input string   // the answers, one per line: pamtester's stdin, gopam's --answers-file -
	// byFlag passes the answers to gopam with --answer instead.
	byFlag bool
	// want is the expected exit status, so that a stack that silently
	// broke both programs alike cannot pass.
	want int
}

// debugStack returns a stack whose typ calls return code through pam_debug.
func debugStack(typ, option, code string) []string {
	return []string{
		fmt.Sprintf("%s requisite pam_debug.so %s=%s", typ, option, code),
		typ + " requisite pam_permit.so",
	}
}

var allTypes = func(module string) []string {
	var s []string
	for _, typ := range []string{"auth", "account", "session", "password"} {
		s = append(s, typ+" required "+module)
	}
	return s
}

func compatCases(s *pamtest.Stack) []compatCase {
	db := s.UserDB("users", map[string]string{"alice": "s3cret", "bob": "hunter2"})
	userdb := []string{"auth required pam_userdb.so db=" + db + " crypt=none", "account required pam_permit.so"}
	stress := []string{
		"auth required pam_stress.so",
		"account required pam_stress.so",
		"session required pam_stress.so",
		"password required pam_stress.so",
	}
	all := []string{"authenticate", "acct_mgmt", "setcred", "open_session", "close_session", "chauthtok"}
	cases := []compatCase{
		{name: "permit", stack: allTypes("pam_permit.so"), args: append([]string{"alice"}, all...), want: 0},
		{name: "permit-flags", stack: allTypes("pam_permit.so"), args: []string{"alice",
			"authenticate(PAM_SILENT|PAM_DISALLOW_NULL_AUTHTOK)", "acct_mgmt(pam_silent)", "setcred(PAM_REFRESH_CRED)",
			"setcred(PAM_ESTABLISH_CRED|PAM_SILENT)", "setcred(PAM_REINITIALIZE_CRED)", "chauthtok(PAM_CHANGE_EXPIRED_AUTHTOK)", "ACCT_MGMT"}, want: 0},
		{name: "missing-service", stack: nil, args: []string{"alice", "authenticate"}, want: 1},
		{name: "userdb-right", stack: userdb, args: []string{"alice", "authenticate", "acct_mgmt"}, input: "s3cret\n", want: 0},
		{name: "userdb-right-flag", stack: userdb, args: []string{"bob", "authenticate"}, input: "hunter2\n", byFlag: true, want: 0},
		{name: "userdb-wrong", stack: userdb, args: []string{"alice", "authenticate", "acct_mgmt"}, input: "hunter2\n", want: 1},
		{name: "userdb-unknown-user", stack: userdb, args: []string{"carol", "authenticate"}, input: "s3cret\n", want: 1},
		{name: "userdb-no-answer", stack: userdb, args: []string{"alice", "authenticate"}, input: "", want: 1},
		{name: "stress-login", stack: stress, args: []string{"alice", "authenticate", "acct_mgmt", "setcred", "open_session", "close_session"}, input: "anything\n", want: 0},
		{name: "stress-fail_1-auth", stack: []string{"auth required pam_stress.so fail_1"}, args: []string{"alice", "authenticate"}, input: "x\n", want: 1},
		{name: "stress-expired", stack: []string{"auth required pam_stress.so", "account required pam_stress.so expired"}, args: []string{"alice", "authenticate", "acct_mgmt", "setcred"}, input: "x\n", want: 1},
		{name: "stress-fail_1-acct", stack: []string{"account required pam_stress.so fail_1"}, args: []string{"alice", "acct_mgmt"}, want: 1},
		{name: "stress-fail_2-setcred", stack: []string{"auth required pam_stress.so fail_2"}, args: []string{"alice", "setcred"}, want: 1},
		{name: "stress-fail_1-session", stack: []string{"session required pam_stress.so fail_1"}, args: []string{"alice", "open_session"}, want: 1},
		{name: "stress-fail_2-close", stack: []string{"session required pam_stress.so fail_2"}, args: []string{"alice", "open_session", "close_session"}, want: 1},
		// pam_stress asks for the old password only when not run by root;
		// three answers cover both, and the two programs get the same.
		{name: "stress-chauthtok-mismatch", stack: stress, args: []string{"alice", "chauthtok"}, input: "one\ntwo\nthree\n", want: 1},
		{name: "stress-chauthtok-match", stack: stress, args: []string{"alice", "chauthtok"}, input: "same\nsame\nsame\n", want: 0},
		{name: "echo", stack: []string{"auth required pam_echo.so hello %u on %s tty=%t rhost=%H ruser=%U", "auth required pam_permit.so"},
			args: []string{"-I", "tty=pts/7", "-Irhost=far.example", "-I", "ruser=remote", "alice", "authenticate"}, want: 0},
		{name: "echo-silent", stack: []string{"auth required pam_echo.so hello %u", "auth required pam_permit.so"}, args: []string{"alice", "authenticate(PAM_SILENT)"}, want: 0},
		{name: "echo-item-user", stack: []string{"auth required pam_echo.so hello %u", "auth required pam_permit.so"}, args: []string{"-I", "user=bob", "alice", "authenticate"}, want: 0},
		{name: "env-set", stack: allTypes("pam_permit.so"), args: []string{"-E", "FOO=bar", "-EBAZ=", "alice", "authenticate"}, want: 0},
		{name: "env-unset-missing", stack: allTypes("pam_permit.so"), args: []string{"-E", "NOT_SET", "alice", "authenticate"}, want: 1},
		{name: "deny", stack: allTypes("pam_deny.so"), args: []string{"alice", "authenticate", "acct_mgmt"}, want: 1},
	}
	for _, op := range []string{"acct_mgmt", "setcred", "open_session", "close_session", "chauthtok"} {
		cases = append(cases, compatCase{name: "deny-" + op, stack: allTypes("pam_deny.so"), args: []string{"alice", op}, want: 1})
	}
	debug := []struct {
		op, typ, option string
		codes           []string
	}{
		{"authenticate", "auth", "auth", []string{"success", "auth_err", "perm_denied", "user_unknown", "maxtries", "cred_insufficient", "authinfo_unavail"}},
		{"acct_mgmt", "account", "acct", []string{"success", "acct_expired", "new_authtok_reqd", "perm_denied", "user_unknown"}},
		{"setcred", "auth", "cred", []string{"success", "cred_err", "cred_unavail", "cred_expired"}},
		{"open_session", "session", "open_session", []string{"success", "session_err", "system_err"}},
		{"close_session", "session", "close_session", []string{"success", "session_err", "buf_err"}},
		{"chauthtok", "password", "chauthtok", []string{"success", "authtok_err", "authtok_lock_busy", "try_again"}},
	}
	for _, d := range debug {
		for _, code := range d.codes {
			want := 1
			if code == "success" {
				want = 0
			}
			cases = append(cases, compatCase{
				name:  "debug-" + d.op + "-" + code,
				stack: debugStack(d.typ, d.option, code),
				args:  []string{"alice", d.op},
				want:  want,
			})
		}
	}
	return cases
}

// TestPamtesterCompat runs pamtester and gopam on the same stacks with the
// same answers and checks that they agree: the same result line for every
// operation (success on standard output, failure on standard error), the
// same module messages, and the same exit status.
func TestPamtesterCompat(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "pamtester and cwrap's pam_wrapper run Linux-PAM")
	pamtester, err := exec.LookPath("pamtester")
	if err != nil {
		t.Fatalf("pamtester is not installed: install the Debian package pamtester (apt-get install pamtester): %v", err)
	}
	wrapper, err := pamtest.WrapperLibrary()
	if err != nil {
		t.Fatalf("cwrap's pam_wrapper is needed to run pamtester on a private stack: %v", err)
	}
	s := pamtest.New(t)
	cases := compatCases(s)
	// One service per case, written here because a Stack belongs to the
	// test that made it; no "other" file ever exists.
	for i, c := range cases {
		if c.stack != nil {
			s.Service(fmt.Sprintf("svc%d", i), c.stack...)
		}
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			service := fmt.Sprintf("svc%d", i)
			wenv := append(cleanEnv(),
				"LD_PRELOAD="+wrapper,
				"PAM_WRAPPER=1",
				"PAM_WRAPPER_SERVICE_DIR="+s.Dir(),
			)
			opts, rest := splitOptions(c.args)
			pt := runProgram(t, wenv, c.input, pamtester, append(append(opts, service), rest...)...)

			gargs := []string{"--confdir", s.Dir()}
			stdin := ""
			if c.byFlag {
				for _, a := range strings.Split(strings.TrimSuffix(c.input, "\n"), "\n") {
					gargs = append(gargs, "--answer", a)
				}
			} else {
				gargs = append(gargs, "--answers-file", "-")
				stdin = c.input
			}
			gargs = append(append(append(gargs, opts...), service), rest...)
			gp := gopam(t, stdin, gargs...)

			if pt.status != c.want {
				t.Errorf("pamtester: exit status %d, want %d (the stack does not test what it should)\n%v", pt.status, c.want, pt)
			}
			if gp.status != pt.status {
				t.Errorf("exit status: gopam %d, pamtester %d", gp.status, pt.status)
			}
			// Standard output holds the success lines and the modules'
			// informational messages, in order.
			if got, want := gp.stdout, strings.ReplaceAll(pt.stdout, "pamtester: ", "gopam: "); got != want {
				t.Errorf("standard output differs:\ngopam:\n%s\npamtester (renamed):\n%s", got, want)
			}
			if ptFail, ok := lastResultLine(pt.stderr, "pamtester: "); ok {
				if want := "gopam: " + strings.TrimPrefix(ptFail, "pamtester: "); !hasLine(gp.stderr, want) {
					t.Errorf("pamtester printed the failure %q; gopam has no line %q", ptFail, want)
				}
			} else if pt.status != 0 {
				t.Errorf("pamtester failed without a failure line:\n%v", pt)
			}
			// Per operation: the same number of operations succeeded,
			// hence the same one failed.
			if g, p := strings.Count(gp.stdout, "gopam: "), strings.Count(pt.stdout, "pamtester: "); g != p {
				t.Errorf("operations that succeeded: gopam %d, pamtester %d", g, p)
			}
			t.Logf("pamtester:\n%v\ngopam:\n%v", pt, gp)
		})
	}
}

// splitOptions separates the leading -I/-E options of a case's arguments.
func splitOptions(args []string) (opts, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-I" || a == "-E":
			opts = append(opts, a, args[i+1])
			i++
		case strings.HasPrefix(a, "-I") || strings.HasPrefix(a, "-E"):
			opts = append(opts, a)
		default:
			return opts, args[i:]
		}
	}
	return opts, nil
}

// lastResultLine returns the last line of stderr that holds prefix, from
// prefix on: pamtester prints its failure right after an unanswered prompt,
// on the prompt's line.
func lastResultLine(stderr, prefix string) (string, bool) {
	var last string
	found := false
	for _, line := range strings.Split(stderr, "\n") {
		if i := strings.LastIndex(line, prefix); i >= 0 {
			last, found = line[i:], true
		}
	}
	return last, found
}

func hasLine(s, line string) bool {
	for _, l := range strings.Split(s, "\n") {
		if l == line {
			return true
		}
	}
	return false
}
