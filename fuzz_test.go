package pam_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
)

// The fuzz targets check the same invariants after every input: nothing
// panics past the library, the transaction ends (no live trampolines), and
// the goroutines and the C heap (mallinfo2) are back to the baseline taken
// after a warm-up. Seed corpora live in testdata/fuzz/<target>; the test
// command runs each target for a bounded time, and plain go test runs the
// seeds.

// fuzzBaseline is what a target's process held before the inputs ran.
type fuzzBaseline struct {
	live, goroutines int
	cheap            uint64
}

// fuzzSlack is how far the C heap may be above the baseline after an input:
// a leak of even a few bytes per input passes it within a short run.
const fuzzSlack = 1 << 20

func takeBaseline(tb testing.TB) fuzzBaseline {
	tb.Helper()
	waitLiveTB(tb, 0)
	c, ok := pam.MallocInUse()
	if !ok {
		tb.Fatal("mallinfo2 is unavailable: cannot measure the C heap (needs glibc)")
	}
	return fuzzBaseline{live: pam.LiveTransactions(), goroutines: runtime.NumGoroutine(), cheap: c}
}

// fuzzWithBaseline runs one input with run after a warm-up of the first
// input's process (modules loaded, threads made), then checks that the
// process is back to the baseline taken after the warm-up.
func fuzzWithBaseline[T any](warm T, run func(*testing.T, T)) func(*testing.T, T) {
	var once sync.Once
	var base fuzzBaseline
	return func(t *testing.T, in T) {
		once.Do(func() {
			for range 20 {
				run(t, warm)
			}
			base = takeBaseline(t)
		})
		run(t, in)
		base.check(t)
	}
}

// goroutineSlack is how many goroutines above the baseline an input may
// leave: the library's pool of idle threads (at most max(4, GOMAXPROCS))
// and the fuzzing engine's own goroutines come and go. A leak of one per
// input passes it within a few inputs.
func goroutineSlack() int { return max(4, runtime.GOMAXPROCS(0)) + 4 }

func (b fuzzBaseline) checkGoroutines(t *testing.T) {
	t.Helper()
	waitGoroutinesFor(t, b.goroutines+goroutineSlack(), fuzzWait)
}

// fuzzWait bounds the waits of the checks: under 10 s, after which the
// fuzzing engine kills the worker without saying why.
const fuzzWait = 5 * time.Second

// check fails t unless the process is back to b.
func (b fuzzBaseline) check(t *testing.T) {
	t.Helper()
	waitLiveFor(t, b.live, fuzzWait)
	b.checkGoroutines(t)
	if c, _ := pam.MallocInUse(); c > b.cheap+fuzzSlack {
		t.Fatalf("C heap: %d bytes in use, baseline %d", c, b.cheap)
	}
}

// waitLiveTB is waitLive for a testing.TB (a fuzz target's F).
func waitLiveTB(tb testing.TB, n int) { waitLiveFor(tb, n, time.Minute) }

func waitLiveFor(tb testing.TB, n int, limit time.Duration) {
	tb.Helper()
	for deadline := time.Now().Add(limit); pam.LiveTransactions() > n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("%d live transactions after %v, want %d", pam.LiveTransactions(), limit, n)
		}
	}
}

// waitGoroutinesFor is waitGoroutines with a limit.
func waitGoroutinesFor(t *testing.T, n int, limit time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(limit); runtime.NumGoroutine() > n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after %v, want at most %d:\n%s", runtime.NumGoroutine(), limit, n, buf[:runtime.Stack(buf, true)])
		}
	}
}

// checkText fails t unless err's text is one line under 4 KiB with one
// "pam: " prefix at most.
func checkText(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	s := err.Error()
	if strings.ContainsAny(s, "\n\r") || len(s) >= 4096 || strings.Count(s, "pam: ") > 1 {
		t.Fatalf("error text is not one bounded line with one prefix (%d bytes): %.500q", len(s), s)
	}
}

// fuzzBatch is the Go reading of a fuzzfile= description (see
// internal/testmodule): what pam_gotest sends, and so what the conversation
// must receive.
type fuzzBatch struct {
	n        int
	nullresp bool
	styles   []int
	bufs     [][]byte // each message's buffer, zero-padded as the module allocates it
}

