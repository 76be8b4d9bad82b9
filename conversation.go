package pam

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/gopam/pam/internal/esc"
	"github.com/gopam/pam/internal/libpam"
)

// Style is the style of a conversation message: what the module wants done
// with it.
type Style int

// The message styles. BinaryPrompt exists on Linux-PAM only.
const (
	// PromptEchoOff asks for an answer that must not be shown, such as a
	// password.
	PromptEchoOff = Style(libpam.StylePromptEchoOff)
	// PromptEchoOn asks for an answer that may be shown, such as a user name
	// or a one-time code.
	PromptEchoOn = Style(libpam.StylePromptEchoOn)
	// ErrorMsg is an error to show; it needs no answer.
	ErrorMsg = Style(libpam.StyleErrorMsg)
	// TextInfo is information to show; it needs no answer.
	TextInfo = Style(libpam.StyleTextInfo)
	// BinaryPrompt carries a libpamc packet for an agent and expects one back
	// (Linux-PAM).
	BinaryPrompt = Style(libpam.StyleBinaryPrompt)
)

// String returns the style's PAM name, as in "PAM_PROMPT_ECHO_OFF".
func (s Style) String() string {
	switch s {
	case PromptEchoOff:
		return "PAM_PROMPT_ECHO_OFF"
	case PromptEchoOn:
		return "PAM_PROMPT_ECHO_ON"
	case ErrorMsg:
		return "PAM_ERROR_MSG"
	case TextInfo:
		return "PAM_TEXT_INFO"
	case BinaryPrompt:
		return "PAM_BINARY_PROMPT"
	}
	return fmt.Sprintf("Style(%d)", int(s))
}

// IsPrompt reports whether a message of this style needs an answer.
func (s Style) IsPrompt() bool {
	return s == PromptEchoOff || s == PromptEchoOn || s == BinaryPrompt
}

// Message is one message a module sends through the conversation.
type Message struct {
	Style Style
	// Text is the prompt or the text to show (all styles but BinaryPrompt).
	Text string
	// PacketType and Data are a BinaryPrompt's libpamc packet type and
	// payload.
	PacketType byte
	Data       []byte
}

// Response answers one Message. For a prompt, Data is the answer (nil means
// an empty answer); for a BinaryPrompt, PacketType and Data form the packet
// sent back; for ErrorMsg and TextInfo the response is ignored.
//
// gopam wipes Data (overwrites it with zeros) once it has handed the answer
// to libpam, so that no copy of a secret outlives the call: return a slice
// that is yours to give away.
type Response struct {
	Data       []byte
	PacketType byte
}

// Conversation answers the messages of one conversation call: a module sends
// one or more messages at once (up to 32), and Converse returns exactly one
// Response per Message, in order. ctx is the context of the PAM operation that
// made the call: a Conversation that waits must give up when it ends.
//
// Converse runs inside the PAM call, which waits for it, on a goroutine
// locked to its thread for the call but not on the transaction's thread (the
// library's own Answers, Dialog and TerminalConversation excepted): a
// runtime.Goexit in it (t.Fatal, t.FailNow) then fails the call with an error
// wrapping ErrGoexit, as a panic fails it with a PanicError, and cannot
// unwind libpam's C frames. It must not call back into the same Handle (that
// returns ErrReentrant). An error it returns reaches the module as a
// conversation failure and is wrapped by the operation's error if the
// operation fails (errors.Is works on it). Returning ErrConvAgain
// (Linux-PAM) asks the module to suspend instead.
type Conversation interface {
	Converse(ctx context.Context, msgs []Message) ([]Response, error)
}

// ConversationFunc adapts a function that answers a whole batch.
type ConversationFunc func(ctx context.Context, msgs []Message) ([]Response, error)

// Converse calls f.
func (f ConversationFunc) Converse(ctx context.Context, msgs []Message) ([]Response, error) {
	return f(ctx, msgs)
}

// MessageFunc adapts a function that handles one message at a time; it is
// called for every message of a batch in order, and its responses to
// non-prompts are ignored. The first error ends the batch.
type MessageFunc func(ctx context.Context, m Message) (Response, error)

// Converse calls f once per message.
func (f MessageFunc) Converse(ctx context.Context, msgs []Message) ([]Response, error) {
	out := make([]Response, len(msgs))
	for i, m := range msgs {
		r, err := f(ctx, m)
		if err != nil {
			clear(r.Data)
			wipeResponses(out[:i])
			return nil, err
		}
		if m.Style.IsPrompt() {
			out[i] = r
		}
	}
	return out, nil
}

// ErrNoAnswer is returned by the conversation of Answers when a prompt comes
// after the last answer.
var ErrNoAnswer = errors.New("pam: no answer left for the prompt")

// Answers returns a Conversation that answers prompts with the given answers
// in order, one per prompt whatever its style, and ignores other messages. It
// suits tests, scripts and servers that collected the answers beforehand and
// know the stack's prompts. It never looks at a prompt's style: when a module
// asks for the user name first, the first answer goes there, so a server that
// holds a user name and a password uses UserPassword (or CheckPassword)
// instead. It
// keeps its own copies of the answers and hands each out once (gopam wipes it
// once libpam has it); a prompt past the last answer fails with ErrNoAnswer.
// Wipe erases the answers no prompt used. It is safe for concurrent use.
func Answers(answers ...[]byte) *AnswerList {
	a := &AnswerList{}
	for _, x := range answers {
		a.left = append(a.left, append([]byte(nil), x...))
	}
	return a
}

