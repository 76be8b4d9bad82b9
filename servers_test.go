package pam_test

// Tests of what servers and tools rely on: no silent current user, the
// style-aware password conversation and CheckPassword, the classification of
// errors, and the error of a stack that cannot be read.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
)

// spyStack returns a stack whose auth and account modules append a line to
// the returned file whenever they run, so that a test sees whether PAM ran.
func spyStack(t *testing.T) (st *pamtest.Stack, svc, ran string) {
	st = pamtest.New(t)
	ran = filepath.Join(t.TempDir(), "ran")
	mod := testmodule.Build(t)
	svc = st.Service("spy",
		"auth required "+mod+" tidfile="+ran,
		"account required "+mod+" tidfile="+ran)
	return st, svc, ran
}

func currentUser(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// TestServerEmptyUserRefused: a program with a conversation of its own and an
// empty user name (a request that carried none) gets an InputError naming the
// field and the options, from every entry point, and no module runs.
func TestServerEmptyUserRefused(t *testing.T) {
	st, svc, ran := spyStack(t)
	cfg := pam.Config{Service: svc, ConfDir: st.Dir(), Conv: pam.Answers([]byte("pw"))}
	ctx := context.Background()
	login := func(ctx context.Context, h *pam.Handle) error { return h.Login(ctx, 0) }
	check := func(what string, err error) {
		t.Helper()
		var in *pam.InputError
		if !errors.As(err, &in) || in.Field != "user" || !errors.Is(err, pam.ErrUserRequired) {
			t.Errorf("%s: got %v, want an InputError for the user matching ErrUserRequired", what, err)
			return
		}
		if what != "CheckPassword" {
			for _, want := range []string{"Config.User", "Config.AskUser", "Config.CurrentUser"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%s: %q does not name %s", what, err, want)
				}
			}
		}
		if got := pam.Classify(err); got != pam.OutcomeInput {
			t.Errorf("%s: Classify = %v, want input", what, got)
		}
	}
	h, err := pam.Start(cfg)
	if err == nil {
		h.Close()
	}
	check("Start", err)
	check("Run", pam.Run(ctx, cfg, login))
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	check("Run with a context", pam.Run(cctx, cfg, login))
	dcfg := cfg
	dcfg.Conv = nil
	_, err = pam.StartDialog(ctx, dcfg, time.Minute, login)
	check("StartDialog", err)
	check("CheckPassword", pam.CheckPassword(ctx, pam.Config{Service: svc, ConfDir: st.Dir()}, "", []byte("pw")))
	if b, err := os.ReadFile(ran); err == nil || len(b) > 0 {
		t.Errorf("a module ran: %q", b)
	}
}

