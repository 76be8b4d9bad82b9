package pam

import "github.com/gopam/pam/internal/libpam"

// Flags modify a PAM operation. Combine them with |. The values are gopam's
// own; they are translated to the running implementation's numbers.
type Flags uint32

// The flags an application may pass. Each operation accepts the ones that PAM
// defines for it and ignores the rest.
const (
	// Silent asks modules not to send informational messages.
	Silent = Flags(libpam.FlagSilent)
	// DisallowNullAuthTok makes Authenticate fail for a user whose
	// authentication token is empty.
	DisallowNullAuthTok = Flags(libpam.FlagDisallowNullAuthTok)
	// ChangeExpiredAuthTok makes ChangeAuthTok change only expired tokens.
	ChangeExpiredAuthTok = Flags(libpam.FlagChangeExpiredAuthTok)
)

// credFlagMask selects the credential-operation bit of a Flags value passed
// internally to setcred.
const credFlagMask = libpam.FlagEstablishCred | libpam.FlagDeleteCred | libpam.FlagReinitializeCred | libpam.FlagRefreshCred

// opFlags keeps only the flags that op defines, so that a caller's stray bit
// never turns into a different flag of the same number.
func opFlags(op libpam.Op, f Flags) libpam.Flag {
	allowed := Silent
	switch op {
	case libpam.OpAuthenticate, libpam.OpAcctMgmt:
		allowed |= DisallowNullAuthTok
	case libpam.OpChauthtok:
		allowed |= ChangeExpiredAuthTok
	case libpam.OpSetcred:
		// Set only by the four credential methods, from their own bit.
		allowed |= Flags(credFlagMask)
	}
	return libpam.Flag(f & allowed)
}
