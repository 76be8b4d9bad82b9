// Package esc makes untrusted text safe to put in an error message or a log
// line: user names, service names, prompts, module messages and environment
// names come from users or modules, never from the program.
package esc

import (
	"strconv"
	"unicode/utf8"
)

// Max is the number of bytes of an untrusted string that Quote keeps.
const Max = 256

// Quote returns s as a Go double-quoted string literal (control bytes,
// newlines, escape sequences and invalid UTF-8 escaped, as %q does), cut to
// its first Max bytes at a rune boundary. A cut string is followed by
// "...(N more bytes)", outside the quotes, so a reader sees that it was cut
// and by how much. The result is one line and at most about 4*Max+30 bytes.
func Quote(s string) string {
	if len(s) <= Max {
		return strconv.Quote(s)
	}
	cut := Max
	for cut > Max-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "...(" + strconv.Itoa(len(s)-cut) + " more bytes)"
}
