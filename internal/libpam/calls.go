package libpam

import (
	"runtime"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Handle is a pam_handle_t pointer. It is owned by libpam from pam_start to
// pam_end and must only be used on the OS thread that runs the transaction.
type Handle uintptr

// Op names one of the six PAM operations that take a handle and flags.
type Op int

// The flag-taking PAM operations.
const (
	OpAuthenticate Op = iota
	OpSetcred
	OpAcctMgmt
	OpOpenSession
	OpCloseSession
	OpChauthtok
)

// LeavesThreadState reports whether op's modules may change the state of the
// calling thread for later calls (credentials, session contexts).
func (op Op) LeavesThreadState() bool {
	return op == OpSetcred || op == OpOpenSession || op == OpCloseSession
}

// StartMem is the memory pam_start reads and writes during the call. It is
// part of the caller's own (heap) state, so that the call allocates nothing.
type StartMem struct {
	conv [2]uintptr // struct pam_conv
	h    Handle
}

// Start calls pam_start, or pam_start_confdir when confdir is not empty, with
// gopam's conversation trampoline and appdata as its appdata_ptr; the module
// cache looks for new modules after it (the caller calls BeforeStart first,
// before it locks the thread). service, user and confdir must be
// NUL-terminated (CString); user may be nil for "no user yet". libpam copies
// all of them and the pam_conv struct.
func (l *Lib) Start(service, user, confdir []byte, appdata uintptr, m *StartMem) (Handle, int) {
	m.conv = [2]uintptr{l.convTrampoline, appdata}
	m.h = 0
	var rc uintptr
	if l.Impl == ImplOpenPAM && l.startConfdir == 0 { // openpam.go: confdir there
		rc = l.startOpenPAM(service, user, confdir, m)
	} else if confdir != nil {
		rc, _, _ = purego.SyscallN(l.startConfdir, uintptr(unsafe.Pointer(&service[0])),
			bytesPtr(user), uintptr(unsafe.Pointer(&m.conv)), uintptr(unsafe.Pointer(&confdir[0])),
			uintptr(unsafe.Pointer(&m.h)))
	} else {
		rc, _, _ = purego.SyscallN(l.start, uintptr(unsafe.Pointer(&service[0])),
			bytesPtr(user), uintptr(unsafe.Pointer(&m.conv)), uintptr(unsafe.Pointer(&m.h)))
	}
	runtime.KeepAlive(service)
	runtime.KeepAlive(user)
	runtime.KeepAlive(confdir)
	runtime.KeepAlive(m)
	if rc == 0 {
		cache.afterStart(l)
	}
	return m.h, int(int32(rc))
}

func bytesPtr(b []byte) uintptr {
	if b == nil {
		return 0
	}
	return uintptr(unsafe.Pointer(&b[0]))
}

// End calls pam_end; h is invalid afterwards.
func (l *Lib) End(h Handle, status int) int {
	rc, _, _ := purego.SyscallN(l.end, uintptr(h), uintptr(status))
	return int(int32(rc))
}

// Call runs one of the six operations with native flags.
func (l *Lib) Call(h Handle, op Op, flags int32) int {
	var fn uintptr
	switch op {
	case OpAuthenticate:
		fn = l.authenticate
	case OpSetcred:
		fn = l.setcred
	case OpAcctMgmt:
		fn = l.acctMgmt
	case OpOpenSession:
		fn = l.openSession
	case OpCloseSession:
		fn = l.closeSession
	case OpChauthtok:
		fn = l.chauthtok
	}
	rc, _, _ := purego.SyscallN(fn, uintptr(h), uintptr(uint32(flags)))
	return int(int32(rc))
}

// Strerror returns pam_strerror's text for a native code, copied.
func (l *Lib) Strerror(h Handle, native int) string {
	r, _, _ := purego.SyscallN(l.strerror, uintptr(h), uintptr(native))
	return goString(cptr(r))
}

// SetItemString sets a string item; v is NUL-terminated (CString) or nil for
// NULL. libpam copies it.
func (l *Lib) SetItemString(h Handle, item int, v []byte) int {
	rc, _, _ := purego.SyscallN(l.setItem, uintptr(h), uintptr(item), bytesPtr(v))
	runtime.KeepAlive(v)
	return int(int32(rc))
}

// SetItemSecret sets a string item from a secret; the NUL-terminated copy
// made for C is wiped before returning.
func (l *Lib) SetItemSecret(h Handle, item int, v []byte) (int, error) {
	if v == nil {
		return l.SetItemString(h, item, nil), nil
	}
	c, err := cBytes(v)
	if err != nil {
		return 0, err
	}
	rc := l.SetItemString(h, item, c)
	Wipe(c)
	return rc, nil
}

// GetItemString reads a string item, copying libpam's storage; a NULL item
// gives "" and ok false.
func (l *Lib) GetItemString(h Handle, item int) (v string, ok bool, rc int) {
	var p unsafe.Pointer
	r, _, _ := purego.SyscallN(l.getItem, uintptr(h), uintptr(item), uintptr(unsafe.Pointer(&p)))
	if rc = int(int32(r)); rc != 0 || p == nil {
		return "", false, rc
	}
	return goString(p), true, rc
}

// cXAuth mirrors struct pam_xauth_data; Go lays it out as C does.
type cXAuth struct {
	namelen int32
	name    unsafe.Pointer
	datalen int32
	data    unsafe.Pointer
}

// SetXAuthData sets PAM_XAUTHDATA (Linux-PAM). name is NUL-terminated and
// neither it nor data is empty (Linux-PAM never frees a zero-length copy);
// libpam copies name and data; the Go copies are the caller's.
func (l *Lib) SetXAuthData(h Handle, item int, name, data []byte) int {
	x := cXAuth{namelen: int32(len(name) - 1), name: unsafe.Pointer(&name[0]), datalen: int32(len(data)),
		data: unsafe.Pointer(unsafe.SliceData(data))}
	r, _, _ := purego.SyscallN(l.setItem, uintptr(h), uintptr(item), uintptr(unsafe.Pointer(&x)))
	runtime.KeepAlive(name)
	runtime.KeepAlive(data)
	return int(int32(r))
}

// GetXAuthData reads PAM_XAUTHDATA, copying name and data.
func (l *Lib) GetXAuthData(h Handle, item int) (name string, data []byte, ok bool, rc int) {
	var p unsafe.Pointer
	r, _, _ := purego.SyscallN(l.getItem, uintptr(h), uintptr(item), uintptr(unsafe.Pointer(&p)))
	if rc = int(int32(r)); rc != 0 || p == nil {
		return "", nil, false, rc
	}
	x := (*cXAuth)(p)
	if x.name != nil && x.namelen > 0 {
		name = string(unsafe.Slice((*byte)(x.name), x.namelen))
	}
	if x.data != nil && x.datalen > 0 {
		data = append([]byte(nil), unsafe.Slice((*byte)(x.data), x.datalen)...)
	}
	return name, data, true, rc
}

// SetConv points PAM_CONV at gopam's trampoline with appdata. libpam copies
// the struct.
func (l *Lib) SetConv(h Handle, item int, appdata uintptr) int {
	conv := [2]uintptr{l.convTrampoline, appdata}
	r, _, _ := purego.SyscallN(l.setItem, uintptr(h), uintptr(item), uintptr(unsafe.Pointer(&conv)))
	return int(int32(r))
}

// InstallDelay points PAM_FAIL_DELAY at gopam's delay trampoline, which
// reports to the callbacks registered under the conversation's appdata.
func (l *Lib) InstallDelay(h Handle, item int) int {
	r, _, _ := purego.SyscallN(l.setItem, uintptr(h), uintptr(item), l.delayTrampoline)
	return int(int32(r))
}

// FailDelay calls pam_fail_delay (Linux-PAM).
func (l *Lib) FailDelay(h Handle, usec uint32) int {
	r, _, _ := purego.SyscallN(l.failDelay, uintptr(h), uintptr(usec))
	return int(int32(r))
}

// Getenv returns a copy of one PAM environment variable.
func (l *Lib) Getenv(h Handle, name []byte) (string, bool) {
	r, _, _ := purego.SyscallN(l.getenv, uintptr(h), uintptr(unsafe.Pointer(&name[0])))
	runtime.KeepAlive(name)
	p := cptr(r)
	if p == nil {
		return "", false
	}
	return goString(p), true
}

// Putenv calls pam_putenv with a NUL-terminated "NAME=value" (or, on
// Linux-PAM, "NAME" to unset). libpam copies it. On OpenPAM the value it
// replaces is wiped first (openpam.go).
func (l *Lib) Putenv(h Handle, nameValue []byte) int {
	if l.Impl == ImplOpenPAM {
		l.wipeReplaced(h, nameValue)
	}
	r, _, _ := purego.SyscallN(l.putenv, uintptr(h), uintptr(unsafe.Pointer(&nameValue[0])))
	runtime.KeepAlive(nameValue)
	return int(int32(r))
}

// Unsetenv removes a variable: pam_unsetenv where it exists (OpenPAM), else
// pam_putenv("NAME") (Linux-PAM). name is NUL-terminated.
func (l *Lib) Unsetenv(h Handle, name []byte) int {
	if l.unsetenv != 0 {
		r, _, _ := purego.SyscallN(l.unsetenv, uintptr(h), uintptr(unsafe.Pointer(&name[0])))
		runtime.KeepAlive(name)
		return int(int32(r))
	}
	return l.Putenv(h, name)
}

// Getenvlist returns a copy of the PAM environment as "NAME=value" strings.
// libpam's malloc'd copy is wiped and freed before returning, since it may
// hold secrets. ok is false when libpam could not allocate the list.
func (l *Lib) Getenvlist(h Handle) (env []string, ok bool) {
	r, _, _ := purego.SyscallN(l.getenvlist, uintptr(h))
	arr := cptr(r)
	if arr == nil {
		return nil, false
	}
	n := 0
	for *(*unsafe.Pointer)(unsafe.Add(arr, n*ptrSize)) != nil {
		n++
	}
	env = make([]string, n)
	for i := range n {
		sp := *(*unsafe.Pointer)(unsafe.Add(arr, i*ptrSize))
		env[i] = goString(sp)
		l.freeCString(sp)
	}
	l.freeWiped(arr, (n+1)*ptrSize)
	return env, true
}

// ScrubEnv removes from the PAM environment every variable whose name
// sensitive reports, and reports false if libpam could not list it. Names and
// values are read in libpam's own copy (pam_getenvlist), never copied into Go
// memory: sensitive sees the name as a slice of C memory, valid only during
// its call, and the values (secrets, some of them) stay in C, where the copy
// is wiped and freed. With setEmpty, where variables cannot be removed
// (OpenPAM without pam_unsetenv), they are set empty instead.
func (l *Lib) ScrubEnv(h Handle, sensitive func(name []byte) bool, setEmpty bool) bool {
	r, _, _ := purego.SyscallN(l.getenvlist, uintptr(h))
	arr := cptr(r)
	if arr == nil {
		return false
	}
	n := 0
	for *(*unsafe.Pointer)(unsafe.Add(arr, n*ptrSize)) != nil {
		n++
	}
	for i := range n {
		sp := *(*unsafe.Pointer)(unsafe.Add(arr, i*ptrSize))
		size := strlen(sp)
		kv := unsafe.Slice((*byte)(sp), size+1)
		eq := 0
		for eq < size && kv[eq] != '=' {
			eq++
		}
		if sensitive(kv[:eq]) {
			// The copy is ours: cut it into the argument libpam needs,
			// "NAME" to remove, "NAME=" to set empty.
			if setEmpty && eq < size {
				kv[eq+1] = 0
				l.Putenv(h, kv)
			} else {
				kv[eq] = 0
				l.Unsetenv(h, kv)
			}
		}
		l.freeWiped(sp, size+1)
	}
	l.freeWiped(arr, (n+1)*ptrSize)
	return true
}

const ptrSize = int(unsafe.Sizeof(uintptr(0)))
