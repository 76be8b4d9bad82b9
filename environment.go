package pam

import (
	"errors"
	"fmt"
	"iter"
	"path"
	"strings"

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
		return &InputError{Op: op, Field: "env name " + fmt.Sprintf("%q", name), Err: ErrBadEnvName}
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

// All returns an iterator over a copy of the environment taken now, in
// libpam's order.
func (e *Env) All() (iter.Seq2[string, string], error) {
	list, err := e.List()
	if err != nil {
		return nil, err
	}
	return func(yield func(string, string) bool) {
		for _, kv := range list {
			k, v, _ := strings.Cut(kv, "=")
			if !yield(k, v) {
				return
			}
		}
	}, nil
}

// Len returns the number of variables.
func (e *Env) Len() (int, error) {
	list, err := e.List()
	return len(list), err
}

// sensitive reports whether name matches one of the handle's patterns.
func (s *state) isSensitive(name string) bool {
	for _, p := range s.sensitive {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// scrub removes the sensitive variables from the PAM environment. It runs on
// the transaction's thread right after the operation that may have set them.
// Where variables cannot be removed (OpenPAM) they are set empty.
func (s *state) scrub() {
	if len(s.sensitive) == 0 {
		return
	}
	list, ok := s.lib.Getenvlist(s.pamh)
	if !ok {
		return
	}
	canUnset := s.lib.Has(libpam.FeatureUnsetenv)
	for _, kv := range list {
		name, _, _ := strings.Cut(kv, "=")
		if !s.isSensitive(name) {
			continue
		}
		if canUnset {
			if c, err := libpam.CString(name); err == nil {
				s.lib.Unsetenv(s.pamh, c)
			}
		} else if c, err := libpam.CString(name + "="); err == nil {
			s.lib.Putenv(s.pamh, c)
		}
	}
}
