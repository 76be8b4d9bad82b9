// Package libpam is gopam's whole C boundary: it loads libpam and libc at run
// time with dlopen (through purego, so no cgo is needed), resolves their
// symbols, detects the implementation, translates PAM numbers, and holds the
// C trampolines through which libpam calls back into Go.
//
// Every function here documents who owns each pointer. Nothing outside this
// package imports unsafe. Functions that take a pam_handle_t must be called
// on the OS thread that owns the transaction; this package does not check.
package libpam

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// EnvLibrary names the environment variable that overrides the file name of
// libpam to load (an absolute path or a soname). It exists for unusual
// installations and for tests that need libpam to be missing.
const EnvLibrary = "GOPAM_LIBPAM"

// Lib is the loaded libpam: its implementation, its numbers, and the
// addresses of the functions gopam calls. A nil address means the symbol is
// absent from this implementation.
type Lib struct {
	Impl Impl
	Path string
	tab  table

	start, startConfdir, end              uintptr
	authenticate, setcred, acctMgmt       uintptr
	openSession, closeSession, chauthtok  uintptr
	setItem, getItem, strerror            uintptr
	getenv, putenv, getenvlist            uintptr
	failDelay, unsetenv, setenv, openpamV uintptr
	getFeature, setFeature                uintptr // OpenPAM

	malloc, calloc, free uintptr
	dladdr               uintptr
	libc                 uintptr // the C library's handle

	convTrampoline  uintptr
	delayTrampoline uintptr
}

var (
	loadOnce sync.Once
	loaded   *Lib
	loadErr  error
)

// Load returns the process-wide libpam, loading it on first use. The result
// (or the error) is cached: libpam is never unloaded.
func Load() (*Lib, error) {
	loadOnce.Do(func() { loaded, loadErr = load() })
	return loaded, loadErr
}

func candidates() (pam, libc []string) {
	switch runtime.GOOS {
	case "darwin":
		return []string{"/usr/lib/libpam.2.dylib", "/usr/lib/libpam.dylib", "libpam.dylib"},
			[]string{"/usr/lib/libSystem.B.dylib"}
	case "freebsd", "dragonfly":
		return []string{"libpam.so.6", "libpam.so"}, []string{"libc.so.7"}
	case "netbsd", "openbsd":
		return []string{"libpam.so", "libpam.so.0"}, []string{"libc.so"}
	}
	return []string{"libpam.so.0", "libpam.so"}, []string{"libc.so.6", "libc.so"}
}

func dlopenFirst(names []string) (uintptr, string, error) {
	var errs []error
	for _, n := range names {
		h, err := purego.Dlopen(n, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			return h, n, nil
		}
		errs = append(errs, err)
	}
	return 0, "", errors.Join(errs...)
}

