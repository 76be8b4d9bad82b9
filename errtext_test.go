package pam_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/pamtest"
)

// hostileUser is a user name as a remote client may send it: a newline that
// would forge a log line, an ANSI escape, and 1 MiB of text.
var hostileUser = "eve\n2026-12-01 root logged in OK\x1b[2J" + strings.Repeat("A", 1<<20)

// checkErrText fails unless err's text is one line under 1 KiB that shows
// the start of the name escaped.
func checkErrText(t *testing.T, what string, err error, wantEscaped bool) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	text := err.Error()
	if strings.ContainsAny(text, "\n\r\x1b") || len(text) >= 1024 {
		t.Errorf("%s: the error text is %d bytes or not one clean line: %.300q", what, len(text), text)
	}
	if strings.Contains(text, "pam: pam:") || strings.Count(text, "pam: ") > 1 {
		t.Errorf("%s: the error text repeats its prefix: %s", what, text)
	}
	if wantEscaped && !strings.Contains(text, `"eve\n2026-12-01 root logged in OK\x1b[2JAAA`) {
		t.Errorf("%s: the error text does not show the name escaped: %.300s", what, text)
	}
}

// checkFullUser checks that the *pam.Error in err keeps the whole name.
func checkFullUser(t *testing.T, what string, err error) {
	t.Helper()
	var pe *pam.Error
	if !errors.As(err, &pe) {
		t.Fatalf("%s: %T is not a *pam.Error", what, err)
	}
	if pe.User != hostileUser {
		t.Errorf("%s: Error.User is %d bytes, want the full %d", what, len(pe.User), len(hostileUser))
	}
}

// TestErrorTextEscapedAndBounded is issue 8's acceptance 2 for the library:
// Start, Authenticate and Dialog errors about a hostile user name are one
// line each and under 1 KiB, and (*pam.Error).User keeps the full name.
func TestErrorTextEscapedAndBounded(t *testing.T) {
	st := pamtest.New(t)
	deny := st.Service("deny", "auth required pam_deny.so")
	stress := st.Service("stress", "auth required pam_stress.so")

	t.Run("start", func(t *testing.T) {
		empty := t.TempDir() // no service file, no "other": pam_start fails
		_, err := pam.Start(pam.Config{Service: "nothing", User: hostileUser, ConfDir: empty, Conv: pam.Answers()})
		checkErrText(t, "Start", err, true)
		checkFullUser(t, "Start", err)
	})
	t.Run("authenticate", func(t *testing.T) {
		h, err := pam.Start(pam.Config{Service: deny, User: hostileUser, ConfDir: st.Dir(), Conv: pam.Answers()})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		err = h.Authenticate(context.Background(), 0)
		checkErrText(t, "Authenticate", err, true)
		checkFullUser(t, "Authenticate", err)
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		// After Close: ErrClosed, one prefix.
		checkErrText(t, "Authenticate after Close", h.Authenticate(context.Background(), 0), false)
	})
	t.Run("env", func(t *testing.T) {
		h, err := pam.Start(pam.Config{Service: deny, User: hostileUser, ConfDir: st.Dir(), Conv: pam.Answers()})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		checkErrText(t, "Env.Set", h.Env().Set(hostileUser+"=x", "v"), true)
		checkErrText(t, "Env.Unset", h.Env().Unset(hostileUser), true)
	})
	t.Run("dialog", func(t *testing.T) {
		d, err := pam.StartDialog(context.Background(), pam.Config{Service: stress, User: hostileUser, ConfDir: st.Dir()}, time.Hour,
			func(ctx context.Context, h *pam.Handle) error { return h.Authenticate(ctx, 0) })
		if err != nil {
			t.Fatal(err)
		}
		step, err := d.Next(context.Background())
		if err != nil || step.Done {
			t.Fatalf("first step %+v, %v", step, err)
		}
		checkErrText(t, "Dialog.Answer (count)", d.Answer(step.Seq, nil), false)
		d.Expire()
		<-d.Done()
		checkErrText(t, "Dialog.Err", d.Err(), true)
		checkFullUser(t, "Dialog.Err", d.Err())
		checkErrText(t, "Dialog.Answer (late)", d.Answer(step.Seq, []pam.Response{{}}), false)
	})
	t.Run("run", func(t *testing.T) {
		err := pam.Run(context.Background(), pam.Config{Service: deny, User: hostileUser, ConfDir: st.Dir(), Conv: pam.Answers()},
			func(ctx context.Context, h *pam.Handle) error { return h.Authenticate(ctx, 0) })
		checkErrText(t, "Run", err, true)
		checkFullUser(t, "Run", err)
	})
	t.Run("run abandoned", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		release := make(chan struct{})
		defer close(release)
		conv := pam.ConversationFunc(func(context.Context, []pam.Message) ([]pam.Response, error) {
			cancel()
			<-release // ignores its context: Run abandons the transaction
			return nil, errors.New("released")
		})
		err := pam.Run(ctx, pam.Config{Service: stress, User: hostileUser, ConfDir: st.Dir(), Conv: conv},
			func(ctx context.Context, h *pam.Handle) error { return h.Authenticate(ctx, 0) })
		if !errors.Is(err, pam.ErrClosed) || !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want ErrClosed and context.Canceled", err)
		}
		checkErrText(t, "Run abandoned", err, false)
	})
}

// TestNoSlotErrorOnePrefix: a transaction whose context had ended with a
// cause of gopam's own (a cancelled Dialog's) fails with ErrNoSlot, and the
// text says "pam: " once (found by FuzzDialog).
func TestNoSlotErrorOnePrefix(t *testing.T) {
	st := pamtest.New(t)
	cfg := pam.Config{Service: st.Service("permit", "auth required pam_permit.so", "account required pam_permit.so"), ConfDir: st.Dir(), User: "alice", Conv: pam.Answers()}
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(pam.ErrDialogCancelled)
	err := pam.Run(ctx, cfg, func(ctx context.Context, h *pam.Handle) error { return h.Authenticate(ctx, 0) })
	if !errors.Is(err, pam.ErrNoSlot) || !errors.Is(err, pam.ErrDialogCancelled) {
		t.Fatalf("Run with an ended context: %v; want ErrNoSlot wrapping the cause", err)
	}
	checkErrText(t, "Run, no slot", err, false)
	if strictSuite() {
		return // a strict handle holds its slot from Start: AcctMgmt needs none
	}
	h, err := pam.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	err = h.AcctMgmt(ctx, 0)
	if !errors.Is(err, pam.ErrNoSlot) || !errors.Is(err, pam.ErrDialogCancelled) {
		t.Fatalf("AcctMgmt with an ended context: %v; want ErrNoSlot wrapping the cause", err)
	}
	checkErrText(t, "AcctMgmt, no slot", err, false)
}
