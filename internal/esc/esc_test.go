package esc

import (
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice", `"alice"`},
		{"", `""`},
		{"eve\nroot logged in", `"eve\nroot logged in"`},
		{"\x1b[31mred", `"\x1b[31mred"`},
		{"\xff", `"\xff"`},
	} {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	long := strings.Repeat("é", 1<<20) // 2 MiB, two bytes a rune
	got := Quote(long)
	if !strings.HasPrefix(got, `"éé`) || !strings.HasSuffix(got, " more bytes)") {
		t.Fatalf("Quote of 2 MiB = %.40s...%s", got, got[len(got)-20:])
	}
	if len(got) > 4*Max+30 || strings.ContainsAny(got, "\n\r") {
		t.Fatalf("Quote of 2 MiB is %d bytes or has a newline", len(got))
	}
	if want := `"` + strings.Repeat("é", Max/2) + `"...(`; !strings.HasPrefix(got, want) {
		t.Fatalf("cut not at a rune boundary: %.300s", got)
	}
}
