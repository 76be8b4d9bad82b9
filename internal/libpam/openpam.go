package libpam

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/gopam/pam/internal/esc"
)

// OpenPAM has no pam_start_confdir. It reads a service name that contains
// '/' as the path of a policy file, but only while the process-wide feature
// OPENPAM_RESTRICT_SERVICE_NAME is off; and it verifies the ownership and
// permissions of every policy and module file and of each directory above
// them (OPENPAM_VERIFY_POLICY_FILE, OPENPAM_VERIFY_MODULE_FILE), which a
// private stack under /tmp fails; and it fills a facility the policy leaves
// out from the system's "other" policy (OPENPAM_FALLBACK_TO_OTHER).
//
// gopam's ConfDir start on OpenPAM therefore calls pam_start with the path
// ConfDir/<service> (or ConfDir/other when that file does not exist, as
// Linux-PAM does; with neither, the start fails with PAM_ABORT, as on
// Linux-PAM) with those four features off, and puts them back as they
// were as soon as pam_start returns: pam_start is the only call that reads
// policies and loads modules. The features are global to the process, so:
//
//   - every pam_start gopam makes on OpenPAM is serialised against that
//     window (featureMu): gopam's own starts without ConfDir never see the
//     switched features;
//   - a pam_start that other code in the process (a C library, another
//     binding) makes during the window is not protected: it would accept a
//     service name with '/' as a path and skip the verification. A program
//     that mixes gopam's ConfDir with other PAM users on OpenPAM must not
//     start their transactions concurrently.
//
// The verification is off on purpose. With ConfDir the application names
// the directory itself and vouches for it, exactly as with Linux-PAM's
// pam_start_confdir, which verifies nothing; the policy in that directory
// decides which module files are loaded, so checking the module files adds
// nothing once the policy is trusted. The checks guard against a writable
// directory on OpenPAM's own search path, and they stay on for every start
// without ConfDir. Keeping them would make ConfDir unusable for what it
// exists for: private stacks in temporary directories, as root and as an
// unprivileged user.
//
// After pam_start, PAM_SERVICE holds the path; gopam sets it back to the
// plain service name (OpenPAM lets PAM_SERVICE be cleared and set once
// more), so that modules and Handle.Item see what they see on Linux-PAM.

// OpenPAM's feature numbers (enum in security/openpam.h).
const (
	openpamRestrictServiceName = 0
	openpamVerifyPolicyFile    = 1
	openpamVerifyModuleFile    = 3
	openpamFallbackToOther     = 4
)

// confdirFeatures are the features a ConfDir start switches off.
var confdirFeatures = [...]int{
	openpamRestrictServiceName, openpamVerifyPolicyFile, openpamVerifyModuleFile, openpamFallbackToOther,
}

// featureMu serialises gopam's OpenPAM starts: a ConfDir start holds it
// exclusively while the features are switched, every other start shares it.
var featureMu sync.RWMutex

// openpamConfDir reports whether ConfDir is built on OpenPAM's path form of
// the service name.
func (l *Lib) openpamConfDir() bool {
	return l.Impl == ImplOpenPAM && l.startConfdir == 0 && l.setFeature != 0 && l.getFeature != 0
}

// isPortable reports whether s uses only the characters OpenPAM accepts in
// a service name that is a path: the POSIX portable file name characters
// and '/'.
func isPortable(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == '-' || c == '/') {
			return false
		}
	}
	return true
}

// CheckConfDir reports why service cannot be read from dir on the loaded
// libpam, or nil if it can. Only OpenPAM restricts the names: the path
// ConfDir/service must consist of portable file name characters, and the
// service must be a plain name.
func (l *Lib) CheckConfDir(dir, service string) error {
	if !l.openpamConfDir() {
		return nil
	}
	if strings.ContainsRune(service, '/') {
		return fmt.Errorf("service %s must not contain '/' with a ConfDir on OpenPAM", esc.Quote(service))
	}
	if !isPortable(dir) || !isPortable(service) {
		return fmt.Errorf("OpenPAM reads ConfDir/Service only when the path uses the characters A-Z a-z 0-9 . _ - and /: %s",
			esc.Quote(dir+"/"+service))
	}
	return nil
}

// policyPath returns ConfDir/service as a C string, or ConfDir/other when
// the service has no file (Linux-PAM's fallback within a confdir); ok is
// false when neither exists.
func policyPath(service, confdir []byte) (path []byte, ok bool) {
	dir := string(confdir[:len(confdir)-1])
	p := dir + "/" + string(service[:len(service)-1])
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		p = dir + "/other"
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return nil, false
		}
	}
	path, _ = CString(p) // confdir and service hold no NUL
	return path, true
}

