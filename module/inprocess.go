//go:build cgo

package module

/*
#cgo CFLAGS: -DGOPAM_INPROCESS
#cgo LDFLAGS: -lpam
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <security/pam_appl.h>

void gopam_set_mask(unsigned mask);
int gopam_impl(void);
void gopam_log(pam_handle_t *pamh, int prio, const char *msg);
int gopam_fail_delay(pam_handle_t *pamh, unsigned usec);
int gopam_get_item(pam_handle_t *pamh, int item, const char **out);
int gopam_set_item(pam_handle_t *pamh, int item, const char *v);
int gopam_get_user(pam_handle_t *pamh, const char **out, const char *prompt);
int gopam_get_authtok(pam_handle_t *pamh, int item, const char **out, const char *prompt);
const char *gopam_getenv(pam_handle_t *pamh, const char *name);
int gopam_putenv(pam_handle_t *pamh, const char *nv);
char **gopam_getenvlist(pam_handle_t *pamh);
void gopam_free_envlist(char **env);
int gopam_converse(pam_handle_t *pamh, int n, const int *styles, const char *const *texts, struct pam_response **out);
const char *gopam_resp(struct pam_response *r, int i);
void gopam_free_responses(struct pam_response *r, int n, const int *styles);
int gopam_set_data(pam_handle_t *pamh, const char *name, uintptr_t h);
int gopam_get_data(pam_handle_t *pamh, const char *name, uintptr_t *out);
*/
import "C"

import (
	"encoding/binary"
	"runtime/cgo"
	"unsafe"
)

// publishMask tells the C entry points which service functions exist, so
// that the others answer without entering Go.
func publishMask(mask uint32) { C.gopam_set_mask(C.uint(mask)) }

//export gopamMask
func gopamMask() C.uint {
	_, mask := registered()
	return C.uint(mask)
}

// gopamCall is the in-process mode's way into the module: the C entry
// point calls it only in the process that loaded the library and only when
// that process is not itself a Go program.
//
//export gopamCall
func gopamCall(op C.int, pamh *C.pam_handle_t, flags C.uint, argc C.int, argv **C.char, impl C.int) C.int {
	args := make([]string, 0, int(argc))
	if argc > 0 && argv != nil {
		for _, a := range unsafe.Slice(argv, int(argc)) {
			if a != nil {
				args = append(args, C.GoString(a))
			}
		}
	}
	return C.int(dispatch(&inproc{pamh: pamh}, numbersFor(int(impl)), Op(op), Flags(flags), args))
}

// gopamCleanup runs the cleanup of a value set with SetData, from pam_end
// or a replacement, and releases the value.
//
//export gopamCleanup
func gopamCleanup(h C.uintptr_t, status, replaced, silent C.int) {
	if h == 0 {
		return
	}
	d, ok := cgo.Handle(h).Value().(*datum)
	cgo.Handle(h).Delete()
	if !ok {
		return
	}
	d.run(nil, DataEnd{Status: pamCode(numbersFor(int(C.gopam_impl())), int(status)), Replaced: replaced != 0, Silent: silent != 0})
}

// inproc is the backend of the in-process mode: libpam called directly.
type inproc struct{ pamh *C.pam_handle_t }

// cString copies b into C memory with a NUL; nil gives NULL. The caller
// frees it with freeC.
func cString(b []byte) *C.char {
	if b == nil {
		return nil
	}
	p := (*C.char)(C.malloc(C.size_t(len(b) + 1)))
	s := unsafe.Slice((*byte)(unsafe.Pointer(p)), len(b)+1)
	copy(s, b)
	s[len(b)] = 0
	return p
}

// freeC wipes and frees a C string from cString (it may hold a secret).
func freeC(p *C.char, n int) {
	if p == nil {
		return
	}
	clear(unsafe.Slice((*byte)(unsafe.Pointer(p)), n+1))
	C.free(unsafe.Pointer(p))
}

// goBytes copies a C string, nil for NULL.
func goBytes(p *C.char) []byte {
	if p == nil {
		return nil
	}
	return C.GoBytes(unsafe.Pointer(p), C.int(C.strlen(p)))
}

func (b *inproc) getItem(item int) ([]byte, int) {
	var v *C.char
	rc := C.gopam_get_item(b.pamh, C.int(item), &v)
	return goBytes(v), int(rc)
}

func (b *inproc) setItem(item int, v []byte) int {
	p := cString(v)
	defer freeC(p, len(v))
	return int(C.gopam_set_item(b.pamh, C.int(item), p))
}

