package pam_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
)

// recorder is a conversation that records every batch and answers prompts
// with answer.
type recorder struct {
	mu      sync.Mutex
	batches [][]pam.Message
	answer  func(m pam.Message) pam.Response
}

func (r *recorder) Converse(_ context.Context, msgs []pam.Message) ([]pam.Response, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, msgs)
	out := make([]pam.Response, len(msgs))
	for i, m := range msgs {
		if m.Style.IsPrompt() && r.answer != nil {
			out[i] = r.answer(m)
		}
	}
	return out, nil
}

func answerAll(s string) func(pam.Message) pam.Response {
	return func(pam.Message) pam.Response { return pam.Response{Data: []byte(s)} }
}

// start begins a transaction for alice on one service of st.
func start(t *testing.T, st *pamtest.Stack, svc string, conv pam.Conversation) *pam.Handle {
	t.Helper()
	return startCfg(t, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: conv})
}

// startCfg begins a transaction described by cfg, closed when the test ends.
func startCfg(t *testing.T, cfg pam.Config) *pam.Handle {
	t.Helper()
	h, err := pam.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func TestStressChauthtokIsOneBatch(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "module pam_stress")
	st := pamtest.New(t)
	svc := st.Service("stress", "password required pam_stress.so")
	r := &recorder{answer: answerAll("same")}
	if err := start(t, st, svc, r).ChangeAuthTok(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if len(r.batches) != 1 || len(r.batches[0]) != 3 {
		t.Fatalf("batches %+v: want one batch of three messages", r.batches)
	}
	b := r.batches[0]
	if b[0].Style != pam.TextInfo || b[1].Style != pam.PromptEchoOff || b[2].Style != pam.PromptEchoOff {
		t.Errorf("styles %v %v %v: want info, echo-off, echo-off", b[0].Style, b[1].Style, b[2].Style)
	}

	n := 0
	r = &recorder{answer: func(pam.Message) pam.Response { n++; return pam.Response{Data: fmt.Appendf(nil, "pw%d", n)} }}
	err := start(t, st, svc, r).ChangeAuthTok(context.Background(), 0)
	if !errors.Is(err, pam.ErrAuthTok) {
		t.Fatalf("mismatched answers: got %v, want ErrAuthTok", err)
	}
	if len(r.batches) != 2 || r.batches[1][0].Style != pam.ErrorMsg {
		t.Fatalf("batches %+v: want the three prompts, then an error message", r.batches)
	}
}

func TestBinaryPrompt(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "binary prompts (PAM_BINARY_PROMPT)")
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	svc := st.Service("binary", "auth required "+mod+" binary")
	var got pam.Message
	conv := pam.MessageFunc(func(_ context.Context, m pam.Message) (pam.Response, error) {
		got = m
		return pam.Response{PacketType: 2, Data: []byte("pong")}, nil
	})
	if err := start(t, st, svc, conv).Authenticate(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if got.Style != pam.BinaryPrompt || got.PacketType != 1 || string(got.Data) != "ping" {
		t.Errorf("message %+v: want a binary prompt of type 1 carrying ping", got)
	}
	wrong := pam.MessageFunc(func(context.Context, pam.Message) (pam.Response, error) {
		return pam.Response{PacketType: 2, Data: []byte("nope")}, nil
	})
	if err := start(t, st, svc, wrong).Authenticate(context.Background(), 0); !errors.Is(err, pam.ErrAuth) {
		t.Errorf("wrong packet: got %v, want ErrAuth", err)
	}
}

// TestMessageCounts: libpam does not enforce PAM_MAX_NUM_MSG; gopam does.
func TestMessageCounts(t *testing.T) {
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	for _, c := range []struct {
		n    int
		want error
	}{{0, pam.ErrConv}, {1, nil}, {32, nil}, {33, pam.ErrConv}, {1000, pam.ErrConv}} {
		svc := st.Service(fmt.Sprintf("n%d", c.n), fmt.Sprintf("auth required %s nmsg=%d", mod, c.n))
		r := &recorder{}
		err := start(t, st, svc, r).Authenticate(context.Background(), 0)
		if c.want == nil {
			if err != nil || len(r.batches) != 1 || len(r.batches[0]) != c.n {
				t.Errorf("%d messages: got %v and batches of %d, want success and one batch", c.n, err, len(r.batches))
			}
			continue
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%d messages: got %v, want %v", c.n, err, c.want)
		}
		if len(r.batches) != 0 {
			t.Errorf("%d messages reached the conversation", c.n)
		}
	}
}

func TestNullRespPointerAndBigMessage(t *testing.T) {
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	svc := st.Service("odd", "auth required "+mod+" nullresp bigmsg=65536")
	r := &recorder{}
	if err := start(t, st, svc, r).Authenticate(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if len(r.batches) != 2 || r.batches[0][0].Text != "nullresp" {
		t.Fatalf("batches %d: want the NULL-resp message then the big one", len(r.batches))
	}
	if big := r.batches[1][0].Text; len(big) != 65536 || strings.Trim(big, "x") != "" {
		t.Errorf("big message of %d bytes, want 65536 x's", len(big))
	}
	// A module that asks a question with nowhere to put the answer is refused.
	svc = st.Service("noresp", "auth required "+mod+" nullresp prompt=Password:")
	if err := start(t, st, svc, &recorder{answer: answerAll("x")}).Authenticate(context.Background(), 0); err != nil {
		t.Fatalf("info with NULL resp, then a normal prompt: %v", err)
	}
}

func TestPromptAnswers(t *testing.T) {
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	svc := st.Service("prompt", "auth required "+mod+" [prompt=Password: ] expect=hunter2",
		"auth required "+mod+" [echoprompt=Code: ] expect=123456")
	ok := pam.Answers([]byte("hunter2"), []byte("123456"))
	if err := start(t, st, svc, ok).Authenticate(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	bad := pam.Answers([]byte("hunter2"), []byte("654321"))
	if err := start(t, st, svc, bad).Authenticate(context.Background(), 0); !errors.Is(err, pam.ErrAuth) {
		t.Fatalf("wrong code: got %v, want ErrAuth", err)
	}
	short := pam.Answers([]byte("hunter2"))
	err := start(t, st, svc, short).Authenticate(context.Background(), 0)
	if !errors.Is(err, pam.ErrConv) || !errors.Is(err, pam.ErrNoAnswer) {
		t.Fatalf("no answer left: got %v, want ErrConv wrapping ErrNoAnswer", err)
	}
	nul := pam.Answers([]byte("hun\x00ter2"))
	err = start(t, st, svc, nul).Authenticate(context.Background(), 0)
	if !errors.Is(err, pam.ErrConv) || !errors.Is(err, pam.ErrNUL) {
		t.Fatalf("NUL in an answer: got %v, want ErrConv wrapping ErrNUL", err)
	}
}

var errHandler = errors.New("the user went away")

func TestConversationFailures(t *testing.T) {
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	svc := st.Service("prompt", "auth required "+mod+" prompt=Password:")
	ctx := context.Background()

	failing := pam.ConversationFunc(func(context.Context, []pam.Message) ([]pam.Response, error) {
		return nil, fmt.Errorf("lookup: %w", errHandler)
	})
	err := start(t, st, svc, failing).Authenticate(ctx, 0)
	if !errors.Is(err, errHandler) || !errors.Is(err, pam.ErrConv) {
		t.Errorf("handler error: got %v, want ErrConv wrapping the handler's error", err)
	}

	panicking := pam.MessageFunc(func(context.Context, pam.Message) (pam.Response, error) {
		panic("boom")
	})
	err = start(t, st, svc, panicking).Authenticate(ctx, 0)
	var pe *pam.PanicError
	if !errors.As(err, &pe) || pe.Value != "boom" || !errors.Is(err, pam.ErrConv) || len(pe.Stack) == 0 {
		t.Errorf("panic: got %v, want ErrConv wrapping a PanicError with the value and a stack", err)
	}

	panicErr := pam.MessageFunc(func(context.Context, pam.Message) (pam.Response, error) {
		panic(errHandler)
	})
	if err := start(t, st, svc, panicErr).Authenticate(ctx, 0); !errors.Is(err, errHandler) {
		t.Errorf("panic with an error: got %v, want it wrapped", err)
	}

	garbage := pam.ConversationFunc(func(context.Context, []pam.Message) ([]pam.Response, error) {
		return make([]pam.Response, 5), nil
	})
	if err := start(t, st, svc, garbage).Authenticate(ctx, 0); !errors.Is(err, pam.ErrConv) ||
		!strings.Contains(err.Error(), "5 responses for 1 messages") {
		t.Errorf("wrong number of responses: got %v", err)
	}

	// An optional module's failed conversation does not fail the stack: it
	// succeeds, but the panic is still reported.
	echo := st.Service("echo", "auth optional "+mod+" nmsg=1", "auth required pam_permit.so")
	err = start(t, st, echo, panicking).Authenticate(ctx, 0)
	if !errors.As(err, &pe) {
		t.Errorf("panic under pam_echo: got %v, want a PanicError", err)
	}
	var pamErr *pam.Error
	if errors.As(err, &pamErr) {
		t.Errorf("the stack succeeded, but the error claims a PAM code: %v", err)
	}
}

func TestDelayCallbackPanics(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "the fail delay (Config.Delay)")
	st := pamtest.New(t)
	svc := st.Service("deny", "auth required pam_deny.so")
	h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers(),
		Delay: func(context.Context, error, time.Duration) { panic("delay boom") }})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	err = h.Authenticate(context.Background(), 0)
	var pe *pam.PanicError
	if !errors.Is(err, pam.ErrAuth) || !errors.As(err, &pe) {
		t.Fatalf("got %v, want ErrAuth wrapping the delay callback's panic", err)
	}
}

