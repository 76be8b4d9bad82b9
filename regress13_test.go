package pam_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
)

// TestRegressAnswersKeepEmpty: a batch that Answers cannot answer whole takes
// none of its answers, empty ones included, so that a later batch gets them.
func TestRegressAnswersKeepEmpty(t *testing.T) {
	prompt := func(n int) []pam.Message {
		m := make([]pam.Message, n)
		for i := range m {
			m[i] = pam.Message{Style: pam.PromptEchoOff, Text: "Password:"}
		}
		return m
	}
	a := pam.Answers([]byte(""), []byte("pw"))
	if _, err := a.Converse(context.Background(), prompt(3)); !errors.Is(err, pam.ErrNoAnswer) {
		t.Fatalf("3 prompts for 2 answers: %v, want ErrNoAnswer", err)
	}
	if n := a.Left(); n != 2 {
		t.Fatalf("after the failed batch: %d answers left, want 2", n)
	}
	// The same through the real libpam: two prompts from one module each.
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	svc := st.Service("two", "auth required "+mod+" prompt=First:", "auth required "+mod+" prompt=Second: expect=pw")
	h := startCfg(t, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: a})
	if err := h.Authenticate(context.Background(), 0); err != nil {
		t.Fatalf("authenticate with the answers put back: %v", err)
	}
	if n := a.Left(); n != 0 {
		t.Errorf("%d answers left, want 0", n)
	}
}

// TestRegressXAuthEmptyNoLeak: setting PAM_XAUTHDATA with an empty name or
// data, again and again, leaves the C heap as it was (Linux-PAM never frees
// the zero-length copies it makes of them).
func TestRegressXAuthEmptyNoLeak(t *testing.T) {
	requireLinuxPAM(t)
	st := pamtest.New(t)
	svc := st.Service("x", "auth required pam_permit.so")
	h := start(t, st, svc, pam.Answers())
	full := pam.XAuthData{Name: "MIT-MAGIC-COOKIE-1", Data: []byte{1, 2, 3, 4}}
	const n = 20000
	for _, x := range []pam.XAuthData{{}, {Name: "MIT"}, {Data: []byte{1}}, full} {
		for range 100 {
			h.SetXAuthData(x)
		}
		c0 := cHeap(t)
		for range n {
			err := h.SetXAuthData(x)
			if x.Name == "" || len(x.Data) == 0 {
				if !errors.Is(err, pam.ErrEmptyXAuth) {
					t.Fatalf("SetXAuthData(%+v): %v, want ErrEmptyXAuth", x, err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
		}
		grew := int64(cHeap(t)) - int64(c0)
		t.Logf("%d x SetXAuthData(%+v): C heap %+d bytes", n, x, grew)
		if grew > 64<<10 {
			t.Errorf("%d x SetXAuthData(%+v): the C heap grew by %d bytes", n, x, grew)
		}
	}
}

// TestRegressScrubWholeNameAnyCase: the default patterns match the whole
// name ignoring case, '*' crossing '/'.
func TestRegressScrubWholeNameAnyCase(t *testing.T) {
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	svc := st.Service("names", "auth required "+mod+
		" setenv=KRB5/PASSWORD=hunter2 setenv=Password=y setenv=PASSWORD=x setenv=db/Passwd=z"+
		" setenv=pam_authtok=w setenv=LANG=C setenv=PASSAGE=kept")
	h := start(t, st, svc, pam.Answers())
	if err := h.Authenticate(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if got, want := envNames(t, h), []string{"LANG", "PASSAGE"}; !slices.Equal(got, want) {
		t.Errorf("after authenticate with the default patterns: %v, want %v", got, want)
	}
	for _, c := range []struct {
		name string
		want bool
	}{
		{"KRB5/PASSWORD", true}, {"Password", true}, {"x_password_y", true}, {"AUTHTOK", true},
		{"a/b/Pam_AuthTok/c", true}, {"ntlmpwd", true}, {"MOUNT_AUTHENTICATOR", true},
		{"LANG", false}, {"PASSAGE", false}, {"NTLMPWD2", false}, {"", false},
	} {
		if got := pam.MatchSensitive(nil, c.name); got != c.want {
			t.Errorf("MatchSensitive(nil, %q) = %v, want %v", c.name, got, c.want)
		}
	}
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"A?C", "abc", true}, {"A?C", "ac", false}, {"*", "", true}, {"a*b*c", "a/x/b/y/c", true},
		{"a*b*c", "a/x/b/y/cd", false}, {"*x", "xxxx", true}, {"x", "xx", false},
	} {
		if got := pam.MatchSensitive([]string{c.pattern}, c.name); got != c.want {
			t.Errorf("MatchSensitive(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
	// path.Match syntax is refused rather than matching nothing.
	for _, p := range []string{"[Pp]assword", `PASS\*`} {
		var ie *pam.InputError
		_, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers(), SensitiveEnv: []string{p}})
		if !errors.As(err, &ie) {
			t.Errorf("SensitiveEnv %q: %v, want an InputError", p, err)
		}
	}
}

// TestRegressScrubAfterSession: pam_env in the session stack that sets a
// password variable does not get it into the environment the program reads.
func TestRegressScrubAfterSession(t *testing.T) {
	st := pamtest.New(t)
	conf := st.File("env.conf", "X_PASSWORD DEFAULT=secret\nGOPAM_KEPT DEFAULT=yes\n")
	svc := st.Service("sess", "auth required pam_permit.so",
		"session required pam_env.so readenv=0 user_readenv=0 conffile="+conf)
	h := start(t, st, svc, pam.Answers())
	for _, op := range []struct {
		name string
		call func(context.Context, pam.Flags) error
	}{{"open_session", h.OpenSession}, {"close_session", h.CloseSession}} {
		if err := op.call(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		list, err := h.Env().List()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(list, "GOPAM_KEPT=yes") {
			t.Fatalf("after %s: %q, want GOPAM_KEPT=yes (did pam_env run?)", op.name, list)
		}
		for _, kv := range list {
			if strings.HasPrefix(kv, "X_PASSWORD=") {
				t.Errorf("after %s: %q is in Env().List()", op.name, kv)
			}
		}
	}
}
