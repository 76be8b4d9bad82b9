package pam_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"strings"
	"testing"

	"github.com/gopam/pam"
	"github.com/gopam/pam/pamtest"
)

func TestEnvFromPamEnvAfterOpenSession(t *testing.T) {
	pamtest.LinuxPAMOnly(t, "module pam_env")
	st := pamtest.New(t)
	conf := st.File("env.conf", "GOPAM_GREETING DEFAULT=hello\nGOPAM_GONE DEFAULT=\n")
	envf := st.File("environment", "GOPAM_FROM_ENVFILE=yes\n")
	svc := st.Service("env",
		"auth required pam_permit.so",
		"session required pam_env.so conffile="+conf+" envfile="+envf)
	h := startCfg(t, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()})
	env := h.Env()
	if n, err := env.Len(); err != nil || n != 0 {
		t.Fatalf("before the session: Len = %d, %v; want 0", n, err)
	}
	if err := h.OpenSession(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	m, err := env.Map()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"GOPAM_GREETING": "hello", "GOPAM_FROM_ENVFILE": "yes"}
	if !maps.Equal(m, want) {
		t.Errorf("after open_session: %v, want %v", m, want)
	}
	if v, ok, err := env.Get("GOPAM_GREETING"); v != "hello" || !ok || err != nil {
		t.Errorf("Get = %q %v %v", v, ok, err)
	}
	if err := h.CloseSession(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
}

func TestEnvSetGetUnsetIterate(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("env", "auth required pam_permit.so")
	h := startCfg(t, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()})
	env := h.Env()
	set := map[string]string{"A": "1", "EMPTY": "", "SPACES": "a b = c", "UTF8": "héllo"}
	for k, v := range set {
		if err := env.Set(k, v); err != nil {
			t.Fatalf("Set(%q): %v", k, err)
		}
	}
	if err := env.Set("A", "2"); err != nil {
		t.Fatal(err)
	}
	set["A"] = "2"
	got := map[string]string{}
	for k, v := range env.All() {
		got[k] = v
	}
	if !maps.Equal(got, set) {
		t.Errorf("All: %v, want %v", got, set)
	}
	if v, ok, err := env.Get("EMPTY"); v != "" || !ok || err != nil {
		t.Errorf("Get(EMPTY) = %q %v %v, want set and empty", v, ok, err)
	}
	if _, ok, err := env.Get("MISSING"); ok || err != nil {
		t.Errorf("Get(MISSING) = %v %v, want unset", ok, err)
	}
	wantLen := 3
	if !pam.HasExtension(pam.ExtUnsetenv) { // OpenPAM
		if err := env.Unset("A"); !errors.Is(err, pam.ErrNotSupported) {
			t.Errorf("Unset without the unsetenv extension: got %v, want ErrNotSupported", err)
		}
		wantLen = 4
	} else {
		if err := env.Unset("A"); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := env.Get("A"); ok {
			t.Error("A still set after Unset")
		}
		if err := env.Unset("A"); !errors.Is(err, pam.ErrBadItem) {
			t.Errorf("unsetting an absent name: got %v, want ErrBadItem", err)
		}
	}
	list, err := env.List()
	if err != nil || len(list) != wantLen || !strings.Contains(strings.Join(list, "\n"), "SPACES=a b = c") {
		t.Errorf("List = %q, %v", list, err)
	}

	for _, bad := range []string{"", "=x", "A=B", "NUL\x00"} {
		var ie *pam.InputError
		if err := env.Set(bad, "v"); !errors.As(err, &ie) {
			t.Errorf("Set(%q): got %v, want an InputError", bad, err)
		}
		if _, _, err := env.Get(bad); !errors.As(err, &ie) {
			t.Errorf("Get(%q): got %v, want an InputError", bad, err)
		}
		if err := env.Unset(bad); !errors.As(err, &ie) {
			t.Errorf("Unset(%q): got %v, want an InputError", bad, err)
		}
	}
	if err := env.Set("V", "nul\x00inside"); !errors.Is(err, pam.ErrNUL) {
		t.Errorf("NUL in a value: got %v, want ErrNUL", err)
	}
}

