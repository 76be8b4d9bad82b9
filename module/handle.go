package module

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/libpam"
)

// backend is how a Handle reaches libpam: directly through cgo when the
// module runs in the host's process, or over the helper's socket, where the
// C side makes the same calls for it. Items, codes and styles are the
// running implementation's numbers; byte slices nil mean C's NULL.
type backend interface {
	getItem(item int) (v []byte, rc int)
	setItem(item int, v []byte) int
	getenv(name string) (v string, ok bool)
	putenv(nameValue string) int
	envlist() ([]string, int)
	converse(styles []int, texts [][]byte) ([][]byte, int)
	getUser(prompt []byte) (string, int)
	getAuthtok(item int, prompt []byte) ([]byte, int)
	syslog(prio int, msg string)
	failDelay(usec uint32) int
	setData(name string, d *datum) int
	getData(name string) (*datum, int)
}

// datum is one value set with SetData.
type datum struct {
	value   any
	cleanup func(any, DataEnd)
}

// DataEnd tells a module data cleanup why it runs.
type DataEnd struct {
	// Status is the status the application passed to pam_end (pam.Success
	// or the error of the transaction), or pam.Success for a replacement.
	Status pam.Code
	// Replaced is true when SetData replaced the value under the same name.
	Replaced bool
	// Silent is PAM_DATA_SILENT: the transaction ends in a forked child
	// of the process that owns it, so shared resources must be left alone.
	Silent bool
}

// run calls the cleanup, containing a panic (logged through b when it can).
func (d *datum) run(b backend, e DataEnd) {
	if d == nil || d.cleanup == nil {
		return
	}
	defer func() {
		if v := recover(); v != nil && b != nil {
			b.syslog(int(LogErr), fmt.Sprintf("pam module: data cleanup panicked: %v", v))
		}
	}()
	d.cleanup(d.value, e)
}

// Handle is the module's view of the PAM transaction during one call of a
// service function. It is valid only until that function returns, and only
// on its goroutine; the same methods work in both modes.
type Handle struct {
	b     backend
	nums  *libpam.Lib
	op    Op
	flags Flags
	args  []string
}

// Op returns the service function being called.
func (h *Handle) Op() Op { return h.op }

// Flags returns the flags libpam passed.
func (h *Handle) Flags() Flags { return h.flags }

// Silent reports whether the application asked for no informational
// messages (PAM_SILENT).
func (h *Handle) Silent() bool { return h.flags&Silent != 0 }

// ownArg reports whether an argument is meant for gopam's C side rather
// than for the module.
func ownArg(a string) bool {
	return strings.HasPrefix(a, "helper=") || strings.HasPrefix(a, "gopam_timeout=")
}

// Args returns the module's arguments from the service file line, in order,
// without the helper= and gopam_timeout= arguments, which gopam reads.
func (h *Handle) Args() []string {
	out := make([]string, 0, len(h.args))
	for _, a := range h.args {
		if !ownArg(a) {
			out = append(out, a)
		}
	}
	return out
}

// Arg looks up an argument by name: "name=value" gives value, a bare
// "name" gives "". The last occurrence wins. ok is false when absent.
func (h *Handle) Arg(name string) (value string, ok bool) {
	for _, a := range h.Args() {
		if a == name {
			value, ok = "", true
		} else if v, found := strings.CutPrefix(a, name+"="); found {
			value, ok = v, true
		}
	}
	return value, ok
}

// HasArg reports whether the bare argument name (or name=...) is present.
func (h *Handle) HasArg(name string) bool {
	_, ok := h.Arg(name)
	return ok
}

// fail turns a native failure into an error naming the call; it matches
// the pam.Code with errors.Is, and returning it from a service function
// returns that code.
func (h *Handle) fail(call string, rc int) error {
	return fmt.Errorf("pam module: %s: %w", call, pam.Code(h.nums.CodeOf(rc)))
}

func (h *Handle) ok(rc int) bool {
	n, _ := h.nums.NativeCode(libpam.CodeSuccess)
	return rc == n
}

