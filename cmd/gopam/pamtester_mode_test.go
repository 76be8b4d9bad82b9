package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/libpam"
	"github.com/gopam/pam/pamtest"
)

// codeModule returns the module, with its arguments, that makes a call of
// facility option return code: pam_debug on Linux-PAM, pam_return on
// OpenPAM (which has no pam_debug).
func codeModule(t *testing.T, option string, code pam.Code) string {
	t.Helper()
	n, ok := code.Errno()
	if !ok {
		t.Fatalf("%v has no number here", code)
	}
	if pam.Implementation() == "OpenPAM" {
		return "pam_return.so error=" + strconv.Itoa(n)
	}
	return "pam_debug.so " + option + "=" + strings.ToLower(strings.TrimPrefix(code.Name(), "PAM_"))
}

// strerror is the loaded libpam's text for code, which gopam prints after
// "gopam: " when an operation fails with it.
func strerror(t *testing.T, code pam.Code) string {
	t.Helper()
	l, err := libpam.Load()
	if err != nil {
		t.Fatal(err)
	}
	n, _ := code.Errno()
	return l.Strerror(0, n)
}

// TestPamtesterMode runs gopam's pamtester mode with --confdir on the
// loaded implementation, Linux-PAM or OpenPAM (GOPAM_LIBPAM), without
// pamtester itself (which TestPamtesterCompat compares on Linux-PAM): the
// result lines of every operation, the failure line with the
// implementation's own text for each code, and the exit statuses.
func TestPamtesterMode(t *testing.T) {
	s := pamtest.New(t)
	all := []string{"authenticate", "acct_mgmt", "setcred", "open_session", "close_session", "chauthtok"}
	facility := map[string]string{"authenticate": "auth", "setcred": "auth", "acct_mgmt": "account",
		"open_session": "session", "close_session": "session", "chauthtok": "password"}
	option := map[string]string{"authenticate": "auth", "setcred": "cred", "acct_mgmt": "acct",
		"open_session": "open_session", "close_session": "close_session", "chauthtok": "chauthtok"}
	each := func(module string) []string {
		var lines []string
		for _, f := range []string{"auth", "account", "session", "password"} {
			lines = append(lines, f+" required "+module)
		}
		return lines
	}
	s.Service("permit", each("pam_permit.so")...)
	s.Service("deny", each("pam_deny.so")...)

	o := gopam(t, "", append([]string{"--confdir", s.Dir(), "permit", "alice"}, all...)...)
	var want []string
	for _, op := range all {
		want = append(want, "gopam: "+ops[op].success)
	}
	if o.status != 0 || o.stdout != strings.Join(want, "\n")+"\n" || o.stderr != "" {
		t.Errorf("permit, every operation: want exit status 0 and\n%s\ngot\n%v", strings.Join(want, "\n"), o)
	}
	for _, op := range all {
		o := gopam(t, "", "--confdir", s.Dir(), "deny", "alice", op)
		if o.status != 1 || o.stdout != "" || !strings.HasPrefix(o.stderr, "gopam: ") {
			t.Errorf("deny, %s: want exit status 1 and a failure line:\n%v", op, o)
		}
	}
	if o := gopam(t, "", "--confdir", s.Dir(), "nosuchservice", "alice", "authenticate"); o.status != 1 || o.stdout != "" {
		t.Errorf("a service without a file: want exit status 1:\n%v", o)
	}

	codes := map[string][]pam.Code{
		"authenticate":  {pam.Success, pam.ErrAuth, pam.ErrPermDenied, pam.ErrUserUnknown, pam.ErrMaxTries, pam.ErrCredInsufficient, pam.ErrAuthInfoUnavail},
		"acct_mgmt":     {pam.Success, pam.ErrAcctExpired, pam.ErrNewAuthTokReqd, pam.ErrPermDenied, pam.ErrUserUnknown},
		"setcred":       {pam.Success, pam.ErrCred, pam.ErrCredUnavail, pam.ErrCredExpired},
		"open_session":  {pam.Success, pam.ErrSession, pam.ErrSystem},
		"close_session": {pam.Success, pam.ErrSession, pam.ErrBuf},
		"chauthtok":     {pam.Success, pam.ErrAuthTok, pam.ErrAuthTokLockBusy, pam.ErrTryAgain},
	}
	for _, op := range all {
		for _, code := range codes[op] {
			svc := strings.ReplaceAll(strings.ToLower(op+"-"+strings.TrimPrefix(code.Name(), "PAM_")), "_", "-")
			s.Service(svc, facility[op]+" requisite "+codeModule(t, option[op], code), facility[op]+" required pam_permit.so")
			// pam_debug also shows its own message, "OPTION=CODE".
			o := gopam(t, "", "--confdir", s.Dir(), svc, "alice", op)
			if code == pam.Success {
				if o.status != 0 || !strings.HasSuffix(o.stdout, "gopam: "+ops[op].success+"\n") || o.stderr != "" {
					t.Errorf("%s: want success:\n%v", svc, o)
				}
				continue
			}
			if line := "gopam: " + strerror(t, code); o.status != 1 || strings.Contains(o.stdout, "gopam: ") || !hasLine(o.stderr, line) {
				t.Errorf("%s: want exit status 1 and the line %q:\n%v", svc, line, o)
			}
		}
	}

	// A failure after a success: the first result line, then the failure.
	s.Service("expired", "auth required pam_permit.so",
		"account requisite "+codeModule(t, "acct", pam.ErrAcctExpired), "account required pam_permit.so")
	o = gopam(t, "", "--confdir", s.Dir(), "expired", "alice", "authenticate", "acct_mgmt", "setcred")
	if o.status != 1 || strings.Count(o.stdout, "gopam: ") != 1 || !hasLine(o.stdout, "gopam: "+ops["authenticate"].success) ||
		!hasLine(o.stderr, "gopam: "+strerror(t, pam.ErrAcctExpired)) {
		t.Errorf("authenticate, then an expired account: want one success line, the failure, exit status 1:\n%v", o)
	}
}
