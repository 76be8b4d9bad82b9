package libpam

import (
	"errors"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// ErrNUL is returned for a string that holds a NUL byte: C would silently cut
// it there.
var ErrNUL = errors.New("contains a NUL byte")

// cptr turns an address that C handed out into a pointer. It is only for C
// memory (malloc'd or libpam's own), never for Go memory.
func cptr(u uintptr) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&u))
}

// CString returns s as a NUL-terminated byte slice in Go memory, to be passed
// to a C function that copies it before returning. The caller owns the slice.
func CString(s string) ([]byte, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, ErrNUL
	}
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b, nil
}

// cBytes is CString for a secret held in a byte slice. The caller owns the
// result and must Wipe it once C has copied it.
func cBytes(s []byte) ([]byte, error) {
	for _, c := range s {
		if c == 0 {
			return nil, ErrNUL
		}
	}
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b, nil
}

// Wipe overwrites b with zeros. It is how every secret copy gopam makes in Go
// memory ends.
func Wipe(b []byte) {
	clear(b)
}

// strlen counts the bytes before the NUL of the C string at p (not NULL).
func strlen(p unsafe.Pointer) int {
	n := 0
	for *(*byte)(unsafe.Add(p, n)) != 0 {
		n++
	}
	return n
}

// goString copies the C string at p into Go memory; NULL gives "". C keeps
// ownership of p.
func goString(p unsafe.Pointer) string {
	if p == nil {
		return ""
	}
	return string(unsafe.Slice((*byte)(p), strlen(p)))
}

// mallocCopy copies b into new C memory from malloc, adding a NUL when nul is
// set. The caller (or libpam, once handed over) owns the result and frees it
// with free. It returns nil when malloc fails.
func (l *Lib) mallocCopy(b []byte, nul bool) unsafe.Pointer {
	n := len(b)
	if nul {
		n++
	}
	r, _, _ := purego.SyscallN(l.malloc, uintptr(max(n, 1)))
	p := cptr(r)
	if p == nil {
		return nil
	}
	dst := unsafe.Slice((*byte)(p), n)
	copy(dst, b)
	if nul {
		dst[len(b)] = 0
	}
	return p
}

// freeWiped zeros the n bytes at p and frees them. p must come from malloc;
// the caller gives up ownership.
func (l *Lib) freeWiped(p unsafe.Pointer, n int) {
	if p == nil {
		return
	}
	clear(unsafe.Slice((*byte)(p), n))
	purego.SyscallN(l.free, uintptr(p))
}

// freeCString zeros and frees a malloc'd C string.
func (l *Lib) freeCString(p unsafe.Pointer) {
	if p != nil {
		l.freeWiped(p, strlen(p)+1)
	}
}