// startOpenPAM runs pam_start on OpenPAM: with a confdir, on the policy
// path inside the window described above; without, sharing featureMu so
// that it never runs inside such a window.
func (l *Lib) startOpenPAM(service, user, confdir []byte, m *StartMem) uintptr {
	if confdir == nil {
		featureMu.RLock()
		defer featureMu.RUnlock()
		rc, _, _ := purego.SyscallN(l.start, uintptr(unsafe.Pointer(&service[0])),
			bytesPtr(user), uintptr(unsafe.Pointer(&m.conv)), uintptr(unsafe.Pointer(&m.h)))
		return rc
	}
	path, ok := policyPath(service, confdir)
	if !ok {
		// OpenPAM would start with empty chains; Linux-PAM's confdir start
		// fails with PAM_ABORT, and so does gopam's, alike everywhere.
		n, _ := l.NativeCode(CodeAbort)
		return uintptr(n)
	}
	rc := l.startSwitched(path, user, m)
	runtime.KeepAlive(path)
	if rc != 0 || m.h == 0 {
		return rc
	}
	// PAM_SERVICE may be set once; clearing it first allows the plain name.
	n, _ := l.NativeItem(ItemService)
	if r := l.SetItemString(m.h, n, nil); r != 0 {
		return uintptr(r)
	}
	return uintptr(l.SetItemString(m.h, n, service))
}

// startSwitched calls pam_start on path with the confdir features off, and
// restores them.
func (l *Lib) startSwitched(path, user []byte, m *StartMem) uintptr {
	featureMu.Lock()
	defer featureMu.Unlock()
	var saved [len(confdirFeatures)]int32
	for i, f := range confdirFeatures {
		saved[i] = 1
		purego.SyscallN(l.getFeature, uintptr(f), uintptr(unsafe.Pointer(&saved[i])))
		purego.SyscallN(l.setFeature, uintptr(f), 0)
	}
	rc, _, _ := purego.SyscallN(l.start, uintptr(unsafe.Pointer(&path[0])),
		bytesPtr(user), uintptr(unsafe.Pointer(&m.conv)), uintptr(unsafe.Pointer(&m.h)))
	for i, f := range confdirFeatures {
		purego.SyscallN(l.setFeature, uintptr(f), uintptr(saved[i]))
	}
	runtime.KeepAlive(&saved)
	return rc
}

// BuildFlags returns the C compiler flags that build modules and programs
// against the loaded libpam rather than the system's: for an OpenPAM
// installed in a prefix (the libpam of GOPAM_LIBPAM in PREFIX/lib, headers
// in PREFIX/include), its include directory and its library directory, also
// as the run-time search path. It returns nil for Linux-PAM and for a libpam
// without headers beside it, which the compiler's defaults then serve.
func (l *Lib) BuildFlags() []string {
	if l.Impl != ImplOpenPAM {
		return nil
	}
	f := l.File()
	if !filepath.IsAbs(f) {
		return nil
	}
	libdir := filepath.Dir(f)
	inc := filepath.Join(filepath.Dir(libdir), "include")
	if _, err := os.Stat(filepath.Join(inc, "security", "openpam.h")); err != nil {
		return nil
	}
	return []string{"-I" + inc, "-L" + libdir, "-Wl,-rpath," + libdir}
}

// wipeReplaced overwrites with zeros, in libpam's own storage, the value
// that pam_putenv(nameValue) is about to replace: OpenPAM's pam_putenv
// frees the old string without wiping it, and the old value may be a secret
// (scrubbing sets sensitive variables empty this way, since OpenPAM cannot
// remove a variable). OpenPAM's pam_getenv returns a pointer into that
// string.
func (l *Lib) wipeReplaced(h Handle, nameValue []byte) {
	eq := 0
	for eq < len(nameValue) && nameValue[eq] != '=' && nameValue[eq] != 0 {
		eq++
	}
	if eq == len(nameValue) || nameValue[eq] != '=' {
		return
	}
	name := make([]byte, eq+1)
	copy(name, nameValue[:eq])
	r, _, _ := purego.SyscallN(l.getenv, uintptr(h), uintptr(unsafe.Pointer(&name[0])))
	runtime.KeepAlive(name)
	if p := cptr(r); p != nil {
		clear(unsafe.Slice((*byte)(p), strlen(p)))
	}
}