// cstr checks that s can travel as a C string.
func cstr(what, s string) ([]byte, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, &pam.InputError{Op: "module", Field: what, Err: pam.ErrNUL}
	}
	return []byte(s), nil
}

// promptArg returns nil (C's NULL: libpam's default prompt) for "".
func promptArg(prompt string) ([]byte, error) {
	if prompt == "" {
		return nil, nil
	}
	return cstr("prompt", prompt)
}

// User returns the user name (pam_get_user): the PAM_USER item, or, when it
// is not set, the answer to a prompt through the conversation. prompt ""
// uses the PAM_USER_PROMPT item or libpam's default.
func (h *Handle) User(prompt string) (string, error) {
	p, err := promptArg(prompt)
	if err != nil {
		return "", err
	}
	u, rc := h.b.getUser(p)
	if !h.ok(rc) {
		return "", h.fail("pam_get_user", rc)
	}
	return u, nil
}

// AuthTok returns the authentication token (pam_get_authtok for
// PAM_AUTHTOK): the item when an earlier module set it, or the answer to a
// prompt, which libpam then stores as the item. libpam honours the
// arguments use_first_pass, try_first_pass and use_authtok of the module's
// line. prompt "" uses libpam's default prompt. The slice is the caller's;
// wipe it (clear) when done.
func (h *Handle) AuthTok(prompt string) ([]byte, error) {
	return h.authtok(libpam.ItemAuthTok, "pam_get_authtok", prompt)
}

// OldAuthTok is AuthTok for the old token (PAM_OLDAUTHTOK), in chauthtok.
func (h *Handle) OldAuthTok(prompt string) ([]byte, error) {
	return h.authtok(libpam.ItemOldAuthTok, "pam_get_authtok(PAM_OLDAUTHTOK)", prompt)
}

func (h *Handle) authtok(it libpam.Item, call, prompt string) ([]byte, error) {
	p, err := promptArg(prompt)
	if err != nil {
		return nil, err
	}
	item, _ := h.nums.NativeItem(it)
	tok, rc := h.b.getAuthtok(item, p)
	if !h.ok(rc) {
		return nil, h.fail(call, rc)
	}
	if tok == nil {
		tok = []byte{}
	}
	return tok, nil
}

// item returns the implementation's number for a portable item.
func (h *Handle) item(it libpam.Item, name string) (int, error) {
	n, ok := h.nums.NativeItem(it)
	if !ok {
		return 0, fmt.Errorf("pam module: item %s: %w", name, pam.ErrNotSupported)
	}
	return n, nil
}

// Item returns a string item; an unset item is "" with a nil error.
func (h *Handle) Item(it pam.Item) (string, error) {
	n, err := h.item(libpam.Item(it), it.String())
	if err != nil {
		return "", err
	}
	v, rc := h.b.getItem(n)
	if !h.ok(rc) {
		return "", h.fail("pam_get_item("+it.String()+")", rc)
	}
	return string(v), nil
}

// SetItem sets a string item for the rest of the stack and the application.
func (h *Handle) SetItem(it pam.Item, v string) error {
	n, err := h.item(libpam.Item(it), it.String())
	if err != nil {
		return err
	}
	b, err := cstr("item value", v)
	if err != nil {
		return err
	}
	if rc := h.b.setItem(n, b); !h.ok(rc) {
		return h.fail("pam_set_item("+it.String()+")", rc)
	}
	return nil
}

// SetAuthTok sets PAM_AUTHTOK, the token later modules of the stack read
// (with use_first_pass); libpam keeps its own copy.
func (h *Handle) SetAuthTok(tok []byte) error {
	return h.setSecret(libpam.ItemAuthTok, "PAM_AUTHTOK", tok)
}

// SetOldAuthTok sets PAM_OLDAUTHTOK.
func (h *Handle) SetOldAuthTok(tok []byte) error {
	return h.setSecret(libpam.ItemOldAuthTok, "PAM_OLDAUTHTOK", tok)
}

