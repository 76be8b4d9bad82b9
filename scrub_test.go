package pam_test

import (
	"context"
	"maps"
	"os"
	"slices"
	"testing"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
)

// secretStack's modules leave secrets in the PAM environment during
// authenticate and chauthtok, as some OpenPAM modules do with the password.
func secretStack(t *testing.T) (*pamtest.Stack, string) {
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	set := mod + " setenv=PAM_AUTHTOK=hunter2 setenv=LDAP_PASSWORD=s3cret setenv=NTLMPWD=x setenv=LANG=C"
	return st, st.Service("secrets", "auth required "+set, "password required "+set)
}

// envNames lists the PAM environment's variables. Where variables cannot be
// removed (OpenPAM), a scrubbed variable stays with its value wiped to "",
// and envNames leaves it out.
func envNames(t *testing.T, h *pam.Handle) []string {
	t.Helper()
	m, err := h.Env().Map()
	if err != nil {
		t.Fatal(err)
	}
	if !pam.HasExtension(pam.ExtUnsetenv) {
		maps.DeleteFunc(m, func(_, v string) bool { return v == "" })
	}
	return slices.Sorted(maps.Keys(m))
}

func TestScrubbedByDefault(t *testing.T) {
	st, svc := secretStack(t)
	h := start(t, st, svc, pam.Answers())
	if err := h.Authenticate(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if got := envNames(t, h); !slices.Equal(got, []string{"LANG"}) {
		t.Errorf("after authenticate: %v, want only LANG", got)
	}
	// pam_setcred runs the auth modules again, which set the secrets again.
	if err := h.EstablishCredentials(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if got := envNames(t, h); !slices.Equal(got, []string{"LANG"}) {
		t.Errorf("after establish credentials: %v, want only LANG", got)
	}
	if err := h.ChangeAuthTok(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if got := envNames(t, h); !slices.Equal(got, []string{"LANG"}) {
		t.Errorf("after chauthtok: %v, want only LANG", got)
	}
}

func TestScrubPatternsConfigurable(t *testing.T) {
	st, svc := secretStack(t)
	for _, c := range []struct {
		patterns []string
		want     []string
	}{
		{[]string{"LANG", "NTLM*"}, []string{"LDAP_PASSWORD", "PAM_AUTHTOK"}},
		{[]string{}, []string{"LANG", "LDAP_PASSWORD", "NTLMPWD", "PAM_AUTHTOK"}},
	} {
		h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers(), SensitiveEnv: c.patterns})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Authenticate(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		if got := envNames(t, h); !slices.Equal(got, c.want) {
			t.Errorf("patterns %q: %v left, want %v", c.patterns, got, c.want)
		}
		h.Close()
	}
}

func TestElevatedKeepsSecrets(t *testing.T) {
	st, svc := secretStack(t)
	h := start(t, st, svc, pam.Answers())
	if os.Geteuid() != 0 {
		// Elevation is refused (TestSetElevatedPermission), so scrubbing
		// stays on.
		if err := h.SetElevated(true); err == nil {
			t.Fatal("a non-root process was elevated")
		}
		if err := h.Authenticate(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		if got := envNames(t, h); !slices.Equal(got, []string{"LANG"}) {
			t.Errorf("not elevated: %v, want only LANG", got)
		}
		return
	}
	if err := h.SetElevated(true); err != nil {
		t.Fatal(err)
	}
	if err := h.Authenticate(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	want := []string{"LANG", "LDAP_PASSWORD", "NTLMPWD", "PAM_AUTHTOK"}
	if got := envNames(t, h); !slices.Equal(got, want) {
		t.Errorf("elevated: %v, want %v", got, want)
	}
	if v, _, _ := h.Env().Get("PAM_AUTHTOK"); v != "hunter2" {
		t.Errorf("elevated: PAM_AUTHTOK = %q", v)
	}
}
