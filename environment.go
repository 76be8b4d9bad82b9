package pam

import (
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/gopam/pam/internal/esc"
	"github.com/gopam/pam/internal/libpam"
)

// Env is the PAM environment of a transaction: the variables modules set
// (pam_env, pam_systemd, Kerberos modules) for the session the application
// will start. Every method copies: values returned are the caller's, and an
// Env never touches libpam memory after the call that read it. Once the
// handle is closed every method returns ErrClosed.
type Env struct {
	h *Handle // keeps the Handle, and so the transaction, alive
	s *state
}

// Env returns the handle's PAM environment.
func (h *Handle) Env() *Env { return &Env{h: h, s: h.s} }

// ErrBadEnvName is the reason of an InputError for an environment variable
// name that is empty or holds '='.
var ErrBadEnvName = errors.New("is empty or contains '='")

// checkEnvName rejects a name PAM cannot hold: empty, with '=' or a NUL.
func checkEnvName(op, name string) error {
	if name == "" || strings.IndexByte(name, '=') >= 0 {
		return &InputError{Op: op, Field: "env name " + esc.Quote(name), Err: ErrBadEnvName}
	}
	if strings.IndexByte(name, 0) >= 0 {
		return &InputError{Op: op, Field: "env name", Err: ErrNUL}
	}
	return nil
}

// envName checks name and returns it as a C string.
func envName(op, name string) ([]byte, error) {
	if err := checkEnvName(op, name); err != nil {
		return nil, err
	}
	c, _ := libpam.CString(name) // checked: no NUL
	return c, nil
}

// Get returns the value of name and whether it is set.
func (e *Env) Get(name string) (value string, ok bool, err error) {
	c, err := envName("getenv", name)
	if err != nil {
		return "", false, err
	}
	err = e.s.do(func() { value, ok = e.s.lib.Getenv(e.s.pamh, c) })
	return value, ok, err
}

// Set sets name to value (an empty value sets the variable empty).
func (e *Env) Set(name, value string) error {
	if err := checkEnvName("putenv", name); err != nil {
		return err
	}
	if strings.IndexByte(value, 0) >= 0 {
		return &InputError{Op: "putenv", Field: "env value", Err: ErrNUL}
	}
	// Built in a byte slice, not a string, so that it can be wiped: values
	// may be secrets.
	c := make([]byte, len(name)+len(value)+2)
	n := copy(c, name)
	c[n] = '='
	copy(c[n+1:], value)
	s := e.s
	err := s.call("putenv "+name, func() int { return s.lib.Putenv(s.pamh, c) })
	libpam.Wipe(c)
	return err
}

// Unset removes name. Removing a variable that is not set is an error
// matching ErrBadItem. It returns an error matching ErrNotSupported where the
// implementation cannot remove variables (OpenPAM without pam_unsetenv).
func (e *Env) Unset(name string) error {
	c, err := envName("unsetenv", name)
	if err != nil {
		return err
	}
	s := e.s
	if !s.lib.Has(libpam.FeatureUnsetenv) {
		return notSupported("removing PAM environment variables on " + s.lib.Impl.String())
	}
	return s.call("unsetenv "+name, func() int { return s.lib.Unsetenv(s.pamh, c) })
}

// List returns the environment as "NAME=value" strings, the form exec.Cmd.Env
// takes.
func (e *Env) List() ([]string, error) {
	var list []string
	var ok bool
	s := e.s
	if err := s.do(func() { list, ok = s.lib.Getenvlist(s.pamh) }); err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("pam: getenvlist: %w", ErrBuf)
	}
	return list, nil
}

// Map returns a copy of the environment.
func (e *Env) Map() (map[string]string, error) {
	list, err := e.List()
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(list))
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m, nil
}

// All returns an iterator over the environment's names and values, for a
// range statement:
//
//	for name, value := range h.Env().All() { ... }
//
// Each loop reads a copy of the environment when it starts, in libpam's
// order. A loop over an environment that cannot be read (the handle is
// closed, or libpam is out of memory) yields nothing: call List or Map where
// that error matters.
func (e *Env) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		list, err := e.List()
		if err != nil {
			return
		}
		for _, kv := range list {
			k, v, _ := strings.Cut(kv, "=")
			if !yield(k, v) {
				return
			}
		}
	}
}

// Len returns the number of variables.
func (e *Env) Len() (int, error) {
	list, err := e.List()
	return len(list), err
}

// MatchSensitive reports whether the PAM environment variable name matches
// one of patterns by the rules of Config.SensitiveEnv (nil patterns means
// DefaultSensitiveEnv): the name is a secret that gopam scrubs.
func MatchSensitive(patterns []string, name string) bool {
	if patterns == nil {
		patterns = DefaultSensitiveEnv
	}
	return matchAny(patterns, name)
}

func matchAny[S ~string | ~[]byte](patterns []string, name S) bool {
	for _, p := range patterns {
		if globFold(p, name) {
			return true
		}
	}
	return false
}

// globFold matches the whole of name against pattern, ignoring ASCII case:
// '*' matches any run of bytes, '/' included, '?' any one byte, and every
// other byte itself.
func globFold[S ~string | ~[]byte](pattern string, name S) bool {
	p, n := 0, 0
	star, resume := -1, 0 // the last '*' seen, and where its match ends now
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, resume = p, n
			p++
		case p < len(pattern) && (pattern[p] == '?' || lower(pattern[p]) == lower(name[n])):
			p++
			n++
		case star >= 0:
			// Let the last '*' take one more byte and retry.
			resume++
			p, n = star+1, resume
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// checkSensitive refuses the patterns of Config.SensitiveEnv that used
// path.Match syntax gopam no longer reads, rather than let them match
// nothing.
func checkSensitive(patterns []string) error {
	for _, p := range patterns {
		if strings.ContainsAny(p, "[\\") {
			return &InputError{Op: "start", Field: "SensitiveEnv pattern " + esc.Quote(p),
				Err: errors.New("holds '[' or '\\': patterns know only '*' and '?'")}
		}
	}
	return nil
}

// scrub removes the sensitive variables from the PAM environment. It runs on
// the transaction's thread right after each operation, which may have set
// them. Names are matched in libpam's memory, and no value is copied into
// Go's. Where variables cannot be removed (OpenPAM) they are set empty.
func (s *state) scrub() {
	if len(s.sensitive) == 0 {
		return
	}
	s.lib.ScrubEnv(s.pamh, func(name []byte) bool { return matchAny(s.sensitive, name) }, !s.lib.Has(libpam.FeatureUnsetenv))
}