func (h *Handle) setSecret(it libpam.Item, name string, tok []byte) error {
	if bytes.IndexByte(tok, 0) >= 0 {
		return &pam.InputError{Op: "module", Field: name, Err: pam.ErrNUL}
	}
	n, err := h.item(it, name)
	if err != nil {
		return err
	}
	if tok == nil {
		tok = []byte{}
	}
	if rc := h.b.setItem(n, tok); !h.ok(rc) {
		return h.fail("pam_set_item("+name+")", rc)
	}
	return nil
}

// Getenv returns a variable of the PAM environment.
func (h *Handle) Getenv(name string) (string, bool) {
	if name == "" || strings.ContainsAny(name, "=\x00") {
		return "", false
	}
	return h.b.getenv(name)
}

// Setenv sets a variable of the PAM environment, which the application
// hands to the user's session.
func (h *Handle) Setenv(name, value string) error {
	if name == "" || strings.ContainsRune(name, '=') {
		return &pam.InputError{Op: "module", Field: "environment variable name", Err: fmt.Errorf("must be non-empty and hold no '='")}
	}
	nv, err := cstr("environment variable", name+"="+value)
	if err != nil {
		return err
	}
	if rc := h.b.putenv(string(nv)); !h.ok(rc) {
		return h.fail("pam_putenv", rc)
	}
	return nil
}

// Unsetenv removes a variable of the PAM environment (Linux-PAM; OpenPAM
// cannot remove one, so there it returns an error matching
// pam.ErrNotSupported).
func (h *Handle) Unsetenv(name string) error {
	if h.nums.Impl == libpam.ImplOpenPAM {
		return fmt.Errorf("pam module: unsetenv: %w", pam.ErrNotSupported)
	}
	if name == "" || strings.ContainsAny(name, "=\x00") {
		return &pam.InputError{Op: "module", Field: "environment variable name", Err: fmt.Errorf("must be non-empty and hold no '=' or NUL")}
	}
	if rc := h.b.putenv(name); !h.ok(rc) {
		return h.fail("pam_putenv", rc)
	}
	return nil
}

// Environ returns the whole PAM environment as "NAME=value" strings.
func (h *Handle) Environ() ([]string, error) {
	env, rc := h.b.envlist()
	if !h.ok(rc) {
		return nil, h.fail("pam_getenvlist", rc)
	}
	return env, nil
}

// Converse sends a batch of 1 to 32 messages in one conversation call and
// returns one response per message (empty for ErrorMsg and TextInfo).
// Prompts' answers are the caller's to wipe. A failure of the application's
// conversation is an error matching the code it returned (usually
// pam.ErrConv). BinaryPrompt exists on Linux-PAM only.
func (h *Handle) Converse(msgs ...pam.Message) ([]pam.Response, error) {
	if len(msgs) == 0 || len(msgs) > 32 {
		return nil, &pam.InputError{Op: "module", Field: "conversation", Err: fmt.Errorf("%d messages, want 1 to 32", len(msgs))}
	}
	styles := make([]int, len(msgs))
	texts := make([][]byte, len(msgs))
	for i, m := range msgs {
		n, ok := h.nums.NativeStyle(libpam.Style(m.Style))
		if !ok {
			return nil, fmt.Errorf("pam module: conversation style %v: %w", m.Style, pam.ErrNotSupported)
		}
		styles[i] = n
		if m.Style == pam.BinaryPrompt {
			p := binary.BigEndian.AppendUint32(nil, uint32(5+len(m.Data)))
			texts[i] = append(append(p, m.PacketType), m.Data...)
			continue
		}
		t, err := cstr("message text", m.Text)
		if err != nil {
			return nil, err
		}
		texts[i] = t
	}
	raw, rc := h.b.converse(styles, texts)
	if !h.ok(rc) {
		return nil, h.fail("conversation", rc)
	}
	out := make([]pam.Response, len(msgs))
	for i, m := range msgs {
		if i >= len(raw) {
			break
		}
		r := raw[i]
		switch {
		case m.Style == pam.BinaryPrompt && len(r) >= 5:
			out[i] = pam.Response{PacketType: r[4], Data: r[5:]}
		case m.Style.IsPrompt() && m.Style != pam.BinaryPrompt:
			out[i] = pam.Response{Data: r}
		default:
			clear(r)
		}
	}
	return out, nil
}

