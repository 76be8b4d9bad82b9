package esc

import (
	"strings"
	"testing"
)

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"alice":                   "alice",
		"PAM_USER":                "PAM_USER",
		"first.last@example.com":  "first.last@example.com",
		"":                        `""`,
		"two words":               `"two words"`,
		"eve\nroot logged in":     `"eve\nroot logged in"`,
		"\x1b[31mred":             `"\x1b[31mred"`,
		`quo"te`:                  `"quo\"te"`,
		"caf\xc3\xa9":             `"café"`,
		strings.Repeat("a", 64):   strings.Repeat("a", 64),
		strings.Repeat("a", 65):   `"` + strings.Repeat("a", 65) + `"`,
		strings.Repeat("b", 1000): `"` + strings.Repeat("b", Max) + `"...(744 more bytes)`,
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %s, want %s", in, got, want)
		}
	}
}
