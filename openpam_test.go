package pam_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
)

// requireOpenPAM skips a test of OpenPAM's own behaviour elsewhere; the
// OpenPAM pass of scripts/test-all runs it.
func requireOpenPAM(t *testing.T) {
	t.Helper()
	if impl := pam.Implementation(); impl != "OpenPAM" {
		t.Skipf("tests OpenPAM's behaviour; the loaded libpam is %s (scripts/test-all's OpenPAM pass runs it)", impl)
	}
}

// TestOpenPAMDifferences: on OpenPAM the features it lacks report
// ErrNotSupported, and the environment works with what it has.
func TestOpenPAMDifferences(t *testing.T) {
	requireOpenPAM(t)
	st := pamtest.New(t)
	svc := st.Service("diff", "auth required pam_permit.so", "session required pam_permit.so")
	h := start(t, st, svc, pam.Answers())
	env := h.Env()
	if err := env.Set("A", "1"); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := env.Get("A"); v != "1" || !ok || err != nil {
		t.Errorf("Get: %q %v %v", v, ok, err)
	}
	if l, err := env.List(); err != nil || len(l) != 1 || l[0] != "A=1" {
		t.Errorf("List: %q %v", l, err)
	}
	if err := env.Unset("A"); !errors.Is(err, pam.ErrNotSupported) {
		t.Errorf("Unset: %v, want ErrNotSupported", err)
	}
	if err := h.FailDelay(time.Second); !errors.Is(err, pam.ErrNotSupported) {
		t.Errorf("FailDelay: %v, want ErrNotSupported", err)
	}
	if err := h.SetXAuthData(pam.XAuthData{Name: "n"}); !errors.Is(err, pam.ErrNotSupported) {
		t.Errorf("SetXAuthData: %v, want ErrNotSupported", err)
	}
	if _, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: st.Dir(), Conv: pam.Answers(),
		Delay: func(context.Context, error, time.Duration) {}}); !errors.Is(err, pam.ErrNotSupported) {
		t.Errorf("Config.Delay: %v, want ErrNotSupported", err)
	}
	var ie *pam.InputError
	if err := h.SetItem(pam.ItemRepository, "files"); !errors.As(err, &ie) {
		t.Errorf("SetItem(ItemRepository): %v, want an InputError: it is a structure", err)
	}
	if err := h.SetItem(pam.ItemAuthTokPrompt, "Secret: "); err != nil {
		t.Errorf("SetItem(ItemAuthTokPrompt): %v", err)
	}
	if v, err := h.Item(pam.ItemAuthTokPrompt); v != "Secret: " || err != nil {
		t.Errorf("Item(ItemAuthTokPrompt) = %q %v", v, err)
	}
	if err := h.OpenSession(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
}

// TestOpenPAMConfDir: ConfDir reads ConfDir/<service>, falls back to
// ConfDir/other, never to the system's policies, and PAM_SERVICE holds the
// plain service name.
func TestOpenPAMConfDir(t *testing.T) {
	requireOpenPAM(t)
	st := pamtest.New(t)
	svc := st.Service("real", "auth required pam_deny.so")
	h := start(t, st, svc, pam.Answers())
	if got, err := h.Item(pam.ItemService); got != svc || err != nil {
		t.Errorf("PAM_SERVICE = %q %v, want %q", got, err, svc)
	}
	if err := h.Authenticate(context.Background(), 0); !errors.Is(err, pam.ErrAuth) {
		t.Errorf("authenticate: %v, want ErrAuth from pam_deny", err)
	}
	// pamtest completed the other facilities with pam_deny.
	if err := h.AcctMgmt(context.Background(), 0); err == nil {
		t.Error("acct_mgmt of a stack without account modules succeeded")
	}

	st.Service("other", "auth required pam_permit.so")
	h = start(t, st, "absent", pam.Answers())
	if err := h.Authenticate(context.Background(), 0); err != nil {
		t.Errorf("a service without a file, read from ConfDir/other: %v", err)
	}
	if got, _ := h.Item(pam.ItemService); got != "absent" {
		t.Errorf("PAM_SERVICE = %q, want absent", got)
	}

	// A policy that leaves facilities out: nothing is read from
	// /etc/pam.d/other (Debian's, in Linux-PAM syntax, would fail to
	// parse), and the facilities left out fail.
	dir := filepath.Join(filepath.Dir(st.Dir()), "raw")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	permit, err := pamtest.ModulePath("pam_permit.so")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authonly"), []byte("auth required "+permit+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h = startCfg(t, pam.Config{Service: "authonly", User: "alice", ConfDir: dir, Conv: pam.Answers()})
	if err := h.Authenticate(context.Background(), 0); err != nil {
		t.Errorf("authenticate: %v", err)
	}
	if err := h.AcctMgmt(context.Background(), 0); !errors.Is(err, pam.ErrSystem) {
		t.Errorf("acct_mgmt without account modules: %v, want ErrSystem", err)
	}

	var ie *pam.InputError
	_, err = pam.Start(pam.Config{Service: "real", User: "alice", ConfDir: st.Dir() + "/#x", Conv: pam.Answers()})
	if !errors.As(err, &ie) || ie.Field != "confdir" {
		t.Errorf("a ConfDir with a character OpenPAM refuses: %v, want an InputError for confdir", err)
	}
	_, err = pam.Start(pam.Config{Service: "a/b", User: "alice", ConfDir: st.Dir(), Conv: pam.Answers()})
	if !errors.As(err, &ie) || ie.Field != "confdir" {
		t.Errorf("a service with '/': %v, want an InputError for confdir", err)
	}
}

// TestOpenPAMFeaturesRestored: the process-wide features a ConfDir start
// switches off are on again for every start without ConfDir, even while
// ConfDir starts run on other goroutines: OpenPAM then refuses a service
// name that is a path.
func TestOpenPAMFeaturesRestored(t *testing.T) {
	requireOpenPAM(t)
	st := pamtest.New(t)
	svc := st.Service("permit", "auth required pam_permit.so")
	path := filepath.Join(st.Dir(), svc)
	var wg sync.WaitGroup
	errs := make([]error, 4) // one per goroutine: its first failure
	for g := range errs {
		wg.Go(func() {
			for i := 0; i < 25 && errs[g] == nil; i++ {
				errs[g] = startOnce(svc, path, st.Dir(), g%2 == 0)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
}

// startOnce starts and ends one transaction: with confdir, svc read from
// dir; without, the service named by the path, which OpenPAM must refuse.
func startOnce(svc, path, dir string, confdir bool) error {
	if confdir {
		h, err := pam.Start(pam.Config{Service: svc, User: "alice", ConfDir: dir, Conv: pam.Answers()})
		if err != nil {
			return err
		}
		return h.Close()
	}
	h, err := pam.Start(pam.Config{Service: path, User: "alice", Conv: pam.Answers()})
	if err == nil {
		h.Close()
		return errors.New("a service name that is a path was accepted without ConfDir")
	}
	if !errors.Is(err, pam.ErrSystem) {
		return err
	}
	return nil
}

// promptLine is an auth line whose module asks one echo-off prompt,
// "Password:", and takes any answer: the C test module, which builds and
// runs on Linux-PAM and OpenPAM alike (pam_stress ships with Linux-PAM only).
func promptLine(t *testing.T) string {
	return "auth required " + testmodule.Build(t) + " prompt=Password:"
}