// Prompt asks one question (PromptEchoOff or PromptEchoOn) and returns the
// answer, which is the caller's to wipe.
func (h *Handle) Prompt(style pam.Style, text string) ([]byte, error) {
	if style != pam.PromptEchoOff && style != pam.PromptEchoOn {
		return nil, &pam.InputError{Op: "module", Field: "prompt style", Err: fmt.Errorf("%v is not a text prompt", style)}
	}
	r, err := h.Converse(pam.Message{Style: style, Text: text})
	if err != nil {
		return nil, err
	}
	if r[0].Data == nil {
		return []byte{}, nil
	}
	return r[0].Data, nil
}

// Info shows a message (PAM_TEXT_INFO), unless the call is Silent.
func (h *Handle) Info(format string, a ...any) error {
	if h.Silent() {
		return nil
	}
	_, err := h.Converse(pam.Message{Style: pam.TextInfo, Text: validText(fmt.Sprintf(format, a...))})
	return err
}

// Error shows an error message (PAM_ERROR_MSG), unless the call is Silent.
func (h *Handle) Error(format string, a ...any) error {
	if h.Silent() {
		return nil
	}
	_, err := h.Converse(pam.Message{Style: pam.ErrorMsg, Text: validText(fmt.Sprintf(format, a...))})
	return err
}

// validText makes formatted text fit a C string.
func validText(s string) string { return strings.ReplaceAll(s, "\x00", `\x00`) }

// dataKey namespaces the module's data among the stack's other modules'.
func dataKey(name string) string { return "gopam:" + name }

// SetData stores a Go value under name for later calls of this module in
// the same transaction (pam_set_data). cleanup, if not nil, runs once when
// the value is replaced or the transaction ends (pam_end). Names are shared
// by every gopam module of the stack, so prefix them with the module's name.
func (h *Handle) SetData(name string, value any, cleanup func(value any, e DataEnd)) error {
	k, err := cstr("data name", dataKey(name))
	if err != nil {
		return err
	}
	if rc := h.b.setData(string(k), &datum{value: value, cleanup: cleanup}); !h.ok(rc) {
		return h.fail("pam_set_data", rc)
	}
	return nil
}

// Data returns the value stored under name, or an error matching
// pam.ErrNoModuleData when there is none.
func (h *Handle) Data(name string) (any, error) {
	k, err := cstr("data name", dataKey(name))
	if err != nil {
		return nil, err
	}
	d, rc := h.b.getData(string(k))
	if !h.ok(rc) || d == nil {
		if h.ok(rc) {
			rc, _ = h.nums.NativeCode(libpam.CodeNoModuleData)
		}
		return nil, h.fail("pam_get_data", rc)
	}
	return d.value, nil
}

// Priority is a syslog priority.
type Priority int

// The syslog priorities a module uses.
const (
	LogErr     Priority = 3
	LogWarning Priority = 4
	LogNotice  Priority = 5
	LogInfo    Priority = 6
	LogDebug   Priority = 7
)

// Syslog writes one line to the system log through libpam (pam_syslog on
// Linux-PAM, which prefixes the module and service names). The text is
// bounded to 1,024 bytes and made valid UTF-8 without control characters.
func (h *Handle) Syslog(p Priority, format string, a ...any) {
	h.b.syslog(int(p)&7, logText(fmt.Sprintf(format, a...)))
}

func logText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 1024 {
		cut := 1024
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

// FailDelay asks libpam to delay the application's failure report by at
// least d (pam_fail_delay, Linux-PAM; elsewhere an error matching
// pam.ErrNotSupported).
func (h *Handle) FailDelay(d time.Duration) error {
	if h.nums.Impl == libpam.ImplOpenPAM {
		return fmt.Errorf("pam module: pam_fail_delay: %w", pam.ErrNotSupported)
	}
	us := d.Microseconds()
	if us < 0 || us > 1<<31-1 {
		return &pam.InputError{Op: "module", Field: "fail delay", Err: fmt.Errorf("%v out of range", d)}
	}
	if rc := h.b.failDelay(uint32(us)); !h.ok(rc) {
		return h.fail("pam_fail_delay", rc)
	}
	return nil
}