func (b *inproc) getenv(name string) (string, bool) {
	p := cString([]byte(name))
	defer freeC(p, len(name))
	v := C.gopam_getenv(b.pamh, p)
	if v == nil {
		return "", false
	}
	return C.GoString(v), true
}

func (b *inproc) putenv(nv string) int {
	p := cString([]byte(nv))
	defer freeC(p, len(nv))
	return int(C.gopam_putenv(b.pamh, p))
}

func (b *inproc) envlist() ([]string, int) {
	env := C.gopam_getenvlist(b.pamh)
	if env == nil {
		return nil, 5 // PAM_BUF_ERR on both implementations
	}
	defer C.gopam_free_envlist(env)
	var out []string
	for p := env; *p != nil; p = (**C.char)(unsafe.Add(unsafe.Pointer(p), unsafe.Sizeof(*p))) {
		out = append(out, C.GoString(*p))
	}
	return out, 0
}

func (b *inproc) converse(styles []int, texts [][]byte) ([][]byte, int) {
	n := len(styles)
	cstyles := (*C.int)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(C.int(0)))))
	defer C.free(unsafe.Pointer(cstyles))
	ctexts := (**C.char)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	defer C.free(unsafe.Pointer(ctexts))
	ss := unsafe.Slice(cstyles, n)
	ts := unsafe.Slice(ctexts, n)
	for i := range n {
		ss[i] = C.int(styles[i])
		ts[i] = cString(texts[i])
	}
	defer func() {
		for i := range n {
			freeC(ts[i], len(texts[i]))
		}
	}()
	var resp *C.struct_pam_response
	rc := C.gopam_converse(b.pamh, C.int(n), cstyles, ctexts, &resp)
	if rc != 0 {
		return nil, int(rc)
	}
	defer C.gopam_free_responses(resp, C.int(n), cstyles)
	out := make([][]byte, n)
	for i := range n {
		r := C.gopam_resp(resp, C.int(i))
		if r == nil {
			continue
		}
		if len(texts[i]) >= 5 && isPacket(texts[i]) && styles[i] == binaryStyle {
			hdr := C.GoBytes(unsafe.Pointer(r), 4)
			l := binary.BigEndian.Uint32(hdr)
			if l >= 5 && l <= maxMessage {
				out[i] = C.GoBytes(unsafe.Pointer(r), C.int(l))
			}
			continue
		}
		out[i] = goBytes(r)
	}
	return out, 0
}

// binaryStyle is PAM_BINARY_PROMPT, which only Linux-PAM has.
const binaryStyle = 7

// isPacket reports whether a message text is a libpamc packet whose
// length field matches.
func isPacket(t []byte) bool { return int(binary.BigEndian.Uint32(t)) == len(t) }

func (b *inproc) getUser(prompt []byte) (string, int) {
	p := cString(prompt)
	defer freeC(p, len(prompt))
	var u *C.char
	rc := C.gopam_get_user(b.pamh, &u, p)
	if u == nil {
		return "", int(rc)
	}
	return C.GoString(u), int(rc)
}

func (b *inproc) getAuthtok(item int, prompt []byte) ([]byte, int) {
	p := cString(prompt)
	defer freeC(p, len(prompt))
	var t *C.char
	rc := C.gopam_get_authtok(b.pamh, C.int(item), &t, p)
	return goBytes(t), int(rc)
}

func (b *inproc) syslog(prio int, msg string) {
	p := cString([]byte(msg))
	defer freeC(p, len(msg))
	C.gopam_log(b.pamh, C.int(prio), p)
}

func (b *inproc) failDelay(usec uint32) int {
	return int(C.gopam_fail_delay(b.pamh, C.uint(usec)))
}

func (b *inproc) setData(name string, d *datum) int {
	p := cString([]byte(name))
	defer freeC(p, len(name))
	h := cgo.NewHandle(d)
	rc := C.gopam_set_data(b.pamh, p, C.uintptr_t(h))
	if rc != 0 {
		h.Delete()
	}
	return int(rc)
}

func (b *inproc) getData(name string) (*datum, int) {
	p := cString([]byte(name))
	defer freeC(p, len(name))
	var h C.uintptr_t
	rc := C.gopam_get_data(b.pamh, p, &h)
	if rc != 0 || h == 0 {
		return nil, int(rc)
	}
	d, _ := cgo.Handle(h).Value().(*datum)
	return d, 0
}