// TestEveryUseAfterClose calls every method of a closed handle and of an Env
// taken before Close.
func TestEveryUseAfterClose(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("closed", "auth required pam_permit.so")
	h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()})
	if err != nil {
		t.Fatal(err)
	}
	env := h.Env()
	if err := env.Set("KEPT", "1"); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	ctx := context.Background()
	calls := map[string]func() error{
		"Authenticate":            func() error { return h.Authenticate(ctx, 0) },
		"AcctMgmt":                func() error { return h.AcctMgmt(ctx, 0) },
		"Login":                   func() error { return h.Login(ctx, 0) },
		"EstablishCredentials":    func() error { return h.EstablishCredentials(ctx, 0) },
		"DeleteCredentials":       func() error { return h.DeleteCredentials(ctx, 0) },
		"ReinitializeCredentials": func() error { return h.ReinitializeCredentials(ctx, 0) },
		"RefreshCredentials":      func() error { return h.RefreshCredentials(ctx, 0) },
		"OpenSession":             func() error { return h.OpenSession(ctx, 0) },
		"CloseSession":            func() error { return h.CloseSession(ctx, 0) },
		"ChangeAuthTok":           func() error { return h.ChangeAuthTok(ctx, 0) },
		"Item":                    func() error { _, err := h.Item(pam.ItemUser); return err },
		"SetItem":                 func() error { return h.SetItem(pam.ItemTTY, "tty1") },
		"SetAuthTok":              func() error { return h.SetAuthTok([]byte("x")) },
		"SetOldAuthTok":           func() error { return h.SetOldAuthTok([]byte("x")) },
		"XAuthData":               func() error { _, err := h.XAuthData(); return err },
		"SetXAuthData":            func() error { return h.SetXAuthData(pam.XAuthData{Name: "n", Data: []byte{1}}) },
		"SetConversation":         func() error { return h.SetConversation(pam.Answers()) },
		"FailDelay":               func() error { return h.FailDelay(0) },
		"SetElevated":             func() error { return h.SetElevated(false) },
		"Env.Get":                 func() error { _, _, err := env.Get("KEPT"); return err },
		"Env.Set":                 func() error { return env.Set("A", "1") },
		"Env.Unset":               func() error { return env.Unset("KEPT") },
		"Env.Len":                 func() error { _, err := env.Len(); return err },
		"Env.Map":                 func() error { _, err := env.Map(); return err },
		"Env.List":                func() error { _, err := env.List(); return err },
		"new Env.Get":             func() error { _, _, err := h.Env().Get("KEPT"); return err },
	}
	// Calls of an extension the implementation lacks say so first.
	needs := map[string]string{"XAuthData": pam.ExtXAuthData, "SetXAuthData": pam.ExtXAuthData,
		"FailDelay": pam.ExtFailDelay, "Env.Unset": pam.ExtUnsetenv}
	for name, call := range calls {
		want := pam.ErrClosed
		if e, ok := needs[name]; ok && !pam.HasExtension(e) {
			want = pam.ErrNotSupported
		}
		if err := call(); !errors.Is(err, want) {
			t.Errorf("%s after Close: got %v, want %v", name, err, want)
		}
	}
}

func TestSetElevatedPermission(t *testing.T) {
	st := pamtest.New(t)
	svc := st.Service("elev", "auth required pam_permit.so")
	h := startCfg(t, pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()})
	if h.Elevated() {
		t.Fatal("a new handle is elevated")
	}
	err := h.SetElevated(true)
	if os.Geteuid() == 0 {
		if err != nil || !h.Elevated() {
			t.Fatalf("as root: SetElevated(true) = %v, Elevated() = %v", err, h.Elevated())
		}
	} else {
		if !errors.Is(err, os.ErrPermission) {
			t.Fatalf("as uid %d: SetElevated(true) = %v, want os.ErrPermission", os.Geteuid(), err)
		}
		if h.Elevated() {
			t.Fatal("elevated despite the error")
		}
	}
	if err := h.SetElevated(false); err != nil || h.Elevated() {
		t.Fatalf("SetElevated(false) = %v, Elevated() = %v", err, h.Elevated())
	}
}

func TestXAuthData(t *testing.T) {
	requireLinuxPAM(t)
	st := pamtest.New(t)
	svc := st.Service("x", "auth required pam_permit.so")
	h := start(t, st, svc, pam.Answers())
	if x, err := h.XAuthData(); err != nil || x.Name != "" || len(x.Data) != 0 {
		t.Fatalf("unset: %+v, %v", x, err)
	}
	want := pam.XAuthData{Name: "MIT-MAGIC-COOKIE-1", Data: []byte{0, 1, 2, 0xff}}
	if err := h.SetXAuthData(want); err != nil {
		t.Fatal(err)
	}
	if x, err := h.XAuthData(); err != nil || x.Name != want.Name || string(x.Data) != string(want.Data) {
		t.Fatalf("got %+v, %v; want %+v", x, err, want)
	}
	// Empty values are refused (see TestRegressXAuthEmptyNoLeak) and leave
	// the item as it was.
	for _, x := range []pam.XAuthData{{Name: "EMPTY"}, {Data: []byte{1}}, {}} {
		var ie *pam.InputError
		if err := h.SetXAuthData(x); !errors.Is(err, pam.ErrEmptyXAuth) || !errors.As(err, &ie) {
			t.Errorf("SetXAuthData(%+v): %v, want an InputError wrapping ErrEmptyXAuth", x, err)
		}
	}
	if x, err := h.XAuthData(); err != nil || x.Name != want.Name || string(x.Data) != string(want.Data) {
		t.Fatalf("after refused empty values: %+v, %v; want %+v", x, err, want)
	}
	for it, v := range map[pam.Item]string{pam.ItemTTY: "tty7", pam.ItemRHost: "host.example", pam.ItemRUser: "bob",
		pam.ItemUserPrompt: "Who: ", pam.ItemXDisplay: ":0", pam.ItemAuthTokType: "UNIX", pam.ItemUser: "carol"} {
		if err := h.SetItem(it, v); err != nil {
			t.Fatalf("SetItem(%v): %v", it, err)
		}
		if got, err := h.Item(it); err != nil || got != v {
			t.Errorf("Item(%v) = %q, %v; want %q", it, got, err, v)
		}
	}
	if got, _ := h.Item(pam.ItemService); got != svc {
		t.Errorf("service item %q, want %q", got, svc)
	}
	if _, err := h.Item(pam.ItemRepository); !errors.Is(err, pam.ErrNotSupported) {
		t.Errorf("an OpenPAM item on Linux-PAM: %v, want ErrNotSupported", err)
	}
	// Linux-PAM lets only modules set the tokens.
	if err := h.SetAuthTok([]byte("secret")); !errors.Is(err, pam.ErrBadItem) {
		t.Errorf("SetAuthTok from an application: %v, want ErrBadItem", err)
	}
	if err := h.SetOldAuthTok([]byte("secret")); !errors.Is(err, pam.ErrBadItem) {
		t.Errorf("SetOldAuthTok from an application: %v, want ErrBadItem", err)
	}
}
