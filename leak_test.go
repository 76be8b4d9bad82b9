package pam_test

import (
	"context"
	"testing"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
)

// TestNoLeaks runs 50,000 transactions over every operation, conversations
// (single messages, batches, binary prompts) and environment listings, and
// checks that neither the C heap nor the Go heap grew by 1 MiB.
func TestNoLeaks(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "modules pam_stress, pam_echo and pam_env and binary prompts")
	n := 50000
	if raceEnabled {
		n = 5000
	}
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	conf := st.File("env.conf", "GOPAM_A DEFAULT=1\nGOPAM_B DEFAULT=two\n")
	svc := st.Service("all",
		"auth required pam_stress.so",
		"auth required pam_echo.so hello %u",
		"auth required "+mod+" binary setenv=PAM_AUTHTOK=x",
		"account required pam_permit.so",
		"session required pam_env.so conffile="+conf,
		"password required pam_stress.so")
	conv := pam.ConversationFunc(func(_ context.Context, msgs []pam.Message) ([]pam.Response, error) {
		out := make([]pam.Response, len(msgs))
		for i, m := range msgs {
			switch {
			case m.Style == pam.BinaryPrompt:
				out[i] = pam.Response{PacketType: 2, Data: []byte("pong")}
			case m.Style.IsPrompt():
				out[i].Data = []byte("secret")
			}
		}
		return out, nil
	})
	ctx := context.Background()
	transaction := func() {
		h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: conv})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		for _, op := range []func(context.Context, pam.Flags) error{
			h.Authenticate, h.AcctMgmt, h.EstablishCredentials, h.OpenSession,
			h.ChangeAuthTok, h.CloseSession, h.DeleteCredentials,
		} {
			if err := op(ctx, 0); err != nil {
				t.Fatal(err)
			}
		}
		env := h.Env()
		if err := env.Set("EXTRA", "value"); err != nil {
			t.Fatal(err)
		}
		if l, err := env.Len(); err != nil || l != 3 {
			t.Fatalf("env: %d variables, %v", l, err)
		}
		if err := env.Unset("EXTRA"); err != nil {
			t.Fatal(err)
		}
	}
	measure := func() (c, goHeap uint64) {
		r := measureResources(t)
		return r.cheap, r.goHeap
	}
	for range 500 {
		transaction()
	}
	c0, g0 := measure()
	for range n {
		transaction()
	}
	c1, g1 := measure()
	dc, dg := int64(c1)-int64(c0), int64(g1)-int64(g0)
	t.Logf("%d transactions: C heap %+d bytes, Go heap %+d bytes", n, dc, dg)
	if dc >= 1<<20 {
		t.Errorf("the C heap grew by %d bytes", dc)
	}
	if dg >= 1<<20 {
		t.Errorf("the Go heap grew by %d bytes", dg)
	}
}
