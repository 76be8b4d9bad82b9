package pam_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/gopam/pam"
	"github.com/gopam/pam/pamtest"
)

// oracleCode is one PAM code as the C headers and the running libpam see it.
type oracleCode struct {
	token    string // pam_debug's name for it
	errno    int
	strerror string
}

// oracle compiles and runs testdata/codes.c.
func oracle(t *testing.T) []oracleCode {
	t.Helper()
	src, err := os.ReadFile("testdata/codes.c")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(pamtest.CompileProgram(t, "codes", string(src))).Output()
	if err != nil {
		t.Fatalf("codes oracle: %v", err)
	}
	var codes []oracleCode
	for line := range strings.Lines(string(out)) {
		f := strings.SplitN(strings.TrimSuffix(line, "\n"), " ", 3)
		n, err := strconv.Atoi(f[1])
		if err != nil {
			t.Fatalf("oracle line %q: %v", line, err)
		}
		codes = append(codes, oracleCode{f[0], n, f[2]})
	}
	want := 32 // Linux-PAM; OpenPAM lacks two and has four of its own
	if pam.Implementation() == "OpenPAM" {
		want = 34
	}
	if len(codes) != want {
		t.Fatalf("oracle printed %d codes, want %d", len(codes), want)
	}
	return codes
}

// goCodes names the constant for each pam_debug token.
var goCodes = map[string]pam.Code{
	"success": pam.Success, "open_err": pam.ErrOpen, "symbol_err": pam.ErrSymbol,
	"service_err": pam.ErrService, "system_err": pam.ErrSystem, "buf_err": pam.ErrBuf,
	"perm_denied": pam.ErrPermDenied, "auth_err": pam.ErrAuth,
	"cred_insufficient": pam.ErrCredInsufficient, "authinfo_unavail": pam.ErrAuthInfoUnavail,
	"user_unknown": pam.ErrUserUnknown, "maxtries": pam.ErrMaxTries,
	"new_authtok_reqd": pam.ErrNewAuthTokReqd, "acct_expired": pam.ErrAcctExpired,
	"session_err": pam.ErrSession, "cred_unavail": pam.ErrCredUnavail,
	"cred_expired": pam.ErrCredExpired, "cred_err": pam.ErrCred,
	"no_module_data": pam.ErrNoModuleData, "conv_err": pam.ErrConv,
	"authtok_err": pam.ErrAuthTok, "authtok_recover_err": pam.ErrAuthTokRecovery,
	"authtok_lock_busy": pam.ErrAuthTokLockBusy, "authtok_disable_aging": pam.ErrAuthTokDisableAging,
	"try_again": pam.ErrTryAgain, "ignore": pam.ErrIgnore, "abort": pam.ErrAbort,
	"authtok_expired": pam.ErrAuthTokExpired, "module_unknown": pam.ErrModuleUnknown,
	"bad_item": pam.ErrBadItem, "conv_again": pam.ErrConvAgain, "incomplete": pam.ErrIncomplete,
	"domain_unknown": pam.ErrDomainUnknown, "bad_handle": pam.ErrBadHandle,
	"bad_feature": pam.ErrBadFeature, "bad_constant": pam.ErrBadConstant,
}

// operations maps pam_debug's option for each operation to the call.
var operations = []struct {
	facility, option, name string
	call                   func(*pam.Handle, context.Context) error
}{
	{"auth", "auth", "authenticate", func(h *pam.Handle, c context.Context) error { return h.Authenticate(c, 0) }},
	{"auth", "cred", "establish_credentials", func(h *pam.Handle, c context.Context) error { return h.EstablishCredentials(c, 0) }},
	{"account", "acct", "acct_mgmt", func(h *pam.Handle, c context.Context) error { return h.AcctMgmt(c, 0) }},
	{"session", "open_session", "open_session", func(h *pam.Handle, c context.Context) error { return h.OpenSession(c, 0) }},
	{"session", "close_session", "close_session", func(h *pam.Handle, c context.Context) error { return h.CloseSession(c, 0) }},
	{"password", "chauthtok", "chauthtok", func(h *pam.Handle, c context.Context) error { return h.ChangeAuthTok(c, 0) }},
}

