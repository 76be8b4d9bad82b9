package pam_test

import (
	"context"
	"testing"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
)

// BenchmarkConversation is one Authenticate whose module makes one
// conversation call with one prompt, on one open handle, so that the cost of
// a conversation call shows: with a Conversation of the program's own (run
// where a runtime.Goexit in it cannot reach libpam's C frames) and with
// Answers (the library's own), from Run's thread and from a caller of a
// ThreadPerHandle handle.
func BenchmarkConversation(b *testing.B) {
	st := pamtest.New(b)
	mod := testmodule.Build(b)
	svc := st.Service("conv1", "auth required "+mod+" prompt=Password:")
	user := pam.ConversationFunc(func(_ context.Context, msgs []pam.Message) ([]pam.Response, error) {
		out := make([]pam.Response, len(msgs))
		for i := range out {
			out[i].Data = []byte("pw")
		}
		return out, nil
	})
	for _, c := range []struct {
		name string
		conv func(n int) pam.Conversation
	}{
		{"func", func(int) pam.Conversation { return user }},
		{"answers", func(n int) pam.Conversation {
			a := make([][]byte, n)
			for i := range a {
				a[i] = []byte("pw")
			}
			return pam.Answers(a...)
		}},
	} {
		b.Run(c.name+"/run", func(b *testing.B) {
			cfg := pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: c.conv(b.N + 1)}
			err := pam.Run(context.Background(), cfg, func(ctx context.Context, h *pam.Handle) error {
				for range b.N {
					if err := h.Authenticate(ctx, 0); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
		b.Run(c.name+"/per-handle", func(b *testing.B) {
			cfg := pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: c.conv(b.N + 1), Threads: pam.ThreadPerHandle}
			h, err := pam.Start(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			for range b.N {
				if err := h.Authenticate(context.Background(), 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
