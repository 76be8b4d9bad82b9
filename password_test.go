package pam_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
)

func login(t *testing.T, st *pamtest.Stack, svc, user, password string) error {
	t.Helper()
	h := startCfg(t, pam.Config{Service: svc, User: user, ConfDir: st.Dir(), Conv: pam.Answers([]byte(password))})
	return h.Login(context.Background(), 0)
}

func TestUserDBPasswords(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "module pam_userdb")
	st := pamtest.New(t)
	db := st.UserDB("users", map[string]string{"alice": "wonderland", "bob": "builder"})
	svc := st.Service("userdb",
		"auth required pam_userdb.so crypt=none db="+db,
		"account required pam_permit.so")

	if err := login(t, st, svc, "alice", "wonderland"); err != nil {
		t.Errorf("right password: %v", err)
	}
	if err := login(t, st, svc, "bob", "builder"); err != nil {
		t.Errorf("right password: %v", err)
	}
	if err := login(t, st, svc, "alice", "builder"); !errors.Is(err, pam.ErrAuth) {
		t.Errorf("wrong password: got %v, want ErrAuth", err)
	}
	if err := login(t, st, svc, "carol", "x"); !errors.Is(err, pam.ErrUserUnknown) {
		t.Errorf("unknown user: got %v, want ErrUserUnknown", err)
	}
}

// TestSeedExample is draxoft.auth.pam's documented example: a random 7-letter
// user, a conversation that always answers "password", and authenticate
// failing with PAM_USER_UNKNOWN, twice.
func TestSeedExample(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "module pam_userdb")
	st := pamtest.New(t)
	db := st.UserDB("users", map[string]string{"alice": "wonderland"})
	svc := st.Service("seed", "auth required pam_userdb.so crypt=none db="+db)
	letters := []byte("abcdefghijklmnopqrstuvwxyz")
	rand.Shuffle(len(letters), func(i, j int) { letters[i], letters[j] = letters[j], letters[i] })
	user := string(letters[:7])
	conv := pam.MessageFunc(func(_ context.Context, m pam.Message) (pam.Response, error) {
		return pam.Response{Data: []byte("password")}, nil
	})
	h := startCfg(t, pam.Config{Service: svc, User: user, ConfDir: st.Dir(), Conv: conv})
	for range 2 {
		err := h.Authenticate(context.Background(), 0)
		var pe *pam.Error
		if !errors.As(err, &pe) || pe.Code != pam.ErrUserUnknown {
			t.Fatalf("user %s: got %v, want ErrUserUnknown", user, err)
		}
		if pe.User != user {
			t.Errorf("error names user %q, want %q", pe.User, user)
		}
	}
}

func TestExecCheckerPasswords(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "module pam_exec and Linux-PAM's [success=1 default=ignore] control")
	st := pamtest.New(t)
	check := st.Script("check.sh", `read -r pw || true
[ "$PAM_USER" = alice ] && [ "$pw" = "s3cret pass" ]
`)
	svc := st.Service("exec",
		"auth [success=1 default=ignore] pam_exec.so quiet expose_authtok "+check,
		"auth requisite pam_deny.so",
		"auth required pam_permit.so",
		"account required pam_permit.so")
	if err := login(t, st, svc, "alice", "s3cret pass"); err != nil {
		t.Errorf("right password: %v", err)
	}
	if err := login(t, st, svc, "alice", "s3cret"); !errors.Is(err, pam.ErrAuth) {
		t.Errorf("wrong password: got %v, want ErrAuth", err)
	}
	if err := login(t, st, svc, "mallory", "s3cret pass"); !errors.Is(err, pam.ErrAuth) {
		t.Errorf("wrong user: got %v, want ErrAuth", err)
	}
}

// TestLoginNeedsAcctMgmt shows why Login runs AcctMgmt: the password is right
// but the account is expired.
func TestLoginNeedsAcctMgmt(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("expired",
		"auth required pam_permit.so",
		"account requisite "+testmodule.Build(t)+" ret=acct_expired",
		"account required pam_permit.so")
	h := startCfg(t, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()})
	if err := h.Authenticate(context.Background(), 0); err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	if err := h.Login(context.Background(), 0); !errors.Is(err, pam.ErrAcctExpired) {
		t.Fatalf("login: got %v, want ErrAcctExpired", err)
	}
}