func parseBatch(in []byte) fuzzBatch {
	var b fuzzBatch
	if len(in) > 0 {
		b.n = int(in[0]) % 41
	}
	b.nullresp = len(in) > 1 && in[1]&1 != 0
	pos := 2
	for range b.n {
		sb := byte(1)
		if pos < len(in) {
			sb = in[pos]
		}
		pos++
		style := int(int8(sb))
		if sb < 0x80 {
			style = int(sb % 8)
		}
		tl := 0
		if pos < len(in) {
			tl = int(in[pos]) << 8
		}
		if pos+1 < len(in) {
			tl |= int(in[pos+1])
		}
		pos += 2
		have := min(max(len(in)-pos, 0), tl)
		buf := bytes.Repeat([]byte{'x'}, tl)
		if have > 0 {
			copy(buf, in[pos:pos+have])
		}
		pos += have
		buf = append(buf, 0)
		if style == 7 {
			if len(buf) < 8 {
				buf = append(buf, make([]byte, 8-len(buf))...)
			}
			if d := int(binary.BigEndian.Uint32(buf)); d <= 1<<20 && d+1 > len(buf) {
				buf = append(buf, make([]byte, d+1-len(buf))...)
			}
		}
		b.styles = append(b.styles, style)
		b.bufs = append(b.bufs, buf)
	}
	return b
}

// expected returns the messages the conversation must see, or ok false when
// the library must refuse the batch without calling it.
func (b fuzzBatch) expected() (msgs []pam.Message, ok bool) {
	if b.n < 1 || b.n > 32 {
		return nil, false
	}
	prompt := false
	for i, st := range b.styles {
		buf := b.bufs[i]
		// Linux-PAM's numbers, which pam_gotest sends.
		m := pam.Message{Style: map[int]pam.Style{1: pam.PromptEchoOff, 2: pam.PromptEchoOn, 3: pam.ErrorMsg, 4: pam.TextInfo, 7: pam.BinaryPrompt}[st]}
		switch st {
		case 1, 2:
			prompt = true
			m.Text = string(buf[:bytes.IndexByte(buf, 0)])
		case 3, 4:
			m.Text = string(buf[:bytes.IndexByte(buf, 0)])
		case 7:
			prompt = true
			d := int(binary.BigEndian.Uint32(buf))
			if d < 5 || d > 1<<20 {
				return nil, false
			}
			m.PacketType, m.Data = buf[4], buf[5:d]
		default:
			return nil, false
		}
		msgs = append(msgs, m)
	}
	if b.nullresp && prompt {
		return nil, false
	}
	return msgs, true
}

