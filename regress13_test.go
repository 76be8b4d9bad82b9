package pam_test

import (
	"context"
	"errors"
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
