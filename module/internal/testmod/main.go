// Command testmod is the module SDK's test module: a PAM module written in
// Go that makes every call of the module-side API, chosen by its arguments,
// and appends what it saw to the file named by out=, one line per event,
// so that the tests of package module can check it from any host.
//
// Arguments: out=FILE (required), user=NAME (the only user it knows, else
// PAM_USER_UNKNOWN), pass=PW (the password authenticate wants), conv (a
// batch of three messages in authenticate), binary (a binary prompt,
// Linux-PAM), panic=OP (panic in that operation), error=OP (return a plain
// Go error there), die=OP (exit the process there: isolated mode only), expired (acct_mgmt says PAM_ACCT_EXPIRED), permit
// (authenticate succeeds at once, doing what pam_permit does).
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/module"
)

type testmod struct{}

// authOnly implements authenticate alone; the environment variable
// GOPAM_TESTMOD_AUTH_ONLY=1 of the process that loads the in-process
// library registers it instead of testmod, to test the functions a module
// does not implement.
type authOnly struct{}

func (authOnly) Authenticate(*module.Handle) error { return nil }

func init() {
	if os.Getenv("GOPAM_TESTMOD_AUTH_ONLY") == "1" {
		module.Register(authOnly{})
		return
	}
	module.Register(testmod{})
}

func main() { module.Main() }

// note appends one line to the out= file.
func note(h *module.Handle, format string, a ...any) {
	out, ok := h.Arg("out")
	if !ok {
		return
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, format+"\n", a...)
}

// begin notes the call and applies panic= and error=.
func begin(h *module.Handle) error {
	note(h, "%s pid=%d flags=%d", h.Op(), os.Getpid(), h.Flags())
	h.Syslog(module.LogDebug, "gopam test module: %s", h.Op())
	if v, _ := h.Arg("panic"); v == h.Op().String() {
		panic("test module panics in " + v)
	}
	if v, _ := h.Arg("die"); v == h.Op().String() {
		os.Exit(3) // only ever used with the isolated mode: it ends the helper mid-call
	}
	if v, _ := h.Arg("error"); v == h.Op().String() {
		return errors.New("a plain Go error")
	}
	return nil
}

func (testmod) Authenticate(h *module.Handle) error {
	if h.HasArg("permit") {
		return nil
	}
	if err := begin(h); err != nil {
		return err
	}
	user, err := h.User("Who: ")
	if err != nil {
		return err
	}
	if want, ok := h.Arg("user"); ok && user != want {
		note(h, "unknown user %q", user)
		return pam.ErrUserUnknown
	}
	svc, err := h.Item(pam.ItemService)
	if err != nil {
		return err
	}
	rhost, _ := h.Item(pam.ItemRHost)
	note(h, "items user=%s service=%s rhost=%s", user, svc, rhost)
	if h.HasArg("conv") {
		r, err := h.Converse(
			pam.Message{Style: pam.TextInfo, Text: "hello from Go"},
			pam.Message{Style: pam.PromptEchoOn, Text: "Code: "},
			pam.Message{Style: pam.PromptEchoOff, Text: "Secret: "},
		)
		if err != nil {
			return err
		}
		note(h, "conv code=%s secret=%d", r[1].Data, len(r[2].Data))
		clear(r[2].Data)
	}
	if h.HasArg("binary") {
		r, err := h.Converse(pam.Message{Style: pam.BinaryPrompt, PacketType: 1, Data: []byte("ping")})
		if err != nil {
			return err
		}
		note(h, "binary type=%d data=%s", r[0].PacketType, r[0].Data)
	}
	tok, err := h.AuthTok("Password: ")
	if err != nil {
		return err
	}
	defer clear(tok)
	// Items, environment and data, all checked here and reported.
	if err := h.Setenv("GOTEST_SERVICE", svc); err != nil {
		return err
	}
	if err := h.Setenv("GOTEST_TMP", "x"); err != nil {
		return err
	}
	if err := h.Unsetenv("GOTEST_TMP"); err != nil {
		return err
	}
	v, ok := h.Getenv("GOTEST_SERVICE")
	env, err := h.Environ()
	if err != nil {
		return err
	}
	_, tmp := h.Getenv("GOTEST_TMP")
	note(h, "env get=%v,%s tmp=%v list=%v", ok, v, tmp, slices.Contains(env, "GOTEST_SERVICE="+svc))
	if err := h.SetItem(pam.ItemRUser, "gotest-ruser"); err != nil {
		return err
	}
	ruser, _ := h.Item(pam.ItemRUser)
	note(h, "setitem ruser=%s", ruser)
	cleanup := func(v any, e module.DataEnd) {
		note(h, "cleanup %v replaced=%v silent=%v status=%d pid=%d", v, e.Replaced, e.Silent, int(e.Status), os.Getpid())
	}
	for _, d := range []string{"a", "b", "b2"} {
		name := strings.TrimSuffix(d, "2")
		if err := h.SetData("gotest."+name, d, cleanup); err != nil {
			return err
		}
	}
	if _, err := h.Data("gotest.none"); !errors.Is(err, pam.ErrNoModuleData) {
		return fmt.Errorf("Data of a missing name: %v", err)
	}
	if want, _ := h.Arg("pass"); !bytes.Equal(tok, []byte(want)) {
		note(h, "wrong password")
		if err := h.FailDelay(time.Millisecond); err != nil {
			return err
		}
		h.Error("gotest: wrong password")
		return pam.ErrAuth
	}
	h.Info("gotest: welcome %s", user)
	return nil
}

func (testmod) SetCred(h *module.Handle) error {
	if err := begin(h); err != nil {
		return err
	}
	a, err := h.Data("gotest.a")
	b, _ := h.Data("gotest.b")
	note(h, "data a=%v b=%v err=%v", a, b, err)
	return nil
}

func (testmod) AcctMgmt(h *module.Handle) error {
	if err := begin(h); err != nil {
		return err
	}
	if h.HasArg("expired") {
		return pam.ErrAcctExpired
	}
	return nil
}

func (testmod) OpenSession(h *module.Handle) error {
	if err := begin(h); err != nil {
		return err
	}
	return h.Setenv("GOTEST_SESSION", "open")
}

func (testmod) CloseSession(h *module.Handle) error {
	if err := begin(h); err != nil {
		return err
	}
	v, _ := h.Getenv("GOTEST_SESSION")
	note(h, "close session=%s", v)
	return h.Setenv("GOTEST_SESSION", "closed")
}

func (testmod) ChangeAuthTok(h *module.Handle) error {
	if err := begin(h); err != nil {
		return err
	}
	if h.Flags()&module.PrelimCheck != 0 {
		return nil
	}
	r, err := h.Converse(
		pam.Message{Style: pam.PromptEchoOff, Text: "Old: "},
		pam.Message{Style: pam.PromptEchoOff, Text: "New: "},
		pam.Message{Style: pam.PromptEchoOff, Text: "Again: "},
	)
	if err != nil {
		return err
	}
	defer func() {
		for _, x := range r {
			clear(x.Data)
		}
	}()
	if !bytes.Equal(r[1].Data, r[2].Data) {
		return pam.ErrAuthTok
	}
	note(h, "chauthtok old=%s new=%s", r[0].Data, r[1].Data)
	return h.SetAuthTok(r[1].Data)
}