// FuzzConversation drives the conversation end to end: pam_gotest sends a
// batch the fuzzer describes (0..40 messages, any style number, texts of up
// to 64 KiB, binary packets with any length header) and a Go conversation
// answers as the fuzzer says (right, too few, too many, nil, huge (64 KiB), NUL
// bytes, a panic, an error).
func FuzzConversation(f *testing.F) {
	pamtest.LinuxPAMOnly(f, "the fuzz inputs use binary prompts and Linux-PAM's conversation rules")
	st := pamtest.New(f)
	batchFile := filepath.Join(f.TempDir(), "batch")
	svc := st.Service("fuzz", "auth required "+testmodule.Build(f)+" fuzzfile="+batchFile)
	f.Add([]byte{1, 0, 1, 0, 4, 'p', 'w', ':', ' '}, []byte{0, 3, 'a', 'b', 'c'})                                         // one password prompt
	f.Add([]byte{2, 0, 4, 0, 1, 'i', 7, 0, 9, 0, 0, 0, 9, 1, 'p', 'i', 'n', 'g'}, []byte{0, 0, 5, 2, 'p', 'o', 'n', 'g'}) // info, binary
	f.Add([]byte{33, 0}, []byte{0})                                                                                       // too many messages
	f.Add([]byte{1, 0, 7, 0, 4, 0xff, 0xff, 0xff, 0xff}, []byte{0})                                                       // corrupt packet length
	f.Add([]byte{2, 1, 3, 0, 2, 'e', '\n', 2, 0, 1, 'u'}, []byte{4, 5, 'b', 'o', 'o', 'm', '\n'})                         // NULL resp with a prompt
	f.Add([]byte{1, 0, 2, 0xff, 0xff}, []byte{6})                                                                         // 64 KiB prompt, 1 MiB answer
	var mu sync.Mutex                                                                                                     // the batch file is the module's argument: one input at a time
	runOne := func(t *testing.T, desc, plan []byte) {
		mu.Lock()
		defer mu.Unlock()
		if err := os.WriteFile(batchFile, desc, 0o600); err != nil {
			t.Fatal(err)
		}
		batch := parseBatch(desc)
		want, wantCall := batch.expected()
		mode := 0
		if len(plan) > 0 {
			mode, plan = int(plan[0]%8), plan[1:]
		}
		chunk := func() []byte {
			if len(plan) == 0 {
				return nil
			}
			n := min(int(plan[0]), len(plan)-1)
			c := append([]byte(nil), plan[1:1+n]...)
			plan = plan[1+n:]
			return c
		}
		var called bool
		var sawNUL bool
		var mismatch string // the conversation runs on the transaction's thread: no t.Fatal there
		sentinel := errors.New("fuzz conversation error")
		conv := pam.ConversationFunc(func(_ context.Context, msgs []pam.Message) ([]pam.Response, error) {
			called = true
			if !wantCall {
				mismatch = fmt.Sprintf("the conversation was called with %d messages, want a refusal", len(msgs))
			} else if len(msgs) != len(want) {
				mismatch = fmt.Sprintf("got %d messages, want %d", len(msgs), len(want))
			} else {
				for i, m := range msgs {
					w := want[i]
					if m.Style != w.Style || m.Text != w.Text || m.PacketType != w.PacketType || !bytes.Equal(m.Data, w.Data) {
						mismatch = fmt.Sprintf("message %d: got %v %q type %d %d bytes, want %v %q type %d %d bytes",
							i, m.Style, trim(m.Text), m.PacketType, len(m.Data), w.Style, trim(w.Text), w.PacketType, len(w.Data))
						break
					}
				}
			}
			out := make([]pam.Response, len(msgs))
			for i, m := range msgs {
				c := chunk()
				switch mode {
				case 6: // 128 times PAM_MAX_RESP_SIZE; 1 MiB answers to 32 prompts outlast the fuzzing engine's 10 s per input on a loaded machine
					c = bytes.Repeat([]byte{'y'}, 64<<10)
				case 7:
					c = bytes.ReplaceAll(c, []byte{0}, nil)
				}
				out[i].Data = c
				if len(c) > 0 {
					out[i].PacketType = c[0]
				}
				if (m.Style == pam.PromptEchoOff || m.Style == pam.PromptEchoOn) && bytes.IndexByte(c, 0) >= 0 {
					sawNUL = true
				}
			}
			switch mode {
			case 1:
				return out[:len(out)-1], nil
			case 2:
				return append(out, pam.Response{Data: []byte("extra")}), nil
			case 3:
				return nil, nil
			case 4:
				panic(fmt.Sprintf("%x\npanic text\x1b[2J", chunk()))
			case 5:
				return nil, fmt.Errorf("%w: %x\n\xff", sentinel, chunk())
			}
			return out, nil
		})
		h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: conv})
		if err != nil {
			t.Fatal(err)
		}
		err = h.Authenticate(context.Background(), 0)
		if cerr := h.Close(); cerr != nil {
			t.Fatalf("Close: %v", cerr)
		}
		if mismatch != "" {
			t.Fatal(mismatch)
		}
		checkText(t, err)
		var pe *pam.Error
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("got %v (%T), want nil or a *pam.Error", err, err)
		}
		switch {
		case !wantCall:
			if called || !errors.Is(err, pam.ErrConv) {
				t.Fatalf("refused batch: called=%v, err %v, want ErrConv", called, err)
			}
		case mode == 4:
			var p *pam.PanicError
			if !errors.As(err, &p) {
				t.Fatalf("a panicking conversation gave %v", err)
			}
		case mode == 5:
			if !errors.Is(err, sentinel) || !errors.Is(err, pam.ErrConv) {
				t.Fatalf("a failing conversation gave %v", err)
			}
		case mode == 6 || mode == 7 || (mode == 0 && !sawNUL):
			if err != nil {
				t.Fatalf("a good answer (mode %d) gave %v", mode, err)
			}
		default: // wrong count, nil, NUL in an answer
			if !errors.Is(err, pam.ErrConv) {
				t.Fatalf("a bad answer (mode %d) gave %v, want ErrConv", mode, err)
			}
		}
	}
	type input struct{ desc, plan []byte }
	one := fuzzWithBaseline(input{[]byte{1, 0, 1, 0, 2, 'p', ':'}, []byte{0, 1, 'a'}},
		func(t *testing.T, in input) { runOne(t, in.desc, in.plan) })
	f.Fuzz(func(t *testing.T, desc, plan []byte) { one(t, input{desc, plan}) })
}

