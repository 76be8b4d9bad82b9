package libpam

// This file is the one place where PAM numbers live. The rest of gopam speaks
// in the portable enumerations below; the tables translate them to and from
// the numbers of the implementation that was loaded.

// Impl identifies a PAM implementation.
type Impl int

// The implementations gopam knows how to talk to.
const (
	ImplUnknown Impl = iota
	ImplLinuxPAM
	ImplOpenPAM
)

// String returns the implementation's conventional name.
func (i Impl) String() string {
	switch i {
	case ImplLinuxPAM:
		return "Linux-PAM"
	case ImplOpenPAM:
		return "OpenPAM"
	}
	return "unknown"
}

// Code is a portable PAM return code. Its values are gopam's own and never
// reach C; Native translates them.
type Code int

// Every PAM return code of Linux-PAM and OpenPAM. CodeUnknown stands for a
// number the loaded library returned that neither table knows.
const (
	CodeSuccess Code = iota
	CodeOpenErr
	CodeSymbolErr
	CodeServiceErr
	CodeSystemErr
	CodeBufErr
	CodePermDenied
	CodeAuthErr
	CodeCredInsufficient
	CodeAuthInfoUnavail
	CodeUserUnknown
	CodeMaxTries
	CodeNewAuthTokReqd
	CodeAcctExpired
	CodeSessionErr
	CodeCredUnavail
	CodeCredExpired
	CodeCredErr
	CodeNoModuleData
	CodeConvErr
	CodeAuthTokErr
	CodeAuthTokRecoveryErr
	CodeAuthTokLockBusy
	CodeAuthTokDisableAging
	CodeTryAgain
	CodeIgnore
	CodeAbort
	CodeAuthTokExpired
	CodeModuleUnknown
	CodeBadItem
	CodeConvAgain
	CodeIncomplete
	CodeDomainUnknown
	CodeBadHandle
	CodeBadFeature
	CodeBadConstant
	CodeUnknown
	NumCodes
)

// absent marks a constant the implementation does not have.
const absent = -1

// linuxCodes and openpamCodes map each Code to the implementation's number.
// Linux-PAM: security/_pam_types.h. OpenPAM: security/pam_constants.h.
var linuxCodes = [NumCodes]int{
	CodeSuccess: 0, CodeOpenErr: 1, CodeSymbolErr: 2, CodeServiceErr: 3,
	CodeSystemErr: 4, CodeBufErr: 5, CodePermDenied: 6, CodeAuthErr: 7,
	CodeCredInsufficient: 8, CodeAuthInfoUnavail: 9, CodeUserUnknown: 10,
	CodeMaxTries: 11, CodeNewAuthTokReqd: 12, CodeAcctExpired: 13,
	CodeSessionErr: 14, CodeCredUnavail: 15, CodeCredExpired: 16,
	CodeCredErr: 17, CodeNoModuleData: 18, CodeConvErr: 19,
	CodeAuthTokErr: 20, CodeAuthTokRecoveryErr: 21, CodeAuthTokLockBusy: 22,
	CodeAuthTokDisableAging: 23, CodeTryAgain: 24, CodeIgnore: 25,
	CodeAbort: 26, CodeAuthTokExpired: 27, CodeModuleUnknown: 28,
	CodeBadItem: 29, CodeConvAgain: 30, CodeIncomplete: 31,
	CodeDomainUnknown: absent, CodeBadHandle: absent, CodeBadFeature: absent,
	CodeBadConstant: absent, CodeUnknown: absent,
}

var openpamCodes = [NumCodes]int{
	CodeSuccess: 0, CodeOpenErr: 1, CodeSymbolErr: 2, CodeServiceErr: 3,
	CodeSystemErr: 4, CodeBufErr: 5, CodeConvErr: 6, CodePermDenied: 7,
	CodeMaxTries: 8, CodeAuthErr: 9, CodeNewAuthTokReqd: 10,
	CodeCredInsufficient: 11, CodeAuthInfoUnavail: 12, CodeUserUnknown: 13,
	CodeCredUnavail: 14, CodeCredExpired: 15, CodeCredErr: 16,
	CodeAcctExpired: 17, CodeAuthTokExpired: 18, CodeSessionErr: 19,
	CodeAuthTokErr: 20, CodeAuthTokRecoveryErr: 21, CodeAuthTokLockBusy: 22,
	CodeAuthTokDisableAging: 23, CodeNoModuleData: 24, CodeIgnore: 25,
	CodeAbort: 26, CodeTryAgain: 27, CodeModuleUnknown: 28,
	CodeDomainUnknown: 29, CodeBadHandle: 30, CodeBadItem: 31,
	CodeBadFeature: 32, CodeBadConstant: 33,
	CodeConvAgain: absent, CodeIncomplete: absent, CodeUnknown: absent,
}

// Item is a portable PAM item type.
type Item int

// The PAM items of both implementations.
const (
	ItemService Item = iota
	ItemUser
	ItemTTY
	ItemRHost
	ItemConv
	ItemAuthTok
	ItemOldAuthTok
	ItemRUser
	ItemUserPrompt
	ItemFailDelay
	ItemXDisplay
	ItemXAuthData
	ItemAuthTokType
	ItemRepository
	ItemAuthTokPrompt
	ItemOldAuthTokPrompt
	ItemHost
	NumItems
)

