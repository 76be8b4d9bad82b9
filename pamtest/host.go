package pamtest

import (
	_ "embed"
	"testing"
)

// hostSource is the C source of the test host, compiled by Host.
//
//go:embed host.c
var hostSource string

// Host compiles the kit's test host, a small PAM application written in C,
// and returns the absolute path of a private copy of the executable in a
// directory from t.TempDir. Like CompileProgram, which it uses, it compiles
// once per test binary and fails the test, naming the Debian package to
// install, when the compiler or the PAM headers are missing.
//
// The host runs PAM operations through the real libpam against a Stack and
// prints a transcript, so a test can check a module from outside the test
// process. It is the way to test a PAM module written in Go: such a module
// is a c-shared library, which cannot be loaded into a Go test binary, so it
// must run in a C process.
//
// The command line is
//
//	host [-a ANSWER]... [-f CODE] [-m MAX] [-N] [-B] CONFDIR SERVICE USER [OP]...
//
// CONFDIR is a stack's Dir, SERVICE a service written by Stack.Service and
// USER the user name given to pam_start_confdir (on OpenPAM, which has no
// pam_start_confdir, the host reads CONFDIR/SERVICE the way gopam's
// Config.ConfDir does there, and has no binary prompts). The host starts one
// transaction, runs each OP on it in order and ends it with pam_end and the
// last result. An OP is one of
//
//	auth           pam_authenticate(pamh, 0)
//	setcred        pam_setcred(pamh, PAM_ESTABLISH_CRED)
//	acct           pam_acct_mgmt(pamh, 0)
//	open_session   pam_open_session(pamh, 0)
//	close_session  pam_close_session(pamh, 0)
//	chauthtok      pam_chauthtok(pamh, 0)
//	env            print the PAM environment (pam_getenvlist)
//
// The options shape the host's conversation function:
//
//	-a ANSWER  Answer the next text prompt with ANSWER. The option repeats,
//	           and the answers are used in order; when they are used up,
//	           prompts are answered with successive lines of standard input
//	           (without the newline), and at the end of the input the
//	           conversation fails with PAM_CONV_ERR.
//	-f CODE    Make every conversation call return CODE, a decimal number,
//	           right after printing its "conv" line, leaving the messages
//	           unread and *resp unset.
//	-m MAX     Print at most MAX bytes of each message text and binary
//	           packet's data; LEN still gives the full length. The default
//	           is no limit.
//	-N         Answer text prompts with a NULL resp (and PAM_SUCCESS).
//	-B         Answer binary prompts with a packet of the wrong type.
//
// The transcript goes to standard output, one line per event, with fields
// separated by single spaces:
//
//	tid TID                 first, the kernel thread id (gettid) of the
//	                        thread that calls libpam
//	start CODE              the result of pam_start_confdir
//	conv n=N resp=set|null  a conversation call with N messages; resp=null
//	                        when the module passed no response pointer
//	conv n=N refused        a call with fewer than 1 or more than
//	                        PAM_MAX_NUM_MSG (32) messages or a NULL message
//	                        array, which the conversation refuses with
//	                        PAM_CONV_ERR as a careful application does
//	STYLE LEN TEXT          one line per message of the call, STYLE being
//	                        prompt-off, prompt-on, info or error, LEN the
//	                        text's length in bytes and TEXT the text; a NULL
//	                        text prints "STYLE null"
//	binary LEN TYPE DATA    a PAM_BINARY_PROMPT holding a libpamc packet:
//	                        its length and type (decimal) and its data; a
//	                        NULL packet prints "binary null"
//	style N                 a message of unknown style N
//	message I null          a NULL message pointer at index I
//	OP CODE                 the numeric PAM result of an operation other
//	                        than env
//	env NAME=VALUE          for env, one line per variable
//
// TEXT, DATA and NAME=VALUE are printed with a backslash as \\, newline,
// tab and carriage return as \n, \t and \r and other control bytes as \xHH,
// so that each stays on its line. The conversation fails with PAM_CONV_ERR
// on a prompt when there is no answer or no response pointer, on a NULL
// binary packet, on an unknown style and on a NULL message; otherwise it
// returns PAM_SUCCESS. It answers
// a binary prompt with the packet {0,0,0,9, 0x02, "pong"}, or with type
// 0x03 under -B.
//
// The exit status is 0 when pam_start_confdir succeeded, whatever the
// operations returned, 1 when it failed and 2 for a usage error (a bad
// option, fewer than three arguments or an unknown OP), which runs nothing.
//
// For example, with a stack s whose service "login" has a module that asks
// for a token with the echoing prompt "Token:" and then permits,
//
//	out, err := exec.Command(pamtest.Host(t), "-a", "12345", s.Dir(), "login", "alice", "auth", "acct").Output()
//
// gives output such as
//
//	tid 4242
//	start 0
//	conv n=1 resp=set
//	prompt-on 6 Token:
//	auth 0
//	acct 0
func Host(t testing.TB) string {
	t.Helper()
	return CompileProgram(t, "pamtest-host", hostSource)
}