func trim(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// FuzzEnv sets, reads, removes and lists PAM environment variables with
// names and values the fuzzer chooses, against a model of what libpam must
// hold.
func FuzzEnv(f *testing.F) {
	st := pamtest.New(f)
	svc := st.Service("permit", "auth required pam_permit.so")
	f.Add([]byte("\x00\x04HOME\x05/root\x01\x04HOME\x02\x04HOME\x03"))
	f.Add([]byte("\x00\x03A=B\x01c\x00\x00\x00\x02\x07MISSING\x03\x00\x01X\x00"))
	f.Add([]byte("\x00\x01K\x03v\x00v\x00\x02K\x00\x04"))
	runOne := func(t *testing.T, data []byte) {
		h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()})
		if err != nil {
			t.Fatal(err)
		}
		env := h.Env()
		model := map[string]string{}
		field := func() string { // a length byte, then the bytes
			if len(data) == 0 {
				return ""
			}
			n := min(int(data[0]), len(data)-1)
			s := string(data[1 : 1+n])
			data = data[1+n:]
			return s
		}
		for steps := 0; len(data) > 0 && steps < 64; steps++ {
			op := data[0] % 5
			data = data[1:]
			badName := func(n string) bool { return n == "" || strings.ContainsAny(n, "=\x00") }
			switch op {
			case 0: // set
				name, value := field(), field()
				err := env.Set(name, value)
				checkText(t, err)
				var ie *pam.InputError
				switch {
				case badName(name) || strings.IndexByte(value, 0) >= 0:
					if !errors.As(err, &ie) {
						t.Fatalf("Set(%q, %q) = %v, want an InputError", name, value, err)
					}
				case err != nil:
					t.Fatalf("Set(%q, %q): %v", name, value, err)
				default:
					model[name] = value
				}
			case 1: // get
				name := field()
				v, ok, err := env.Get(name)
				checkText(t, err)
				if badName(name) {
					if err == nil {
						t.Fatalf("Get(%q) accepted a bad name", name)
					}
					break
				}
				if w, wok := model[name]; err != nil || ok != wok || v != w {
					t.Fatalf("Get(%q) = %q %v %v, want %q %v", name, v, ok, err, w, wok)
				}
			case 2: // unset
				name := field()
				err := env.Unset(name)
				checkText(t, err)
				_, had := model[name]
				switch {
				case badName(name):
					if err == nil {
						t.Fatalf("Unset(%q) accepted a bad name", name)
					}
				case pam.Implementation() == "OpenPAM": // no pam_unsetenv there
					if !errors.Is(err, pam.ErrNotSupported) {
						t.Fatalf("Unset(%q) on OpenPAM = %v, want ErrNotSupported", name, err)
					}
					continue
				case had && err != nil:
					t.Fatalf("Unset(%q): %v", name, err)
				case !had && !errors.Is(err, pam.ErrBadItem):
					t.Fatalf("Unset(%q) of a missing variable = %v, want ErrBadItem", name, err)
				}
				delete(model, name)
			case 3: // list, map, len
				list, err := env.List()
				if err != nil {
					t.Fatal(err)
				}
				var want []string
				for k, v := range model {
					want = append(want, k+"="+v)
				}
				sort.Strings(list)
				sort.Strings(want)
				if strings.Join(list, "\x00") != strings.Join(want, "\x00") {
					t.Fatalf("List = %q, want %q", list, want)
				}
				m, err := env.Map()
				if n, lerr := env.Len(); err != nil || lerr != nil || n != len(model) || len(m) != len(model) {
					t.Fatalf("Map has %d, Len %d (%v, %v), want %d", len(m), n, err, lerr, len(model))
				}
			case 4: // close early: every later call says ErrClosed
				if err := h.Close(); err != nil {
					t.Fatal(err)
				}
				if _, _, err := env.Get("X"); !errors.Is(err, pam.ErrClosed) {
					t.Fatalf("Get after Close: %v", err)
				}
				data = nil
			}
		}
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
	}
	f.Fuzz(fuzzWithBaseline([]byte("\x00\x01A\x01b\x03"), runOne))
}