var linuxItems = [NumItems]int{
	ItemService: 1, ItemUser: 2, ItemTTY: 3, ItemRHost: 4, ItemConv: 5,
	ItemAuthTok: 6, ItemOldAuthTok: 7, ItemRUser: 8, ItemUserPrompt: 9,
	ItemFailDelay: 10, ItemXDisplay: 11, ItemXAuthData: 12, ItemAuthTokType: 13,
	ItemRepository: absent, ItemAuthTokPrompt: absent,
	ItemOldAuthTokPrompt: absent, ItemHost: absent,
}

var openpamItems = [NumItems]int{
	ItemService: 1, ItemUser: 2, ItemTTY: 3, ItemRHost: 4, ItemConv: 5,
	ItemAuthTok: 6, ItemOldAuthTok: 7, ItemRUser: 8, ItemUserPrompt: 9,
	ItemRepository: 10, ItemAuthTokPrompt: 11, ItemOldAuthTokPrompt: 12,
	ItemHost:      13,
	ItemFailDelay: absent, ItemXDisplay: absent, ItemXAuthData: absent,
	ItemAuthTokType: absent,
}

// Flag is a portable PAM flag; several are or-ed into a Flags value.
type Flag uint32

// The PAM flags gopam passes to operations. The values are gopam's own bits.
const (
	FlagSilent Flag = 1 << iota
	FlagDisallowNullAuthTok
	FlagEstablishCred
	FlagDeleteCred
	FlagReinitializeCred
	FlagRefreshCred
	FlagChangeExpiredAuthTok
	FlagDataSilent
	numFlags = iota
)

var linuxFlags = [numFlags]int64{
	0x8000, 0x0001, 0x0002, 0x0004, 0x0008, 0x0010, 0x0020, 0x40000000,
}

var openpamFlags = [numFlags]int64{
	// PAM_SILENT is INT_MIN in OpenPAM; PAM_DATA_SILENT does not exist.
	-0x80000000, 0x1, 0x1, 0x2, 0x4, 0x8, 0x4, absent,
}

// Style is a portable conversation message style.
type Style int

// The message styles. StyleUnknown stands for a number neither table knows.
const (
	StyleUnknown Style = iota
	StylePromptEchoOff
	StylePromptEchoOn
	StyleErrorMsg
	StyleTextInfo
	StyleRadio
	StyleBinaryPrompt
	numStyles
)

var linuxStyles = [numStyles]int{
	StyleUnknown: absent, StylePromptEchoOff: 1, StylePromptEchoOn: 2,
	StyleErrorMsg: 3, StyleTextInfo: 4, StyleRadio: 5, StyleBinaryPrompt: 7,
}

var openpamStyles = [numStyles]int{
	StyleUnknown: absent, StylePromptEchoOff: 1, StylePromptEchoOn: 2,
	StyleErrorMsg: 3, StyleTextInfo: 4, StyleRadio: absent,
	StyleBinaryPrompt: absent,
}

// table holds the numbers of one implementation.
type table struct {
	codes  *[NumCodes]int
	items  *[NumItems]int
	flags  *[numFlags]int64
	styles *[numStyles]int
}

func tableFor(i Impl) table {
	if i == ImplOpenPAM {
		return table{&openpamCodes, &openpamItems, &openpamFlags, &openpamStyles}
	}
	// An unknown implementation is most likely a Linux-PAM derivative (the
	// Solaris and AIX descendants share its numbers for the common codes).
	return table{&linuxCodes, &linuxItems, &linuxFlags, &linuxStyles}
}

// CodeOf translates a native return value to a Code.
func (l *Lib) CodeOf(native int) Code {
	for c, n := range l.tab.codes {
		if n == native && n != absent {
			return Code(c)
		}
	}
	return CodeUnknown
}

// NativeCode returns the implementation's number for c, or false if the
// implementation does not have it.
func (l *Lib) NativeCode(c Code) (int, bool) {
	if c < 0 || c >= NumCodes {
		return 0, false
	}
	n := l.tab.codes[c]
	return n, n != absent
}

// NativeItem returns the implementation's number for it, or false.
func (l *Lib) NativeItem(it Item) (int, bool) {
	if it < 0 || it >= NumItems {
		return 0, false
	}
	n := l.tab.items[it]
	return n, n != absent
}

// NativeFlags translates an or-ed set of Flag bits to the implementation's
// flag word. Flags the implementation lacks are dropped: they only ever ask
// for quieter behaviour.
func (l *Lib) NativeFlags(f Flag) int32 {
	var out int64
	for i := range numFlags {
		if f&(1<<i) != 0 && l.tab.flags[i] != absent {
			out |= l.tab.flags[i]
		}
	}
	return int32(out)
}

// StyleOf translates a native message style.
func (l *Lib) StyleOf(native int) Style {
	for s, n := range l.tab.styles {
		if n == native && n != absent {
			return Style(s)
		}
	}
	return StyleUnknown
}
