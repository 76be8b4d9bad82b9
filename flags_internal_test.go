package pam

import (
	"testing"

	"github.com/gopam/pam/internal/libpam"
)

// TestOpFlags checks the flag words each operation hands libpam (Linux-PAM's
// numbers, or OpenPAM's, whose PAM_SILENT is INT_MIN): the credential
// methods' own bit reaches pam_setcred, and a stray bit never becomes
// another operation's flag.
func TestOpFlags(t *testing.T) {
	l, err := lib()
	if err != nil || l.Impl == libpam.ImplUnknown {
		t.Fatalf("needs Linux-PAM (Debian package libpam0g) or OpenPAM: %v", err)
	}
	all := Flags(1<<32 - 1)
	openpam := l.Impl == libpam.ImplOpenPAM
	const opSilent = -0x80000000
	for _, c := range []struct {
		op    libpam.Op
		flags Flags
		want  int32
		op2   int32 // OpenPAM's
	}{
		{libpam.OpAuthenticate, Silent | DisallowNullAuthTok, 0x8001, opSilent | 0x1},
		{libpam.OpAuthenticate, ChangeExpiredAuthTok, 0, 0},
		{libpam.OpChauthtok, all, 0x8020, opSilent | 0x4},
		{libpam.OpOpenSession, all, 0x8000, opSilent},
		{libpam.OpSetcred, Flags(libpam.FlagEstablishCred) | Silent, 0x8002, opSilent | 0x1},
		{libpam.OpSetcred, Flags(libpam.FlagDeleteCred), 0x0004, 0x2},
		{libpam.OpSetcred, Flags(libpam.FlagReinitializeCred), 0x0008, 0x4},
		{libpam.OpSetcred, Flags(libpam.FlagRefreshCred), 0x0010, 0x8},
	} {
		if openpam {
			c.want = c.op2
		}
		if got := l.NativeFlags(opFlags(c.op, c.flags)); got != c.want {
			t.Errorf("op %d flags %#x: native %#x, want %#x", c.op, c.flags, got, c.want)
		}
	}
}