// FuzzDialog drives a Dialog through random interleavings of Next, Answer,
// Fail, Cancel and idle expiry (Expire, so that no clock decides), with
// stale, future and duplicate sequence numbers and wrong response counts,
// some answers sent from two goroutines at once.
func FuzzDialog(f *testing.F) {
	pamtest.LinuxPAMOnly(f, "its invariants are not yet checked against OpenPAM's conversation")
	st := pamtest.New(f)
	mod := testmodule.Build(f)
	svc := st.Service("dialog",
		"auth required "+mod+" echoprompt=user:",
		"auth required "+mod+" prompt=password: expect=secret",
		"auth required "+mod+" nmsg=2",
		"auth required "+mod+" prompt=code:",
		"account required pam_permit.so")
	f.Add([]byte{0, 0, 0, 0, 0})
	f.Add([]byte{0, 8, 1, 0, 16, 2, 0})
	f.Add([]byte{7, 0, 3, 0})
	f.Add([]byte{0, 4})
	runOne := func(t *testing.T, ops []byte) {
		d, err := pam.StartDialog(context.Background(), pam.Config{Service: svc, User: "alice", ConfDir: st.Dir()}, time.Hour,
			func(ctx context.Context, h *pam.Handle) error { return h.Login(ctx, 0) })
		if err != nil {
			t.Fatal(err)
		}
		next := func() pam.Step {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard only
			defer cancel()
			s, err := d.Next(ctx)
			if err != nil {
				t.Fatalf("Next: %v (the dialog hangs)", err)
			}
			return s
		}
		answers := func(s pam.Step, n int) []pam.Response {
			r := make([]pam.Response, n)
			for i := range r {
				r[i].Data = []byte("secret")
			}
			return r
		}
		checkAnswerErr := func(err error) {
			checkText(t, err)
			if err != nil && !errors.Is(err, pam.ErrStaleAnswer) && !errors.Is(err, pam.ErrNotWaiting) && !strings.Contains(err.Error(), "responses for") {
				t.Fatalf("Answer: unexpected error %v", err)
			}
		}
		step := next()
		expired, cancelled := false, false
		for i, b := range ops {
			if i >= 32 || step.Done {
				break
			}
			seq := step.Seq + uint64(int64(b>>3%3)-1) // stale, current, future
			switch b % 8 {
			case 0:
				checkAnswerErr(d.Answer(seq, answers(step, len(step.Prompts))))
			case 1:
				checkAnswerErr(d.Answer(step.Seq, answers(step, len(step.Prompts)+1)))
			case 2:
				checkAnswerErr(d.Fail(seq, errors.New("fuzz says no\nsecond line")))
			case 3:
				d.Expire()
				expired = true
			case 4:
				d.Cancel()
				cancelled = true
			case 5:
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				if _, err := d.Next(ctx); err != nil && !errors.Is(err, context.Canceled) {
					t.Fatalf("Next with an ended context: %v", err)
				}
			case 6, 7: // the same answer twice at once: at most one is taken
				errs := make(chan error, 2)
				for range 2 {
					go func() { errs <- d.Answer(step.Seq, answers(step, len(step.Prompts))) }()
				}
				e1, e2 := <-errs, <-errs
				checkAnswerErr(e1)
				checkAnswerErr(e2)
				if e1 == nil && e2 == nil {
					t.Fatal("two answers to one batch were both taken")
				}
			}
			step = next()
		}
		d.Cancel()
		select {
		case <-d.Done():
		case <-time.After(time.Minute): // a hang guard only
			t.Fatal("the dialog did not end after Cancel")
		}
		final := next()
		if !final.Done {
			t.Fatal("Next after Done is not the final step")
		}
		err = d.Err()
		checkText(t, err)
		if err != nil && !expired && !cancelled && !errors.Is(err, pam.ErrDialogCancelled) && !errors.Is(err, pam.ErrAuth) && !errors.Is(err, pam.ErrConv) {
			t.Fatalf("result: %v", err)
		}
		if err := d.Answer(final.Seq, nil); !errors.Is(err, pam.ErrNotWaiting) {
			t.Fatalf("an answer after the end: %v, want ErrNotWaiting", err)
		}
	}
	f.Fuzz(fuzzWithBaseline([]byte{0, 0, 0, 0}, runOne))
}
