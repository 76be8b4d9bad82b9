package esc

// Name returns s as it is when it is a plain name, short and made only of
// ASCII letters, digits and the bytes . _ - @ + (a user name such as
// "alice", a service such as "login", an item such as "PAM_USER"), so that
// common error texts stay easy to read; any other string is returned as
// Quote returns it, within double quotes. A plain name cannot hold a quote
// mark, a space or a control byte, so the reader of an error text always
// tells a plain name from a quoted one, and neither can forge a line or a
// field of the text.
func Name(s string) string {
	if s == "" || len(s) > 64 {
		return Quote(s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '_' || c == '-' || c == '@' || c == '+':
		default:
			return Quote(s)
		}
	}
	return s
}
