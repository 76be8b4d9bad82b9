package pam_test

import (
	"context"
	"testing"

	"github.com/gopam/pam"
	"github.com/gopam/pam/pamtest"
)

// BenchmarkPermit is one Start + Authenticate + Close on a pam_permit stack,
// under each thread policy and with Run; the bench module compares it with C
// and msteinert.
func BenchmarkPermit(b *testing.B) {
	st := pamtest.New(b)
	svc := st.Service("permit", "auth required pam_permit.so")
	conv := pam.Answers()
	for _, p := range []struct {
		name   string
		policy pam.ThreadPolicy
	}{{"default", pam.ThreadCaller}, {"strict", pam.ThreadPerHandle}} {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			cfg := pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: conv, Threads: p.policy}
			for b.Loop() {
				h, err := pam.Start(cfg)
				if err != nil {
					b.Fatal(err)
				}
				if err := h.Authenticate(context.Background(), 0); err != nil {
					b.Fatal(err)
				}
				if err := h.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("run", func(b *testing.B) {
		b.ReportAllocs()
		cfg := pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: conv}
		auth := func(ctx context.Context, h *pam.Handle) error { return h.Authenticate(ctx, 0) }
		for b.Loop() {
			if err := pam.Run(context.Background(), cfg, auth); err != nil {
				b.Fatal(err)
			}
		}
	})
}