// TestUserChoices: the zero Config's user is the current one; CurrentUser
// and AskUser say so explicitly with a conversation of the program's own;
// more than one of User, AskUser and CurrentUser is refused.
func TestUserChoices(t *testing.T) {
	st, svc, _ := spyStack(t)
	me := currentUser(t)
	pamUser := func(cfg pam.Config) (string, error) {
		h, err := pam.Start(cfg)
		if err != nil {
			return "", err
		}
		defer h.Close()
		return h.Item(pam.ItemUser)
	}
	cases := []struct {
		name string
		cfg  pam.Config
		want string
	}{
		{"no user, no conversation (the interactive default)", pam.Config{}, me},
		{"CurrentUser with a conversation", pam.Config{CurrentUser: true, Conv: pam.Answers()}, me},
		{"AskUser with a conversation", pam.Config{AskUser: true, Conv: pam.Answers()}, ""},
		{"a user with a conversation", pam.Config{User: "alice", Conv: pam.Answers()}, "alice"},
		{"a user, no conversation", pam.Config{User: "alice"}, "alice"},
	}
	for _, c := range cases {
		c.cfg.Service, c.cfg.ConfDir = svc, st.Dir()
		got, err := pamUser(c.cfg)
		if err != nil || got != c.want {
			t.Errorf("%s: PAM_USER %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	for _, cfg := range []pam.Config{
		{User: "alice", AskUser: true},
		{User: "alice", CurrentUser: true},
		{AskUser: true, CurrentUser: true},
	} {
		cfg.Service, cfg.ConfDir = svc, st.Dir()
		var in *pam.InputError
		if _, err := pamUser(cfg); !errors.As(err, &in) || in.Field != "user" {
			t.Errorf("%+v: got %v, want an InputError for the user", cfg, err)
		}
	}
}

// transcript wraps a conversation and records each prompt with its answer.
type transcript struct {
	conv pam.Conversation
	mu   sync.Mutex
	got  []string // "style text -> answer"
}

func (tr *transcript) Converse(ctx context.Context, msgs []pam.Message) ([]pam.Response, error) {
	resps, err := tr.conv.Converse(ctx, msgs)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i, m := range msgs {
		if m.Style.IsPrompt() && err == nil {
			tr.got = append(tr.got, fmt.Sprintf("%v %s-> %s", m.Style, m.Text, resps[i].Data))
		}
	}
	return resps, err
}

// userPromptStack is a pam_userdb stack: libpam asks for the user name
// (echo on) when none is set, then pam_userdb for the password (echo off).
func userPromptStack(t *testing.T) (st *pamtest.Stack, svc string) {
	st = pamtest.New(t)
	db := st.UserDB("users", map[string]string{"alice": "wonderland"})
	svc = st.Service("userdb",
		"auth required pam_userdb.so crypt=none db="+db,
		"account required pam_permit.so")
	return st, svc
}

// TestUserPasswordByStyle is acceptance 1(b): with a stack that prompts for
// the user name, the user name goes to the echo-on prompt and the password to
// the echo-off one, and the password is never taken for a user.
func TestUserPasswordByStyle(t *testing.T) {
	st, svc := userPromptStack(t)
	tr := &transcript{conv: pam.UserPassword("alice", []byte("wonderland"))}
	h := startCfg(t, pam.Config{Service: svc, AskUser: true, ConfDir: st.Dir(), Conv: tr})
	if err := h.Login(context.Background(), 0); err != nil {
		t.Fatalf("login: %v (prompts: %q)", err, tr.got)
	}
	if u, err := h.Item(pam.ItemUser); err != nil || u != "alice" {
		t.Errorf("PAM_USER %q, %v; want alice", u, err)
	}
	if len(tr.got) != 2 || !strings.HasPrefix(tr.got[0], "PAM_PROMPT_ECHO_ON ") || !strings.HasSuffix(tr.got[0], "-> alice") ||
		!strings.HasPrefix(tr.got[1], "PAM_PROMPT_ECHO_OFF ") || !strings.HasSuffix(tr.got[1], "-> wonderland") {
		t.Errorf("prompts and answers: %q; want the user name then the password", tr.got)
	}

	// Without a user name, the echo-on prompt fails: the password is not
	// sent in its place, and it appears nowhere in the error.
	tr = &transcript{conv: pam.UserPassword("", []byte("wonderland"))}
	h = startCfg(t, pam.Config{Service: svc, AskUser: true, ConfDir: st.Dir(), Conv: tr})
	err := h.Login(context.Background(), 0)
	if !errors.Is(err, pam.ErrUnexpectedPrompt) || strings.Contains(err.Error(), "wonderland") {
		t.Errorf("no user name: got %v, want ErrUnexpectedPrompt without the password", err)
	}
	if u, _ := h.Item(pam.ItemUser); u != "" {
		t.Errorf("PAM_USER became %q", u)
	}

	// Answers, by contrast, goes in order: the contrast is documented.
	tr = &transcript{conv: pam.Answers([]byte("wonderland"))}
	h = startCfg(t, pam.Config{Service: svc, AskUser: true, ConfDir: st.Dir(), Conv: tr})
	h.Login(context.Background(), 0)
	if len(tr.got) == 0 || !strings.HasPrefix(tr.got[0], "PAM_PROMPT_ECHO_ON ") {
		t.Errorf("Answers: %q; want its one answer on the first (echo-on) prompt", tr.got)
	}
}

func TestUserPasswordRefusesOtherMessages(t *testing.T) {
	c := pam.UserPassword("alice", []byte("pw"))
	resps, err := c.Converse(context.Background(), []pam.Message{
		{Style: pam.TextInfo, Text: "hello"}, {Style: pam.ErrorMsg, Text: "oops"},
		{Style: pam.PromptEchoOff, Text: "Password: "}, {Style: pam.PromptEchoOff, Text: "Again: "},
	})
	if err != nil || len(resps) != 4 || resps[0].Data != nil || resps[1].Data != nil ||
		string(resps[2].Data) != "pw" || string(resps[3].Data) != "pw" {
		t.Fatalf("got %q, %v", resps, err)
	}
	resps[2].Data[0] = 'X' // gopam wipes answers: the conversation's copy must not change
	if r, err := c.Converse(context.Background(), []pam.Message{{Style: pam.PromptEchoOff}}); err != nil || string(r[0].Data) != "pw" {
		t.Errorf("after a handed-out answer changed: %q, %v", r, err)
	}
	if _, err := c.Converse(context.Background(), []pam.Message{{Style: pam.PromptEchoOff}, {Style: pam.BinaryPrompt}}); !errors.Is(err, pam.ErrUnexpectedPrompt) {
		t.Errorf("binary prompt: got %v, want ErrUnexpectedPrompt", err)
	}
	c.Wipe()
	if _, err := c.Converse(context.Background(), []pam.Message{{Style: pam.PromptEchoOff, Text: "Password: "}}); !errors.Is(err, pam.ErrUnexpectedPrompt) {
		t.Errorf("after Wipe: got %v, want ErrUnexpectedPrompt", err)
	}
}

// TestCheckPassword: one call logs in (authenticate and acct_mgmt), so an
// expired account with the right password is refused.
func TestCheckPassword(t *testing.T) {
	st := pamtest.New(t)
	db := st.UserDB("users", map[string]string{"alice": "wonderland", "old": "timer"})
	svc := st.Service("check",
		"auth required pam_userdb.so crypt=none db="+db,
		"account [success=1 default=ignore] pam_succeed_if.so quiet user != old",
		"account requisite pam_debug.so acct=acct_expired",
		"account required pam_permit.so")
	ctx := context.Background()
	cfg := pam.Config{Service: svc, ConfDir: st.Dir()}
	cases := []struct {
		user, password string
		want           pam.Outcome
	}{
		{"alice", "wonderland", pam.OutcomeOK},
		{"alice", "guess", pam.OutcomeCredentials},
		{"nobody-here", "x", pam.OutcomeCredentials},
		{"old", "timer", pam.OutcomeAccount},
		{"", "wonderland", pam.OutcomeInput},
	}
	for _, c := range cases {
		err := pam.CheckPassword(ctx, cfg, c.user, []byte(c.password))
		if got := pam.Classify(err); got != c.want {
			t.Errorf("%s/%s: %v (%v), want %v", c.user, c.password, got, err, c.want)
		}
	}
	var in *pam.InputError
	if err := pam.CheckPassword(ctx, pam.Config{Service: svc, ConfDir: st.Dir(), Conv: pam.Answers()}, "alice", nil); !errors.As(err, &in) {
		t.Errorf("with a Conv: got %v, want an InputError", err)
	}
	if err := pam.CheckPassword(ctx, pam.Config{Service: svc, ConfDir: st.Dir(), User: "bob"}, "alice", nil); !errors.As(err, &in) {
		t.Errorf("with a Config.User: got %v, want an InputError", err)
	}
}

// TestClassify is acceptance 1(f): Classify on every shape of error the
// package returns, real ones from the real libpam where one can be made.
func TestClassify(t *testing.T) {
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	svc := func(name string, lines ...string) pam.Config {
		return pam.Config{Service: st.Service(name, lines...), User: "alice", ConfDir: st.Dir(), Conv: pam.Answers([]byte("pw"))}
	}
	auth := func(cfg pam.Config) error {
		return pam.Run(context.Background(), cfg, func(ctx context.Context, h *pam.Handle) error { return h.Login(ctx, 0) })
	}
	debug := func(code string) pam.Config {
		return svc("debug-"+strings.ReplaceAll(code, "_", "-"), "auth requisite pam_debug.so auth="+code, "auth required pam_permit.so", "account required pam_permit.so")
	}
	acct := func(code string) pam.Config {
		return svc("acct-"+strings.ReplaceAll(code, "_", "-"), "auth required pam_permit.so", "account requisite pam_debug.so acct="+code, "account required pam_permit.so")
	}

	// A conversation that sees its context end: the module's code
	// reflects the missing answer, and the outcome is a cancellation.
	waiting := make(chan struct{})
	waitConv := pam.ConversationFunc(func(ctx context.Context, _ []pam.Message) ([]pam.Response, error) {
		close(waiting)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-waiting; cancel() }()
	cc := svc("conv", "auth required "+mod+" prompt=Password:")
	cc.Conv = waitConv
	convCanceled := pam.Run(ctx, cc, func(ctx context.Context, h *pam.Handle) error { return h.Authenticate(ctx, 0) })

	// A wrong password whose long fail delay the deadline cuts short: the
	// verdict stands. The deadline is far above the few milliseconds the
	// PAM call takes, and far below the delay.
	dc := svc("delay", "auth optional pam_faildelay.so delay=600000000", "auth required pam_deny.so")
	dctx, dcancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer dcancel()
	delayCut := pam.Run(dctx, dc, func(ctx context.Context, h *pam.Handle) error { return h.Authenticate(ctx, 0) })
	if !errors.Is(delayCut, context.DeadlineExceeded) || !errors.Is(delayCut, pam.ErrAuth) {
		t.Errorf("fail delay cut short: %v; want ErrAuth and DeadlineExceeded both", delayCut)
	}

	// No call slot: a pool of one held by a Run that waits for the test,
	// and a context that had ended before the call.
	pool := pam.NewSlots(1)
	full := svc("pool", "auth required pam_permit.so", "account required pam_permit.so")
	full.Slots = pool
	held, release, holderDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		holderDone <- pam.Run(context.Background(), full, func(context.Context, *pam.Handle) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	busy := full
	busy.SlotWait = pam.NoSlotWait
	noSlot := auth(busy)
	close(release)
	if err := <-holderDone; err != nil {
		t.Errorf("the Run holding the pool's slot: %v", err)
	}
	ended, endNow := context.WithCancel(context.Background())
	endNow()
	endedBefore := pam.Run(ended, full, func(ctx context.Context, h *pam.Handle) error { return h.Login(ctx, 0) })
	if !errors.Is(noSlot, pam.ErrNoSlot) || !errors.Is(endedBefore, pam.ErrNoSlot) {
		t.Errorf("no slot: %v, %v; want ErrNoSlot both", noSlot, endedBefore)
	}

	closed, _ := pam.Start(svc("permit", "auth required pam_permit.so"))
	closed.Close()
	panicky := svc("panic", "auth required "+mod+" prompt=Password:")
	panicky.Conv = pam.ConversationFunc(func(context.Context, []pam.Message) ([]pam.Response, error) { panic("boom") })

	cases := []struct {
		name string
		err  error
		want pam.Outcome
	}{
		{"nil", nil, pam.OutcomeOK},
		{"NUL in the service", auth(pam.Config{Service: "a\x00b", User: "alice"}), pam.OutcomeInput},
		{"empty user", auth(pam.Config{Service: "x", Conv: pam.Answers()}), pam.OutcomeInput},
		{"wrapped InputError", fmt.Errorf("handler: %w", &pam.InputError{Op: "x", Field: "y", Err: pam.ErrNUL}), pam.OutcomeInput},
		{"pam_deny", auth(svc("deny", "auth required pam_deny.so")), pam.OutcomeCredentials},
		{"auth_err", auth(debug("auth_err")), pam.OutcomeCredentials},
		{"user_unknown", auth(debug("user_unknown")), pam.OutcomeCredentials},
		{"maxtries", auth(debug("maxtries")), pam.OutcomeCredentials},
		{"cred_insufficient", auth(debug("cred_insufficient")), pam.OutcomeCredentials},
		{"fail delay cut short", delayCut, pam.OutcomeCredentials},
		{"acct_expired", auth(acct("acct_expired")), pam.OutcomeAccount},
		{"new_authtok_reqd", auth(acct("new_authtok_reqd")), pam.OutcomeAccount},
		{"perm_denied", auth(acct("perm_denied")), pam.OutcomeAccount},
		{"try_again", auth(debug("try_again")), pam.OutcomeTemporary},
		{"authinfo_unavail", auth(debug("authinfo_unavail")), pam.OutcomeTemporary},
		{"bare Code", pam.ErrAuthTokLockBusy, pam.OutcomeTemporary},
		{"system_err", auth(debug("system_err")), pam.OutcomeSystem},
		{"missing module", auth(svc("nomod", "auth required /nonexistent/pam_nothing.so")), pam.OutcomeSystem},
		{"missing stack", auth(pam.Config{Service: "nosuch", User: "alice", ConfDir: t.TempDir(), Conv: pam.Answers()}), pam.OutcomeSystem},
		{"conversation panicked", auth(panicky), pam.OutcomeSystem},
		{"no answer left", auth(svc("twice", "auth required "+mod+" prompt=A:", "auth required "+mod+" prompt=B:")), pam.OutcomeSystem},
		{"conversation saw the context end", convCanceled, pam.OutcomeCanceled},
		{"call abandoned in C", abandoned(t, st), pam.OutcomeCanceled},
		{"closed handle", closed.Authenticate(context.Background(), 0), pam.OutcomeCanceled},
		{"dialog idle timeout", fmt.Errorf("login: %w", pam.ErrIdleTimeout), pam.OutcomeCanceled},
		{"no call slot free", noSlot, pam.OutcomeTemporary},
		{"no slot, context ended before the call", endedBefore, pam.OutcomeTemporary},
		{"not supported", fmt.Errorf("x: %w", pam.ErrNotSupported), pam.OutcomeSystem},
		{"plain error", errors.New("something else"), pam.OutcomeSystem},
	}
	for _, c := range cases {
		if got := pam.Classify(c.err); got != c.want {
			t.Errorf("%s: Classify(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
	if s := pam.OutcomeCredentials.String(); s != "credentials" {
		t.Errorf("String: %q", s)
	}
}

// abandoned returns the error of an Authenticate whose context ends while
// its module waits in C (pam_exec, for a script that waits for a file), once
// the transaction has ended.
func abandoned(t *testing.T, st *pamtest.Stack) error {
	dir := t.TempDir()
	started, release := filepath.Join(dir, "started"), filepath.Join(dir, "release")
	script := st.Script("wait.sh", ": > "+started+"\nwhile [ ! -e "+release+" ]; do /bin/sleep 0.01; done\n")
	svc := st.Service("waiting", "auth required pam_exec.so quiet "+script)
	live := pam.LiveTransactions()
	h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.Authenticate(ctx, 0) }()
	waitUntil(t, func() bool { _, err := os.Stat(started); return err == nil }, func() string { return "the module did not start" })
	cancel()
	err = <-done
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var pe *pam.Error
	if errors.As(err, &pe) {
		t.Errorf("abandoned call: got an *Error: %v", err)
	}
	waitLive(t, live)
	return err
}

// TestMissingStackNamesFiles is acceptance 1(g): a service file missing
// (with no "other") makes Start's error name the files libpam looked for.
func TestMissingStackNamesFiles(t *testing.T) {
	dir := t.TempDir()
	_, err := pam.Start(pam.Config{Service: "NoSuch", User: "alice", ConfDir: dir, Conv: pam.Answers()})
	for _, want := range []string{filepath.Join(dir, "nosuch"), filepath.Join(dir, "other")} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want the error to name %s", err, want)
		}
	}
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, pam.ErrAbort) {
		t.Errorf("got %v, want ErrAbort and fs.ErrNotExist", err)
	}
	// With "other" present the stack can be read, and nothing is added.
	// pamtest writes it (modules by absolute path, every facility defined,
	// as OpenPAM needs).
	st := pamtest.New(t)
	st.Service("other", "auth required pam_permit.so")
	h, err := pam.Start(pam.Config{Service: "nosuch", User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()})
	if err != nil {
		t.Fatalf("with other: %v", err)
	}
	h.Close()
	// A ConfDir that does not exist.
	gone := filepath.Join(dir, "gone")
	if _, err := pam.Start(pam.Config{Service: "svc", User: "alice", ConfDir: gone, Conv: pam.Answers()}); err == nil || !strings.Contains(err.Error(), filepath.Join(gone, "svc")) {
		t.Errorf("missing confdir: got %v, want it to name %s", err, filepath.Join(gone, "svc"))
	}
}
