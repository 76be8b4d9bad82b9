// Package module writes PAM modules in Go.
//
// A module is a value that implements any of the six service functions as
// small interfaces (Authenticator, CredentialSetter, AccountManager,
// SessionOpener, SessionCloser, AuthTokChanger), registered from the init
// function of a main package:
//
//	package main
//
//	import "github.com/gopam/pam/module"
//
//	type hello struct{}
//
//	func (hello) Authenticate(h *module.Handle) error {
//		user, err := h.User("")
//		...
//	}
//
//	func init() { module.Register(hello{}) }
//
//	func main() { module.Main() }
//
// No //export lines are written by the author: the entry points belong to
// this package. The same source builds two ways (see the README for the
// whole recipe):
//
//	go build -buildmode=c-shared -o pam_hello.so .   # in-process mode
//	go build -o pam_hello-helper .                   # the helper process
//
// and the isolated mode's installed module is this package's C file,
// built from source on its own:
//
//	cc -shared -fPIC -O2 -o pam_hello.so "$(go list -f '{{.Dir}}' github.com/gopam/pam/module)/gopam_shim.c" -lpam
//
// # Design
//
// The C entry points (pam_sm_authenticate and the others) are C functions
// in gopam_shim.c, which cgo compiles into the c-shared library with
// GOPAM_INPROCESS defined. Register fills a C table of the functions the module implements;
// an entry point whose function is absent answers PAM_IGNORE without
// entering Go. Every other call is routed in one C function, gopam_entry:
//
//   - In the process that loaded the library, when that process is not a Go
//     program, the call enters Go directly (in-process mode).
//   - After the host forked (getpid differs from the loading process's: a
//     c-shared Go library starts its runtime at load, and its threads do not
//     survive a fork), or when the host is itself a Go program (the Go
//     build id note of the program's ELF headers; two Go runtimes must not
//     both run code), the call goes to the module's helper process instead:
//     the same Go code, built as an executable, started with a socketpair
//     as its fd 3. A missing helper makes the call fail with PAM_SYSTEM_ERR
//     and a line in the system log; it never hangs or crashes the host.
//   - The isolated mode's shim always uses the helper: the installed object
//     holds no Go at all, so every host is safe.
//
// The helper relays every PAM call the Go code makes (items, environment,
// conversation, pam_get_user, pam_get_authtok, syslog, fail delay) to the C
// side, which makes it on the real handle. Module data lives in the helper,
// which serves one transaction: the C side keeps the connection as its own
// module data, so pam_end ends the helper after running the Go cleanups.
// Every wait for the helper is bounded (gopam_timeout=SECONDS, default
// 120) and ends at once when the helper dies; the helper ends when the
// host's end of the socket closes.
//
// libpam dlcloses modules at pam_end, and a Go runtime cannot be unmapped:
// the library pins itself at load (dlopen of its own path with
// RTLD_NODELETE), so no linker flag is needed.
//
// Codes are the root package's pam.Code values, translated through the one
// table of internal/libpam for the implementation the C side was compiled
// against. A service function returns nil, a pam.Code, an error wrapping
// one or a *pam.Error; any other error is PAM_SYSTEM_ERR, logged. A panic
// in a service function or a data cleanup is recovered, logged, and
// becomes PAM_SYSTEM_ERR. (A panic in a goroutine the module starts itself
// cannot be recovered: in-process it ends the host, in the helper it ends
// the helper and the call fails.)
//
// # Which mode for which host
//
//   - C hosts that do not fork around PAM calls (pamtester, python3-pam,
//     most servers): in-process, the fastest.
//   - Forking hosts (sshd, su, sudo, login): in-process with the helper
//     installed beside the library (calls after a fork use it), or
//     isolated.
//   - Go hosts (programs using github.com/gopam/pam or any other binding):
//     isolated, or in-process with the helper beside it (every call then
//     uses the helper). Only the isolated shim keeps a second Go runtime
//     from starting in the host at all.
package module