func load() (*Lib, error) {
	pamNames, libcNames := candidates()
	if p := os.Getenv(EnvLibrary); p != "" {
		pamNames = []string{p}
	}
	ch, _, err := dlopenFirst(libcNames)
	if err != nil {
		return nil, fmt.Errorf("cannot load the C library: %w", err)
	}
	ph, path, err := dlopenFirst(pamNames)
	if err != nil {
		return nil, fmt.Errorf("cannot load libpam: %w", err)
	}
	l := &Lib{Path: path, libc: ch}
	sym := func(h uintptr, name string) uintptr {
		p, err := purego.Dlsym(h, name)
		if err != nil {
			return 0
		}
		return p
	}
	required := []struct {
		p    *uintptr
		name string
		h    uintptr
	}{
		{&l.start, "pam_start", ph}, {&l.end, "pam_end", ph},
		{&l.authenticate, "pam_authenticate", ph}, {&l.setcred, "pam_setcred", ph},
		{&l.acctMgmt, "pam_acct_mgmt", ph}, {&l.openSession, "pam_open_session", ph},
		{&l.closeSession, "pam_close_session", ph}, {&l.chauthtok, "pam_chauthtok", ph},
		{&l.setItem, "pam_set_item", ph}, {&l.getItem, "pam_get_item", ph},
		{&l.strerror, "pam_strerror", ph}, {&l.getenv, "pam_getenv", ph},
		{&l.putenv, "pam_putenv", ph}, {&l.getenvlist, "pam_getenvlist", ph},
		{&l.malloc, "malloc", ch}, {&l.calloc, "calloc", ch}, {&l.free, "free", ch},
	}
	for _, r := range required {
		if *r.p = sym(r.h, r.name); *r.p == 0 {
			return nil, fmt.Errorf("%s has no symbol %s", path, r.name)
		}
	}
	l.dladdr = sym(ch, "dladdr")
	l.startConfdir = sym(ph, "pam_start_confdir")
	l.failDelay = sym(ph, "pam_fail_delay")
	l.unsetenv = sym(ph, "pam_unsetenv")
	l.setenv = sym(ph, "pam_setenv")
	l.openpamV = sym(ph, "openpam_get_option")
	l.getFeature = sym(ph, "openpam_get_feature")
	l.setFeature = sym(ph, "openpam_set_feature")
	switch {
	case l.openpamV != 0:
		l.Impl = ImplOpenPAM
	case l.failDelay != 0:
		l.Impl = ImplLinuxPAM
	}
	l.tab = tableFor(l.Impl)
	l.convTrampoline = purego.NewCallback(convTrampoline)
	if l.Impl == ImplLinuxPAM {
		l.delayTrampoline = purego.NewCallback(delayTrampoline)
	}
	if cacheWantedByEnv() {
		l.SetModuleCache(true)
	}
	return l, nil
}

// Feature names an optional capability of the loaded libpam.
type Feature string

// The optional capabilities that Has reports.
const (
	FeatureFailDelay    Feature = "fail_delay"
	FeatureUnsetenv     Feature = "unsetenv"
	FeatureSetenv       Feature = "setenv"
	FeatureConfDir      Feature = "confdir"
	FeatureBinaryPrompt Feature = "binary_prompt"
	FeatureXAuthData    Feature = "xauthdata"
	FeatureConvAgain    Feature = "conv_again"
)

// Has reports whether the loaded libpam offers f. This is the one place where
// features are decided.
func (l *Lib) Has(f Feature) bool {
	linux := l.Impl == ImplLinuxPAM
	switch f {
	case FeatureFailDelay:
		return l.failDelay != 0 && l.delayTrampoline != 0
	case FeatureUnsetenv:
		// Linux-PAM unsets with pam_putenv("NAME"), OpenPAM with pam_unsetenv.
		return l.unsetenv != 0 || linux
	case FeatureSetenv:
		return l.setenv != 0
	case FeatureConfDir:
		// OpenPAM: the path form of the service name (openpam.go).
		return l.startConfdir != 0 || l.openpamConfDir()
	case FeatureBinaryPrompt, FeatureXAuthData, FeatureConvAgain:
		return linux
	}
	return false
}

// Features lists every feature Has reports true for, in a fixed order.
func (l *Lib) Features() []Feature {
	var out []Feature
	for _, f := range []Feature{FeatureBinaryPrompt, FeatureConfDir, FeatureConvAgain,
		FeatureFailDelay, FeatureSetenv, FeatureUnsetenv, FeatureXAuthData} {
		if l.Has(f) {
			out = append(out, f)
		}
	}
	return out
}

// dlInfo mirrors Dl_info, which dladdr fills.
type dlInfo struct {
	fname unsafe.Pointer
	fbase unsafe.Pointer
	sname unsafe.Pointer
	saddr unsafe.Pointer
}

// File returns the absolute path of the libpam file that was loaded, as the
// dynamic linker resolved it, or Path when dladdr cannot tell.
func (l *Lib) File() string {
	if l.dladdr == 0 {
		return l.Path
	}
	var info dlInfo
	r, _, _ := purego.SyscallN(l.dladdr, l.start, uintptr(unsafe.Pointer(&info)))
	if r == 0 || info.fname == nil {
		return l.Path
	}
	return goString(info.fname)
}
