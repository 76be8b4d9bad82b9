package module

import (
	"encoding/binary"
	"errors"
	"io"
)

// The numbers of gopam_shim.h, which the C side uses.
const (
	protocolVersion = 1
	helperArg       = "--gopam-module-helper"
	maxMessage      = 1 << 20

	mCall       = 1
	mEnd        = 2
	mReply      = 3
	mHello      = 9
	mReturn     = 10
	mGetItem    = 11
	mSetItem    = 12
	mGetenv     = 13
	mPutenv     = 14
	mEnvlist    = 15
	mConv       = 16
	mGetUser    = 17
	mGetAuthtok = 18
	mSyslog     = 19
	mFailDelay  = 20
	mDone       = 21

	implLinux   = 1
	implOpenPAM = 2
)

var errProtocol = errors.New("pam module: malformed message from the module's C side")

// encoder builds one message.
type encoder struct{ b []byte }

func newMessage(typ byte) *encoder { return &encoder{b: append(make([]byte, 4, 64), typ)} }

func (e *encoder) int(v int32) *encoder {
	e.b = binary.NativeEndian.AppendUint32(e.b, uint32(v))
	return e
}

// bytes appends a bytes field; nil is sent as NULL.
func (e *encoder) bytes(v []byte) *encoder {
	if v == nil {
		return e.int(-1)
	}
	e.int(int32(len(v)))
	e.b = append(e.b, v...)
	return e
}

func (e *encoder) str(s string) *encoder {
	e.int(int32(len(s)))
	e.b = append(e.b, s...)
	return e
}

// finish fills in the length and returns the frame.
func (e *encoder) finish() []byte {
	binary.NativeEndian.PutUint32(e.b, uint32(len(e.b)-4))
	return e.b
}

// wipe zeroes the frame: it may carry a secret.
func (e *encoder) wipe() { clear(e.b) }

// decoder reads the fields of one message; a short or malformed message
// sets bad and makes every later read return zero values.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) int() int32 {
	if d.bad || len(d.b) < 4 {
		d.bad = true
		return 0
	}
	v := int32(binary.NativeEndian.Uint32(d.b))
	d.b = d.b[4:]
	return v
}

// bytes returns a bytes field (nil for NULL), aliasing the message.
func (d *decoder) bytes() []byte {
	n := d.int()
	if d.bad || n < 0 {
		return nil
	}
	if int(n) > len(d.b) {
		d.bad = true
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	if v == nil {
		v = []byte{}
	}
	return v
}

// readMessage reads one frame; the caller wipes it when done.
func readMessage(r io.Reader) (typ byte, d *decoder, buf []byte, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, nil, err
	}
	n := binary.NativeEndian.Uint32(hdr[:])
	if n == 0 || n > maxMessage {
		return 0, nil, nil, errProtocol
	}
	buf = make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, nil, err
	}
	return buf[0], &decoder{b: buf[1:]}, buf, nil
}
