package main

import (
	"errors"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopam/pam/internal/libpam"
)

// FuzzParseArgs feeds the command-line parser arguments the fuzzer chooses
// (each a length byte, then its bytes, NUL bytes included). Invariants: no
// panic; an error is a usage error of one bounded line; a parse is
// deterministic; every operation parsed re-parses from its canonical form to
// the same operation; goroutines and the C heap stay at their baseline.
func FuzzParseArgs(f *testing.F) {
	for _, args := range [][]string{
		{"login", "alice", "authenticate", "acct_mgmt(PAM_SILENT)"},
		{"-v", "-I", "tty=/dev/pts/1", "-Eruser=bob", "svc", "u", "setcred(PAM_DELETE_CRED|PAM_SILENT)"},
		{"--timeout=3s", "--answer", "pw", "--json", "--env", "s", "", "chauthtok(PAM_CHANGE_EXPIRED_AUTHTOK)"},
		{"demo", "--user", "alice", "--module-dir", "/lib"},
		{"--", "-svc", "u", "open_session()", "close_session"},
		{"s", "u", "setcred(PAM_ESTABLISH_CRED|PAM_REFRESH_CRED)", "authenticate(|)", "x\x00y"},
	} {
		var b []byte
		for _, a := range args {
			b = append(b, byte(len(a)))
			b = append(b, a...)
		}
		f.Add(b)
	}
	var once sync.Once
	var cheap uint64
	var haveMalloc bool
	f.Fuzz(func(t *testing.T, data []byte) {
		once.Do(func() { cheap, haveMalloc = libpam.MallocInUse() })
		// Counted per input: the fuzzing engine's own goroutines come and go.
		goroutines := runtime.NumGoroutine()
		var args []string
		for len(data) > 0 && len(args) < 64 {
			n := min(int(data[0]), len(data)-1)
			args = append(args, string(data[1:1+n]))
			data = data[1+n:]
		}
		o, err := parseArgs(args, nil)
		if err != nil {
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("parseArgs(%q): %v (%T), want a usage error", args, err, err)
			}
			if s := err.Error(); s == "" || strings.ContainsAny(s, "\n\r\x1b") || len(s) > 4096 {
				t.Fatalf("usage error is not one bounded line (%d bytes): %.300q", len(s), s)
			}
		} else {
			o2, err2 := parseArgs(args, nil)
			if err2 != nil || !reflect.DeepEqual(o, o2) {
				t.Fatalf("parseArgs(%q) is not deterministic: %v", args, err2)
			}
			if !o.help && !o.demo && (o.service == "" || len(o.ops) == 0) {
				t.Fatalf("parseArgs(%q) accepted no service or no operation: %+v", args, o)
			}
			for _, op := range o.ops {
				if _, ok := ops[op.name]; !ok {
					t.Fatalf("unknown operation %q accepted", op.name)
				}
				canon := op.name
				if len(op.names) > 0 {
					canon += "(" + strings.Join(op.names, "|") + ")"
				}
				again, err := parseOperation(canon)
				if err != nil || again.name != op.name || again.flags != op.flags || again.cred != op.cred {
					t.Fatalf("%q parsed as %+v, but its canonical form %q gives %+v, %v", args, op, canon, again, err)
				}
			}
		}
		for deadline := time.Now().Add(time.Minute); runtime.NumGoroutine() > goroutines; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) { // a hang guard only: the parser starts no goroutine
				t.Fatalf("%d goroutines, %d before the parse", runtime.NumGoroutine(), goroutines)
			}
		}
		if c, _ := libpam.MallocInUse(); haveMalloc && c > cheap+1<<20 {
			t.Fatalf("C heap: %d bytes, baseline %d", c, cheap)
		}
	})
}