// TestEveryCodeFromEveryOperation makes each of the six operations return
// each code a stack can return, through pam_debug on Linux-PAM and
// pam_return on OpenPAM, and checks the Go error against the C oracle.
func TestEveryCodeFromEveryOperation(t *testing.T) {
	codes := oracle(t)
	module := func(option string, c oracleCode) string {
		if pam.Implementation() == "OpenPAM" {
			return "pam_return.so error=" + strconv.Itoa(c.errno)
		}
		return "pam_debug.so " + option + "=" + c.token
	}
	st := pamtest.New(t)
	ctx := context.Background()
	for _, op := range operations {
		for _, c := range codes {
			if c.token == "ignore" {
				continue // a stack never returns PAM_IGNORE
			}
			svc := strings.ReplaceAll(op.option+"-"+c.token, "_", "-")
			st.Service(svc,
				op.facility+" requisite "+module(op.option, c),
				op.facility+" required pam_permit.so")
			t.Run(svc, func(t *testing.T) {
				h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()})
				if err != nil {
					t.Fatal(err)
				}
				defer h.Close()
				err = op.call(h, ctx)
				want := goCodes[c.token]
				if want == pam.Success {
					if err != nil {
						t.Fatalf("got %v, want success", err)
					}
					return
				}
				var pe *pam.Error
				if !errors.As(err, &pe) {
					t.Fatalf("got %v (%T), want *pam.Error", err, err)
				}
				if !errors.Is(err, want) || pe.Code != want {
					t.Errorf("code: got %v (%d), want %v", pe.Code, pe.Errno(), want)
				}
				if pe.Errno() != c.errno {
					t.Errorf("Errno: got %d, want %d", pe.Errno(), c.errno)
				}
				if pe.Strerror() != c.strerror {
					t.Errorf("Strerror: got %q, want %q", pe.Strerror(), c.strerror)
				}
				wantName := "PAM_" + strings.ToUpper(strings.Replace(c.token, "recover_", "recovery_", 1))
				if pe.Code.Name() != wantName {
					t.Errorf("Name: got %s, want %s", pe.Code.Name(), wantName)
				}
				if n, ok := want.Errno(); !ok || n != c.errno {
					t.Errorf("Code.Errno: got %d %v, want %d", n, ok, c.errno)
				}
				for _, part := range []string{op.name, "alice", svc, c.strerror} {
					if !strings.Contains(err.Error(), part) {
						t.Errorf("error %q does not name %q", err, part)
					}
				}
			})
		}
	}
}

// TestOpenPAMOnlyCodes checks that the codes only OpenPAM has have
// constants, with texts, and OpenPAM's numbers on OpenPAM, none elsewhere.
func TestOpenPAMOnlyCodes(t *testing.T) {
	openpam := pam.Implementation() == "OpenPAM"
	for i, c := range []pam.Code{pam.ErrDomainUnknown, pam.ErrBadHandle, pam.ErrBadFeature, pam.ErrBadConstant} {
		if c.Error() == "" || strings.HasPrefix(c.Error(), "pam code") {
			t.Errorf("%d has no description", int(c))
		}
		n, ok := c.Errno()
		if want := [...]int{29, 30, 32, 33}[i]; openpam && (!ok || n != want) {
			t.Errorf("%v: OpenPAM number %d %v, want %d", c, n, ok, want)
		}
		if !openpam && ok {
			t.Errorf("%v: Linux-PAM number %d, want none", c, n)
		}
	}
	if pam.ErrDomainUnknown == pam.ErrAuth || pam.ErrDomainUnknown == pam.ErrUnknownCode {
		t.Error("OpenPAM-only codes must be distinct constants")
	}
}

func requireLinuxPAM(t *testing.T) {
	t.Helper()
	pamtest.LinuxPAMOnly(t, "Linux-PAM's modules and items")
	if got := pam.Implementation(); got != "Linux-PAM" {
		t.Fatalf("these tests need Linux-PAM (Debian package libpam0g), found %q", got)
	}
}
