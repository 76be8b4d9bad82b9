package module

import (
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/libpam"
)

// Main runs the helper process when the module's C side started this
// program as one (see the package documentation), and returns only when the
// transaction it served has ended; run directly, it prints what the program
// is and exits with status 2. Call it from the module's main function:
//
//	func main() { module.Main() }
//
// In the in-process build (-buildmode=c-shared) main is never called.
func Main() {
	if !IsHelper() {
		fmt.Fprintf(os.Stderr, "%s is the helper of a PAM module written in Go; the module's C side starts it.\n", os.Args[0])
		os.Exit(2)
	}
	conn := os.NewFile(3, "gopam-module-socket")
	if conn == nil {
		os.Exit(2)
	}
	code := serve(conn)
	os.Exit(code)
}

// relay is the backend of a helper process: every call goes to the C side
// over the socket, which makes it on the real handle and answers.
type relay struct {
	rw   io.ReadWriter
	data map[string]*datum
	keys []string // data names in the order they were set
	err  error    // the first failure of the socket: every later call fails
}

// serve answers the C side until it ends the transaction; it returns the
// process's exit status.
func serve(rw io.ReadWriter) int {
	_, mask := registered()
	r := &relay{rw: rw, data: map[string]*datum{}}
	hello := newMessage(mHello).int(protocolVersion).int(int32(mask))
	if _, err := rw.Write(hello.finish()); err != nil {
		return 1
	}
	nums := numbersFor(implLinux)
	for {
		typ, d, buf, err := readMessage(rw)
		if err != nil {
			// The host is gone: cleanups run as for pam_end.
			r.endData(DataEnd{Silent: true}, nil)
			return 1
		}
		switch typ {
		case mCall:
			op, flags, impl := Op(d.int()), Flags(d.int()), d.int()
			n := d.int()
			if d.bad || n < 0 || n > 1024 || op < 0 || op >= numOps {
				return 1
			}
			args := make([]string, n)
			for i := range args {
				args[i] = string(d.bytes())
			}
			clear(buf)
			if d.bad {
				return 1
			}
			nums = numbersFor(int(impl))
			rc := dispatch(r, nums, op, flags, args)
			if r.err != nil {
				return 1
			}
			if _, err := rw.Write(newMessage(mReturn).int(int32(rc)).finish()); err != nil {
				return 1
			}
		case mEnd:
			status, silent := d.int(), d.int()
			clear(buf)
			r.endData(DataEnd{Status: pamCode(nums, int(status)), Silent: silent != 0}, r)
			rw.Write(newMessage(mDone).finish())
			return 0
		default:
			return 1
		}
	}
}

// endData runs the cleanups of the data still set, newest first, as
// pam_end does for the C side's own.
func (r *relay) endData(e DataEnd, logTo backend) {
	keys := slices.Clone(r.keys)
	slices.Reverse(keys)
	for _, k := range keys {
		d := r.data[k]
		delete(r.data, k)
		d.run(logTo, e)
	}
	r.keys = nil
}

// request sends one request and returns the decoder of its reply, which
// starts with the code. The frame is wiped afterwards by the caller through
// done.
func (r *relay) request(e *encoder) (d *decoder, rc int, done func()) {
	defer e.wipe()
	fail := func() (*decoder, int, func()) {
		return &decoder{bad: true}, -1, func() {}
	}
	if r.err != nil {
		return fail()
	}
	if _, err := r.rw.Write(e.finish()); err != nil {
		r.err = err
		return fail()
	}
	typ, d, buf, err := readMessage(r.rw)
	if err == nil && typ != mReply {
		err = errProtocol
	}
	if err != nil {
		r.err = err
		return fail()
	}
	rc = int(d.int())
	if d.bad {
		r.err = errProtocol
		return fail()
	}
	return d, rc, func() { clear(buf) }
}

// broken is the code of a call whose reply never came: PAM_SYSTEM_ERR on
// both implementations. The helper then ends without answering, and the C
// side reports the failure.
const broken = 4

func (r *relay) getItem(item int) ([]byte, int) {
	d, rc, done := r.request(newMessage(mGetItem).int(int32(item)))
	defer done()
	if rc < 0 {
		return nil, broken
	}
	return slices.Clone(d.bytes()), rc
}

func (r *relay) setItem(item int, v []byte) int {
	_, rc, done := r.request(newMessage(mSetItem).int(int32(item)).bytes(v))
	done()
	if rc < 0 {
		return broken
	}
	return rc
}

func (r *relay) getenv(name string) (string, bool) {
	d, rc, done := r.request(newMessage(mGetenv).str(name))
	defer done()
	if rc < 0 {
		return "", false
	}
	v := d.bytes()
	return string(v), v != nil
}

func (r *relay) putenv(nv string) int {
	_, rc, done := r.request(newMessage(mPutenv).str(nv))
	done()
	if rc < 0 {
		return broken
	}
	return rc
}

func (r *relay) envlist() ([]string, int) {
	d, rc, done := r.request(newMessage(mEnvlist))
	defer done()
	if rc < 0 {
		return nil, broken
	}
	n := d.int()
	var env []string
	for i := int32(0); i < n && !d.bad; i++ {
		env = append(env, string(d.bytes()))
	}
	return env, rc
}

func (r *relay) converse(styles []int, texts [][]byte) ([][]byte, int) {
	e := newMessage(mConv).int(int32(len(styles)))
	for i := range styles {
		e.int(int32(styles[i])).bytes(texts[i])
	}
	d, rc, done := r.request(e)
	defer done()
	if rc < 0 {
		return nil, broken
	}
	n := int(d.int())
	if n > len(styles) {
		n = 0
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = slices.Clone(d.bytes())
	}
	return out, rc
}

func (r *relay) getUser(prompt []byte) (string, int) {
	d, rc, done := r.request(newMessage(mGetUser).bytes(prompt))
	defer done()
	if rc < 0 {
		return "", broken
	}
	return string(d.bytes()), rc
}

func (r *relay) getAuthtok(item int, prompt []byte) ([]byte, int) {
	d, rc, done := r.request(newMessage(mGetAuthtok).int(int32(item)).bytes(prompt))
	defer done()
	if rc < 0 {
		return nil, broken
	}
	return slices.Clone(d.bytes()), rc
}

func (r *relay) syslog(prio int, msg string) {
	_, _, done := r.request(newMessage(mSyslog).int(int32(prio)).str(msg))
	done()
}

func (r *relay) failDelay(usec uint32) int {
	_, rc, done := r.request(newMessage(mFailDelay).int(int32(usec)))
	done()
	if rc < 0 {
		return broken
	}
	return rc
}

// setData and getData keep the values in the helper, which lives exactly as
// long as the transaction: the C side ends it from pam_end.
func (r *relay) setData(name string, d *datum) int {
	if old, ok := r.data[name]; ok {
		old.run(r, DataEnd{Replaced: true})
		r.keys = slices.DeleteFunc(r.keys, func(k string) bool { return k == name })
	}
	r.data[name] = d
	r.keys = append(r.keys, name)
	return 0
}

func (r *relay) getData(name string) (*datum, int) {
	if d, ok := r.data[name]; ok {
		return d, 0
	}
	return nil, 0
}

// pamCode translates a native code for a DataEnd.
func pamCode(nums *libpam.Lib, n int) pam.Code { return pam.Code(nums.CodeOf(n)) }
