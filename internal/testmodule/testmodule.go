// Package testmodule provides pam_gotest, a PAM module written in C whose
// behaviour a test chooses with module arguments, so that gopam's tests can
// make the real libpam call the Go conversation, environment and thread
// handling in precisely the ways they need to check. It builds against
// Linux-PAM and OpenPAM (pamtest.CompileModule picks the headers of the
// loaded libpam); on OpenPAM the binary step gives PAM_SERVICE_ERR, ret=
// takes OpenPAM's code names and setenv= needs NAME=VALUE.
//
// Build compiles the module (once per test binary) and returns the path to
// put in a service file:
//
//	s := pamtest.New(t)
//	s.Service("svc", "auth required "+testmodule.Build(t)+" prompt=Password: expect=secret")
//
// All six entry points (auth, setcred, acct, open_session, close_session,
// chauthtok) behave alike. Every argument is optional and they combine; the
// steps run in this order and the first failing step ends the call with its
// code:
//
//   - tidfile=/abs/path: on entry, append "<op> <tid>\n" to the file, op
//     being auth, setcred, acct, open_session, close_session or chauthtok
//     and tid the calling thread's kernel thread id (gettid). The line is
//     written with one write() before any other step, the sleep included,
//     so a test can wait for it to know the call has started. An unwritable
//     file gives PAM_SYSTEM_ERR.
//   - waitfile=/abs/path: wait in C until the file exists (checked every
//     millisecond, at most ten minutes, then PAM_SYSTEM_ERR): with tidfile=,
//     a test knows when the call is in C and decides when it goes on, with
//     no clock.
//   - sleepms=N: sleep N milliseconds in C (nanosleep), 0 <= N <= 600000.
//   - setenv=NAME=VALUE: pam_putenv("NAME=VALUE"); repeatable, applied in
//     order. Its failure code is returned.
//   - nmsg=N: one conversation call with N PAM_TEXT_INFO messages "msg 0",
//     "msg 1", ...; 0 <= N <= 4096, so N = 0 and N = 33 check that the
//     application refuses bad counts.
//   - nullresp: one conversation call with the PAM_TEXT_INFO message
//     "nullresp" and resp == NULL, as pam_matrix makes.
//   - bigmsg=N: one PAM_TEXT_INFO message of exactly N bytes of 'x'.
//   - binary: one PAM_BINARY_PROMPT whose msg is the libpamc packet
//     {0,0,0,9, 0x01, "ping"} (u32 big-endian length including the 5-byte
//     header, u8 type, data). The answer must be the packet
//     {0,0,0,9, 0x02, "pong"}; any other answer, a NULL one included, gives
//     PAM_AUTH_ERR.
//   - prompt=TEXT or echoprompt=TEXT: one PAM_PROMPT_ECHO_OFF (or
//     PAM_PROMPT_ECHO_ON) prompt; at most one per module line, so list the
//     module several times for several prompts. A NULL answer gives
//     PAM_AUTH_ERR.
//   - expect=VALUE: with a prompt, an answer other than VALUE gives
//     PAM_AUTH_ERR.
//   - fuzzfile=/abs/path: one conversation call with a batch the file's
//     bytes describe, for fuzz targets: byte 0 mod 41 is the message count
//     (0..40), bit 0 of byte 1 passes resp == NULL; then per message a style
//     byte (below 0x80 its value mod 8, so 0, 5 and 6 are invalid; from 0x80
//     the byte as a signed number), a big-endian u16 text length (up to
//     64 KiB) and the text (missing bytes are 'x'). A binary prompt's text
//     is its packet, in a zeroed allocation as long as its header declares
//     (up to 1 MiB). The conversation's code is returned.
//   - ret=TOKEN: the code returned when every step succeeded, as a Linux-PAM
//     code name without the PAM_ prefix in lowercase (success, auth_err,
//     perm_denied, user_unknown, conv_err, new_authtok_reqd, ignore,
//     incomplete, ...; every code of <security/_pam_types.h>) or a decimal
//     number. The default is success.
//
// For every conversation step, a conversation result other than PAM_SUCCESS
// is returned unchanged, so a test sees exactly what the Go side answered.
// The module frees every response it gets with free(), wiping string answers
// first, and it accepts a NULL response array for the information-only
// steps. PAM_SILENT is ignored.
//
// pam_chauthtok calls a module twice: in the PAM_PRELIM_CHECK pass the module
// only writes its tidfile line and returns PAM_SUCCESS, so one pam_chauthtok
// gives two chauthtok lines; the other steps run in the PAM_UPDATE_AUTHTOK
// pass.
//
// An unknown argument or a bad value gives PAM_SERVICE_ERR, so that a typo
// in a test's service file cannot pass silently.
package testmodule

import (
	_ "embed"
	"testing"

	"github.com/gopam/pam/pamtest"
)

// source is the module's C source, compiled by Build.
//
//go:embed pam_gotest.c
var source string

// Source returns the C source of pam_gotest, for tests that build it in
// some other way (for example with sanitizers).
func Source() string { return source }

// Build compiles pam_gotest with pamtest.CompileModule and returns the
// absolute path of a private copy of pam_gotest.so, which is removed when
// the test ends. The compilation happens once per test binary; a machine
// without a C compiler or the PAM headers fails the test, naming the Debian
// package to install.
func Build(t testing.TB) string {
	t.Helper()
	return pamtest.CompileModule(t, "pam_gotest", source)
}