// AnswerList is the Conversation Answers returns.
type AnswerList struct {
	mu   sync.Mutex
	left [][]byte
}

// Converse answers the prompts of msgs with the next answers.
func (a *AnswerList) Converse(_ context.Context, msgs []Message) ([]Response, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Response, len(msgs))
	taken := 0
	for i, m := range msgs {
		if !m.Style.IsPrompt() {
			continue
		}
		if taken == len(a.left) {
			// Nothing is taken until the whole batch is answered, so
			// that a failed batch loses no answer, empty ones included.
			return nil, fmt.Errorf("%w: %s", ErrNoAnswer, esc.Quote(m.Text))
		}
		out[i].Data = a.left[taken]
		taken++
	}
	a.left = a.left[taken:]
	return out, nil
}

// Left reports how many answers no prompt has used yet.
func (a *AnswerList) Left() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.left)
}

// Wipe erases the answers no prompt used and drops them.
func (a *AnswerList) Wipe() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, x := range a.left {
		clear(x)
	}
	a.left = nil
}

func wipeResponses(rs []Response) {
	for _, r := range rs {
		clear(r.Data)
	}
}

// Converse bridges libpam's conversation call to the handle's Conversation.
// It runs on the transaction's thread while the operation's caller waits, so
// reading opCtx and writing convErr need no lock.
func (s *state) Converse(msgs []libpam.Message) (_ []libpam.Response, code libpam.Code) {
	conv := s.conv
	if conv == nil {
		s.convErr = errors.New("no conversation")
		return nil, libpam.CodeConvErr
	}
	if s.abandoned.Load() {
		// Nobody waits for this call any more: let the module finish.
		return nil, libpam.CodeConvErr
	}
	in := make([]Message, len(msgs))
	for i, m := range msgs {
		in[i] = Message{Style: Style(m.Style), Text: m.Text}
		if m.Style == libpam.StyleBinaryPrompt {
			in[i].PacketType = m.Packet[4]
			in[i].Data = m.Packet[5:]
		}
	}
	ctx := s.opContext()
	if ctx == nil {
		ctx = context.Background()
	}
	resps, err := s.callConversation(ctx, conv, in)
	if err != nil {
		wipeResponses(resps)
	} else if len(resps) != len(in) {
		wipeResponses(resps)
		err = fmt.Errorf("conversation returned %d responses for %d messages", len(resps), len(in))
	}
	if err == nil {
		for i, m := range in {
			if m.Style.IsPrompt() && m.Style != BinaryPrompt && bytes.IndexByte(resps[i].Data, 0) >= 0 {
				wipeResponses(resps)
				err = &InputError{Op: "conversation", Field: "answer to " + esc.Quote(m.Text), Err: ErrNUL}
				break
			}
		}
	}
	if err != nil {
		// The first failure decides a stack's result (a required module
		// that fails makes the stack fail with its code), so it is the one
		// the operation's error wraps.
		if s.convErr == nil {
			s.convErr = err
		}
		var c Code
		if errors.As(err, &c) && (c == ErrConvAgain || c == ErrBuf) {
			if _, ok := s.lib.NativeCode(libpam.Code(c)); ok {
				return nil, libpam.Code(c)
			}
		}
		return nil, libpam.CodeConvErr
	}
	out := make([]libpam.Response, len(in))
	for i, m := range in {
		switch {
		case m.Style == BinaryPrompt:
			r := resps[i]
			pkt := make([]byte, 5+len(r.Data))
			binary.BigEndian.PutUint32(pkt, uint32(len(pkt)))
			pkt[4] = r.PacketType
			copy(pkt[5:], r.Data)
			clear(r.Data)
			out[i].Data = pkt
		case m.Style.IsPrompt():
			out[i].Data = resps[i].Data
		default:
			clear(resps[i].Data)
		}
	}
	return out, libpam.CodeSuccess
}

// callConversation calls conv for Converse, which runs inside libpam's C
// frames on the transaction's thread.
//
// A conversation of the program's own runs on a goroutine of its own, locked
// to a thread of its own for the call, while the transaction's thread waits:
// a runtime.Goexit in it (t.Fatal, t.FailNow) would otherwise unwind the C
// frames of libpam and the module, since recover cannot stop it, and leave
// the handle unable to end. The hand-off costs two thread switches per
// conversation call. The library's own conversations (Answers, Dialog, TerminalConversation) never
// exit their goroutine and run in place, at no cost.
func (s *state) callConversation(ctx context.Context, conv Conversation, msgs []Message) ([]Response, error) {
	switch conv.(type) {
	case *AnswerList, dialogConv, TerminalConversation:
		s.enterCallback()
		defer s.exitCallback()
		return recoverConversation(ctx, conv, msgs)
	}
	type result struct {
		resps []Response
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		r := result{err: ErrGoexit}
		defer func() {
			// Deferred calls run on Goexit too: r.err is still
			// ErrGoexit if conv never returned.
			s.exitCallback()
			runtime.UnlockOSThread()
			ch <- r
		}()
		// Locked, so that the callback's thread names it while it runs:
		// a call back into the handle from it gets ErrReentrant.
		runtime.LockOSThread()
		s.enterCallback()
		r.resps, r.err = recoverConversation(ctx, conv, msgs)
	}()
	r := <-ch
	return r.resps, r.err
}

// recoverConversation calls conv, turning a panic into a PanicError.
func recoverConversation(ctx context.Context, conv Conversation, msgs []Message) (resps []Response, err error) {
	defer func() {
		if v := recover(); v != nil {
			resps, err = nil, &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return conv.Converse(ctx, msgs)
}
