package pam

import (
	"testing"

	"github.com/gopam/pam/internal/libpam"
)

// TestOpFlags checks the flag words each operation hands Linux-PAM: the
// credential methods' own bit reaches pam_setcred, and a stray bit never
// becomes another operation's flag.
func TestOpFlags(t *testing.T) {
	l, err := lib()
	if err != nil || l.Impl != libpam.ImplLinuxPAM {
		t.Fatalf("needs Linux-PAM (Debian package libpam0g): %v", err)
	}
	all := Flags(1<<32 - 1)
	for _, c := range []struct {
		op    libpam.Op
		flags Flags
		want  int32
	}{
		{libpam.OpAuthenticate, Silent | DisallowNullAuthTok, 0x8001},
		{libpam.OpAuthenticate, ChangeExpiredAuthTok, 0},
		{libpam.OpChauthtok, all, 0x8020},
		{libpam.OpOpenSession, all, 0x8000},
		{libpam.OpSetcred, Flags(libpam.FlagEstablishCred) | Silent, 0x8002},
		{libpam.OpSetcred, Flags(libpam.FlagDeleteCred), 0x0004},
		{libpam.OpSetcred, Flags(libpam.FlagReinitializeCred), 0x0008},
		{libpam.OpSetcred, Flags(libpam.FlagRefreshCred), 0x0010},
	} {
		if got := l.NativeFlags(opFlags(c.op, c.flags)); got != c.want {
			t.Errorf("op %d flags %#x: native %#x, want %#x", c.op, c.flags, got, c.want)
		}
	}
}
