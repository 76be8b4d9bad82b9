package libpam

// Numbers returns a Lib that carries only the number tables of the
// implementation i: its CodeOf, NativeCode, NativeItem, NativeFlags,
// FlagsOf, StyleOf and NativeStyle work, and it has no symbols, so none of
// its calls may be used. It serves code that already runs inside libpam's
// process and learnt the implementation another way (the module SDK, which
// is called by libpam rather than loading it), so that PAM numbers keep
// living in this package's one table.
func Numbers(i Impl) *Lib {
	return &Lib{Impl: i, tab: tableFor(i)}
}

// FlagsOf translates a native flag word to Flag bits. Where two flags share
// one number (OpenPAM's PAM_ESTABLISH_CRED and PAM_DISALLOW_NULL_AUTHTOK,
// PAM_REINITIALIZE_CRED and PAM_CHANGE_EXPIRED_AUTHTOK), both bits are set:
// the operation the flags were passed to says which one is meant.
func (l *Lib) FlagsOf(native int32) Flag {
	var f Flag
	for i := range numFlags {
		n := l.tab.flags[i]
		if n != absent && n != 0 && int64(native)&n == n {
			f |= 1 << i
		}
	}
	return f
}

// NativeStyle returns the implementation's number for a message style, or
// false if the implementation does not have it.
func (l *Lib) NativeStyle(s Style) (int, bool) {
	if s <= StyleUnknown || s >= numStyles {
		return 0, false
	}
	n := l.tab.styles[s]
	return n, n != absent
}