// TestNULInput: every string that would reach C is checked before any call.
func TestNULInput(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("ok", "auth required pam_permit.so")
	base := pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()}
	for field, mutate := range map[string]func(*pam.Config){
		"service": func(c *pam.Config) { c.Service = "o\x00k" },
		"user":    func(c *pam.Config) { c.User = "ali\x00ce" },
		"confdir": func(c *pam.Config) { c.ConfDir += "\x00" },
		"tty":     func(c *pam.Config) { c.TTY = "tty\x001" },
		"rhost":   func(c *pam.Config) { c.RHost = "\x00" },
		"ruser":   func(c *pam.Config) { c.RUser = "r\x00" },
	} {
		cfg := base
		mutate(&cfg)
		live := pam.LiveTransactions()
		_, err := pam.Start(cfg)
		var ie *pam.InputError
		if !errors.As(err, &ie) || !errors.Is(err, pam.ErrNUL) || ie.Field != field {
			t.Errorf("%s with NUL: got %v, want an InputError for %s", field, err, field)
		}
		if pam.LiveTransactions() != live {
			t.Errorf("%s with NUL: a transaction was started", field)
		}
	}
	h := start(t, st, svc, pam.Answers())
	if err := h.SetItem(pam.ItemRHost, "host\x00"); !errors.Is(err, pam.ErrNUL) {
		t.Errorf("SetItem: got %v", err)
	}
	if err := h.SetAuthTok([]byte("pw\x00")); !errors.Is(err, pam.ErrNUL) {
		t.Errorf("SetAuthTok: got %v", err)
	}
	if err := h.SetXAuthData(pam.XAuthData{Name: "a\x00b"}); !errors.Is(err, pam.ErrNUL) &&
		(pam.HasExtension(pam.ExtXAuthData) || !errors.Is(err, pam.ErrNotSupported)) {
		t.Errorf("SetXAuthData: got %v", err)
	}
	if err := h.Authenticate(context.Background(), 0); err != nil {
		t.Errorf("the handle is unusable after rejected input: %v", err)
	}
}

func TestAnswersWipe(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("prompt", promptLine(t))
	secret := []byte("hunter2")
	a := pam.Answers([]byte("pw"), secret, []byte("spare"))
	if err := start(t, st, svc, a).Authenticate(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if a.Left() != 2 {
		t.Fatalf("%d answers left, want 2", a.Left())
	}
	a.Wipe()
	if a.Left() != 0 {
		t.Fatalf("%d answers left after Wipe", a.Left())
	}
	if string(secret) != "hunter2" {
		t.Error("Answers wiped the caller's slice, not its own copy")
	}
}
