package libpam

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/ebitengine/purego"
)

// MaxMessages is PAM_MAX_NUM_MSG: the most messages one conversation call may
// carry. libpam does not enforce it; the trampoline does.
const MaxMessages = 32

// maxPacket bounds a binary prompt's declared length, so that a corrupt
// header cannot make the trampoline read far past the packet.
const maxPacket = 1 << 20

// Message is one conversation message, copied out of C memory.
type Message struct {
	Style Style
	Text  string // the text of a text style
	// Packet is the whole libpamc packet of a binary prompt (4-byte
	// big-endian length including the 5-byte header, a type byte, data).
	Packet []byte
}

// Response is the answer to one message. For a prompt, Data is copied into a
// malloc'd C string (a nil Data gives ""); for a binary prompt, Data is a
// whole libpamc packet copied as is; for other styles no response is given
// (NULL). The trampoline wipes Data once it is copied.
type Response struct {
	Data []byte
}

// Callbacks receives what libpam calls back with for one transaction. Both
// methods run on the transaction's OS thread, inside a PAM call.
type Callbacks interface {
	// Converse answers msgs, one response per message. A Code other than
	// CodeSuccess is returned to the module and no responses are handed over.
	Converse(msgs []Message) ([]Response, Code)
	// Delay reports the fail delay libpam computed for the call that is
	// ending: its native status and the delay in microseconds.
	Delay(status int, usec uint32)
}

// registry maps the appdata values handed to libpam to their callbacks. It
// is read on every callback and written at every start and end, from many
// threads at once, so it takes no lock: a thread locked to a transaction that
// waited for one would hold that thread idle.
var registry struct {
	m     sync.Map // uintptr -> Callbacks
	next  atomic.Uintptr
	count atomic.Int64
}

// Register makes cb reachable from the trampolines and returns the appdata
// value that names it. The value is a plain number, not a Go pointer, so C
// may hold it freely.
func Register(cb Callbacks) uintptr {
	id := registry.next.Add(1)
	registry.m.Store(id, cb)
	registry.count.Add(1)
	return id
}

// Unregister forgets the callbacks named by id; later calls with it fail.
func Unregister(id uintptr) {
	if _, ok := registry.m.LoadAndDelete(id); ok {
		registry.count.Add(-1)
	}
}

func lookup(id uintptr) Callbacks {
	cb, _ := registry.m.Load(id)
	c, _ := cb.(Callbacks)
	return c
}

// cMessage and cResponse mirror struct pam_message and struct pam_response.
type cMessage struct {
	style int32
	msg   unsafe.Pointer
}

type cResponse struct {
	resp    unsafe.Pointer
	retcode int32
}

// convTrampoline is the C conversation function. msgp is Linux-PAM's and
// OpenPAM's const struct pam_message ** (an array of pointers); libpam owns
// it. On success *respp receives a calloc'd array of num responses, each a
// malloc'd string or NULL, which the module frees. On failure nothing is
// allocated and *respp is left alone.
func convTrampoline(num, msgp, respp, appdata uintptr) (rc uintptr) {
	l := loaded
	convErr := uintptr(l.tab.codes[CodeConvErr])
	defer func() {
		// A bug here must not unwind through C.
		if recover() != nil {
			rc = convErr
		}
	}()
	n := int(int32(num))
	cb := lookup(appdata)
	if n <= 0 || n > MaxMessages || msgp == 0 || cb == nil {
		return convErr
	}
	msgs := make([]Message, n)
	needAnswer := false
	ptrs := unsafe.Slice((*unsafe.Pointer)(cptr(msgp)), n)
	for i, mp := range ptrs {
		if mp == nil {
			return convErr
		}
		cm := (*cMessage)(mp)
		msgs[i].Style = l.StyleOf(int(cm.style))
		switch msgs[i].Style {
		case StyleUnknown, StyleRadio:
			// No gopam conversation can answer a style it does not know.
			return convErr
		case StyleBinaryPrompt:
			if cm.msg == nil {
				return convErr
			}
			size := int(binary.BigEndian.Uint32(unsafe.Slice((*byte)(cm.msg), 4)))
			if size < 5 || size > maxPacket {
				return convErr
			}
			msgs[i].Packet = append([]byte(nil), unsafe.Slice((*byte)(cm.msg), size)...)
			needAnswer = true
		case StylePromptEchoOff, StylePromptEchoOn:
			msgs[i].Text = goString(cm.msg)
			needAnswer = true
		default:
			msgs[i].Text = goString(cm.msg)
		}
	}
	if respp == 0 && needAnswer {
		// A module that asks a question must give us somewhere to answer.
		return convErr
	}
	resps, code := cb.Converse(msgs)
	defer func() {
		for _, r := range resps {
			Wipe(r.Data)
		}
	}()
	if code != CodeSuccess {
		return uintptr(l.tab.codes[code])
	}
	if respp == 0 {
		return 0
	}
	if len(resps) != n {
		return convErr
	}
	for i, m := range msgs {
		if m.Style == StyleBinaryPrompt {
			d := resps[i].Data
			if len(d) < 5 || int(binary.BigEndian.Uint32(d)) != len(d) {
				return convErr
			}
		}
	}
	arr := l.callocResponses(n)
	if arr == nil {
		return uintptr(l.tab.codes[CodeBufErr])
	}
	out := unsafe.Slice((*cResponse)(arr), n)
	for i, m := range msgs {
		var p unsafe.Pointer
		switch m.Style {
		case StylePromptEchoOff, StylePromptEchoOn:
			p = l.mallocCopy(resps[i].Data, true)
		case StyleBinaryPrompt:
			p = l.mallocCopy(resps[i].Data, false)
		default:
			continue
		}
		if p == nil {
			l.freeResponses(resps, out)
			return uintptr(l.tab.codes[CodeBufErr])
		}
		out[i].resp = p
	}
	*(*unsafe.Pointer)(cptr(respp)) = arr
	return 0
}

func (l *Lib) callocResponses(n int) unsafe.Pointer {
	r, _, _ := purego.SyscallN(l.calloc, uintptr(n), unsafe.Sizeof(cResponse{}))
	return cptr(r)
}

// freeResponses undoes a partly built response array after a failure: every
// answer is wiped and freed, then the array.
func (l *Lib) freeResponses(resps []Response, out []cResponse) {
	for i := range out {
		// len(Data) covers every answer byte; a text answer's NUL is all
		// that is left unwiped.
		l.freeWiped(out[i].resp, len(resps[i].Data))
	}
	l.freeWiped(unsafe.Pointer(&out[0]), len(out)*int(unsafe.Sizeof(cResponse{})))
}

// delayTrampoline is the C PAM_FAIL_DELAY function (Linux-PAM): libpam calls
// it instead of sleeping, after pam_authenticate and pam_chauthtok.
func delayTrampoline(status, usec, appdata uintptr) {
	defer func() { _ = recover() }()
	if cb := lookup(appdata); cb != nil {
		cb.Delay(int(int32(status)), uint32(usec))
	}
}

// Registered counts the callbacks registered now: the transactions that are
// started and not yet ended.
func Registered() int {
	return int(registry.count.Load())
}
