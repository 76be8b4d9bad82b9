package module_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gopam/pam"
	"github.com/gopam/pam/pamtest"
)

// The test module is built once per test binary in its three forms.
func testModule(t *testing.T) pamtest.GoModule {
	t.Helper()
	return pamtest.BuildGoModule(t, "internal/testmod", "pam_gotest")
}

// gotestStack writes service "gotest" with the module on every line and
// returns the stack and the path of the module's out= file.
func gotestStack(t *testing.T, module string, args ...string) (*pamtest.Stack, string) {
	t.Helper()
	st := pamtest.New(t)
	out := filepath.Join(t.TempDir(), "events")
	line := module + " out=" + out + " " + strings.Join(args, " ")
	st.Service("gotest",
		"auth required "+line,
		"account required "+line,
		"session required "+line,
		"password required "+line)
	return st, out
}

// events returns the lines the module wrote.
func events(t *testing.T, out string) []string {
	t.Helper()
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("the module wrote no events: %v", err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// has reports whether a line equals want.
func has(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

var pidRE = regexp.MustCompile(`^(\w+) pid=(\d+)`)

// pidsOf returns the process id each operation ran in.
func pidsOf(lines []string) map[string]int {
	m := map[string]int{}
	for _, l := range lines {
		if s := pidRE.FindStringSubmatch(l); s != nil {
			n, _ := strconv.Atoi(s[2])
			m[s[1]] = n
		}
	}
	return m
}

func wantCodes(t *testing.T, o pamtest.Outcome, want ...any) {
	t.Helper()
	for i := 0; i+1 < len(want); i += 2 {
		op, code := want[i].(string), want[i+1].(pam.Code)
		got, ran := o.Code(op)
		if !ran || got != code {
			t.Errorf("%s: %s = %v (ran %v), want %v\n%s", o.Host, op, got.Name(), ran, code.Name(), o.Output)
		}
	}
}

// TestEveryCallEveryHost runs the test module, which makes every call of
// the module-side API, in both modes from every host: items, environment,
// a three-message batch, the token, module data read back in setcred and
// cleaned up at pam_end (counted), and the session's environment variable.
func TestEveryCallEveryHost(t *testing.T) {
	m := testModule(t)
	for _, md := range m.Modes() {
		for _, host := range pamtest.Hosts {
			t.Run(md.Name+"/"+string(host), func(t *testing.T) {
				args := []string{"user=alice", "pass=pw", "conv"}
				if host == pamtest.HostC {
					args = append(args, "binary") // the only host that answers binary prompts
				}
				st, out := gotestStack(t, md.Path, args...)
				o := pamtest.RunHost(t, st, host, pamtest.Transaction{
					Service: "gotest", User: "alice", Answers: []string{"42", "sec", "pw"},
					Ops: []string{"authenticate", "setcred", "acct_mgmt", "open_session", "close_session"},
				})
				wantCodes(t, o, "authenticate", pam.Success, "setcred", pam.Success, "acct_mgmt", pam.Success,
					"open_session", pam.Success, "close_session", pam.Success)
				ev := events(t, out)
				for _, want := range []string{
					"items user=alice service=gotest rhost=",
					"conv code=42 secret=3",
					"env get=true,gotest tmp=false list=true",
					"setitem ruser=gotest-ruser",
					"data a=a b=b2 err=<nil>",
					"close session=open",
				} {
					if !has(ev, want) {
						t.Errorf("no event %q in\n%s", want, strings.Join(ev, "\n"))
					}
				}
				if host == pamtest.HostC && !has(ev, "binary type=2 data=pong") {
					t.Errorf("no binary prompt answer in\n%s", strings.Join(ev, "\n"))
				}
				// Three values were set; "b" was replaced once.
				var cleanups, replaced int
				for _, l := range ev {
					if strings.HasPrefix(l, "cleanup ") {
						cleanups++
						if strings.Contains(l, "replaced=true") {
							replaced++
						}
					}
				}
				if cleanups != 3 || replaced != 1 {
					t.Errorf("%d cleanups (%d replacements), want 3 (1)\n%s", cleanups, replaced, strings.Join(ev, "\n"))
				}
				if o.Env != nil && (o.Env["GOTEST_SERVICE"] != "gotest" || o.Env["GOTEST_SESSION"] != "closed") {
					t.Errorf("PAM environment %v, want GOTEST_SERVICE=gotest GOTEST_SESSION=closed", o.Env)
				}
				// Where the Go code ran: in the host only for an in-process
				// module in a C host; in the helper otherwise (a Go host
				// makes the in-process library use its helper).
				inHost := md.Name == "in-process" && host != pamtest.HostGopam
				for op, pid := range pidsOf(ev) {
					if (pid == o.PID) != inHost {
						t.Errorf("%s ran in pid %d, host pid %d: want in the host = %v", op, pid, o.PID, inHost)
					}
				}
			})
		}
	}
}

// TestResultCodes checks the codes a module's errors become, from every
// host and mode: a wrong password, an unknown user, an expired account, a
// chauthtok through one batch, a panic and a plain Go error (both
// PAM_SYSTEM_ERR, and the host goes on).
func TestResultCodes(t *testing.T) {
	m := testModule(t)
	cases := []struct {
		name    string
		args    []string
		answers []string
		ops     []string
		want    []any
		event   string
	}{
		{"wrong password", []string{"user=alice", "pass=pw"}, []string{"nope"},
			[]string{"authenticate"}, []any{"authenticate", pam.ErrAuth}, "wrong password"},
		{"unknown user", []string{"user=bob", "pass=pw"}, []string{"pw"},
			[]string{"authenticate"}, []any{"authenticate", pam.ErrUserUnknown}, `unknown user "alice"`},
		{"expired", []string{"expired"}, nil,
			[]string{"acct_mgmt"}, []any{"acct_mgmt", pam.ErrAcctExpired}, ""},
		{"chauthtok batch", nil, []string{"old1", "new2", "new2"},
			[]string{"chauthtok"}, []any{"chauthtok", pam.Success}, "chauthtok old=old1 new=new2"},
		{"chauthtok mismatch", nil, []string{"old1", "new2", "new3"},
			[]string{"chauthtok"}, []any{"chauthtok", pam.ErrAuthTok}, ""},
		{"panic", []string{"panic=acct_mgmt"}, nil,
			[]string{"acct_mgmt", "open_session"}, []any{"acct_mgmt", pam.ErrSystem}, ""},
		{"plain error", []string{"error=acct_mgmt"}, nil,
			[]string{"acct_mgmt", "open_session"}, []any{"acct_mgmt", pam.ErrSystem}, ""},
	}
	for _, md := range m.Modes() {
		for _, host := range pamtest.Hosts {
			for _, c := range cases {
				t.Run(fmt.Sprintf("%s/%s/%s", md.Name, host, c.name), func(t *testing.T) {
					st, out := gotestStack(t, md.Path, c.args...)
					o := pamtest.RunHost(t, st, host, pamtest.Transaction{
						Service: "gotest", User: "alice", Answers: c.answers, Ops: c.ops,
					})
					wantCodes(t, o, c.want...)
					if c.event != "" && !has(events(t, out), c.event) {
						t.Errorf("no event %q", c.event)
					}
					// The hosts that go on after a failure show that the
					// host survived the panic.
					if len(c.ops) > 1 && (host == pamtest.HostC || host == pamtest.HostPython) {
						wantCodes(t, o, c.ops[1], pam.Success)
					}
				})
			}
		}
	}
}

// TestBrokenHelper: a helper that is not one, never answers, or dies in
// the middle of a call makes the call fail with PAM_SYSTEM_ERR; the host
// neither hangs nor crashes, and its next call works.
func TestBrokenHelper(t *testing.T) {
	m := testModule(t)
	dir := t.TempDir()
	silent := filepath.Join(dir, "silent-helper")
	if err := os.WriteFile(silent, []byte("#!/bin/sh\nexec sleep 1000\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string]string{
		"not a helper": "helper=/bin/true",
		// The helper never says hello; the wait is cut by gopam_timeout
		// (1 s) and the helper killed.
		"silent": "helper=" + silent + " gopam_timeout=1",
		"dies":   "die=authenticate",
	} {
		t.Run(name, func(t *testing.T) {
			st := pamtest.New(t)
			st.Service("gotest",
				"auth required "+m.Isolated+" "+args,
				"account required pam_permit.so")
			o := pamtest.RunHost(t, st, pamtest.HostC, pamtest.Transaction{
				Service: "gotest", User: "alice", Ops: []string{"authenticate", "acct_mgmt"}})
			wantCodes(t, o, "authenticate", pam.ErrSystem, "acct_mgmt", pam.Success)
		})
	}
}
