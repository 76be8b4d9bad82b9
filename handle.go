package pam

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/gopam/pam/internal/esc"
	"github.com/gopam/pam/internal/libpam"
)

// Handle is one PAM transaction, from Start to Close.
//
// By default each call runs on a thread locked for the call: the caller's own
// when its context cannot end, else a goroutine's the caller can abandon;
// from the handle's first credential or session call on, every call runs on
// one dedicated thread, retired with the transaction (see ThreadPolicy for
// the table, and ThreadPerHandle for the strict mode: one thread for the
// handle's life, whichever goroutine calls). A Conversation of the program's
// own runs beside the call's thread (see Conversation). No thread is held by
// a fail delay: while a failed Authenticate or ChangeAuthTok waits it out in
// Go, a strict handle that has run no credential or session call yet gives
// its thread back and goes on with another (auth, account and password
// modules keep no thread state between calls). A Handle is safe for
// concurrent use: its calls are serialised. (The handle Run passes to its function is the
// exception: it belongs to the function's goroutine.)
//
// Close ends the transaction; a handle that is dropped without Close is ended
// by a runtime cleanup, but long-lived programs should Close explicitly.
type Handle struct {
	s       *state
	cleanup runtime.Cleanup
}

// state is the transaction itself. It is separate from Handle so that the
// runtime cleanup of a dropped Handle can still reach it.
type state struct {
	lib *libpam.Lib
	id  uintptr // names this state to the trampolines

	// cancelMu guards cancelOp, which Close uses to stop an operation in
	// progress without waiting for mu.
	cancelMu sync.Mutex
	cancelOp context.CancelCauseFunc

	callTID    atomic.Int64 // the thread running a call of this handle, or 0
	closing    atomic.Bool  // Close has begun: refuse new operations
	abandoned  atomic.Bool  // a call was abandoned: callbacks fail at once
	inCallback atomic.Bool  // a callback of this handle is running

	// mu serialises operations; everything below is guarded by it, or
	// written by the transaction's thread while the holder of mu waits.
	mu sync.Mutex

	txnConfig // what Config said, fixed when the transaction begins
	placement // where the calls run (placement.go)
	callState // the call in flight

	pamh     libpam.Handle
	closed   error // nil while open; ErrClosed or a wrapped cause after
	last     int   // native status of the last operation, for pam_end
	elevated atomic.Bool
	startMem libpam.StartMem
	args     *startArgs // newState's arguments for beginCall
}

// txnConfig is the configuration of a transaction, from its Config.
type txnConfig struct {
	service    string
	user       string
	conv       Conversation
	delayFn    DelayFunc
	blockDelay bool
	sensitive  []string
}

// callState belongs to the call in flight: written by its caller before the
// call, and by the transaction's thread during it.
type callState struct {
	cur       curOp  // the operation to run
	opRC      int    // the call's native status
	opErr     *Error // the call's error, if it failed
	opCtx     context.Context
	opLazy    bool   // opCtx is made cancellable by Close only when first needed
	opDone    func() // ends the cancellable opCtx made lazily, if any
	convErr   error
	delayed   bool
	delayCode int
	delayUsec uint32
}

// Start begins a PAM transaction described by cfg (see Config for the
// defaults of its zero value). It loads libpam on first use; where libpam
// cannot be loaded it returns an error matching ErrNotSupported.
func Start(cfg Config) (*Handle, error) {
	return StartContext(context.Background(), cfg)
}

// StartContext is Start with a context that bounds the wait for a free
// PAM call slot (see Slots and Config.SlotWait; without one the error matches
// ErrNoSlot).
func StartContext(ctx context.Context, cfg Config) (*Handle, error) {
	if cfg.Threads != ThreadDefault && cfg.Threads != ThreadPerHandle && cfg.Threads != threadCaller {
		return nil, &InputError{Op: "start", Field: "threads", Err: fmt.Errorf("unknown policy %d", cfg.Threads)}
	}
	s, err := newState(ctx, cfg)
	if err != nil {
		return nil, err
	}
	h := &Handle{s: s}
	// The cleanup does not cancel: a method of an unreachable Handle may
	// still be running, and it finishes first. Close stops it.
	h.cleanup = runtime.AddCleanup(h, func(s *state) { go s.close(false) }, s)
	return h, nil
}

// newState checks cfg and begins the transaction on the thread its policy
// chooses. Under threadRun the caller holds a slot, and newState leaves the
// caller's thread locked when it succeeds.
func newState(ctx context.Context, cfg Config) (*state, error) {
	l, err := lib()
	if err != nil {
		return nil, err
	}
	s := &state{lib: l, txnConfig: txnConfig{conv: cfg.Conv, delayFn: cfg.Delay, blockDelay: cfg.BlockingFailDelay},
		placement: placement{policy: cfg.Threads, slotWait: cfg.SlotWait}}
	s.hold.p = cfg.Slots
	if s.hold.p == nil {
		s.hold.p = &defaultSlots
	}
	switch s.policy {
	case ThreadDefault:
		s.policy = defaultThreads
	case threadCaller:
		s.policy = ThreadDefault
	}
	s.service = cfg.Service
	if s.service == "" {
		s.service = DefaultService
	}
	s.sensitive = cfg.SensitiveEnv
	if s.sensitive == nil {
		s.sensitive = DefaultSensitiveEnv
	} else if err := checkSensitive(s.sensitive); err != nil {
		return nil, err
	}
	if s.conv == nil {
		s.conv = TerminalConversation{}
	}
	var userC []byte
	if s.user, err = startUser("start", cfg, false); err != nil {
		return nil, err
	}
	serviceC, err := libpam.CString(s.service)
	if err != nil {
		return nil, &InputError{Op: "start", Field: "service", Err: err}
	}
	if s.user != "" {
		if userC, err = libpam.CString(s.user); err != nil {
			return nil, &InputError{Op: "start", Field: "user", Err: err}
		}
	}
	var confC []byte
	if cfg.ConfDir != "" {
		if !l.Has(libpam.FeatureConfDir) {
			return nil, notSupported("Config.ConfDir needs pam_start_confdir (Linux-PAM 1.4 or later) or OpenPAM")
		}
		if confC, err = libpam.CString(cfg.ConfDir); err != nil {
			return nil, &InputError{Op: "start", Field: "confdir", Err: err}
		}
		if err = l.CheckConfDir(cfg.ConfDir, s.service); err != nil {
			return nil, &InputError{Op: "start", Field: "confdir", Err: err}
		}
	}
	if s.delayFn != nil && !l.Has(libpam.FeatureFailDelay) {
		return nil, notSupported("Config.Delay needs the PAM_FAIL_DELAY item (Linux-PAM)")
	}
	var itemC [len(startItems)][]byte
	for i, v := range [len(startItems)]string{cfg.TTY, cfg.RHost, cfg.RUser} {
		if v == "" {
			continue
		}
		if itemC[i], err = libpam.CString(v); err != nil {
			return nil, &InputError{Op: "start", Field: startItems[i].tag, Err: err}
		}
	}

	s.id = libpam.Register(s)
	s.args = &startArgs{service: serviceC, user: userC, confdir: confC, items: itemC, confDir: cfg.ConfDir}
	// ctx bounds the wait for a call slot, but pam_start itself, which reads
	// files and loads modules, is never abandoned.
	err = s.exec(ctx, callStart, s.beginCall)
	s.args = nil
	if err != nil {
		libpam.Unregister(s.id)
		s.hold.release()
		return nil, errorf("start: %w", err)
	}
	if e := s.opErr; e != nil {
		s.opErr = nil
		s.release()
		return nil, e
	}
	return s, nil
}

// startItem is an item Config sets at the start of a transaction.
type startItem struct {
	it  libpam.Item
	tag string
}

// startItems are the items Config sets, in the order of their fields.
var startItems = [...]startItem{{libpam.ItemTTY, "tty"}, {libpam.ItemRHost, "rhost"}, {libpam.ItemRUser, "ruser"}}

// startArgs are newState's C strings, for beginCall.
type startArgs struct {
	service, user, confdir []byte
	items                  [len(startItems)][]byte
	confDir                string // Config.ConfDir, to name the files of a stack that cannot be read
}

// beginCall starts the transaction on its thread; a failure leaves the
// transaction ended and its error in opErr.
func (s *state) beginCall() {
	a := s.args
	rc, op := s.begin(a.service, a.user, a.confdir, &a.items)
	if rc != 0 {
		var cause error
		if op == "start" {
			cause = unreadableStack(a.confDir, s.service)
		}
		s.opErr = s.newError(op, rc, cause)
		if s.pamh != 0 {
			s.lib.End(s.pamh, rc)
		}
	}
}

// begin runs pam_start and sets the initial items, on the transaction's
// thread. It returns the failing status and the step that failed.
func (s *state) begin(service, user, confdir []byte, values *[len(startItems)][]byte) (int, string) {
	l := s.lib
	var rc int
	if s.pamh, rc = l.Start(service, user, confdir, s.id, &s.startMem); rc != 0 {
		return rc, "start"
	}
	for i, it := range startItems {
		if values[i] == nil {
			continue
		}
		n, _ := l.NativeItem(it.it)
		if rc = l.SetItemString(s.pamh, n, values[i]); rc != 0 {
			return rc, "set " + it.tag
		}
	}
	if !s.blockDelay && l.Has(libpam.FeatureFailDelay) {
		n, _ := l.NativeItem(libpam.ItemFailDelay)
		if rc = l.InstallDelay(s.pamh, n); rc != 0 {
			return rc, "set fail delay"
		}
	}
	return 0, ""
}

// release gives back what the state holds besides the PAM handle.
func (s *state) release() {
	libpam.Unregister(s.id)
	s.detach()
	s.hold.release()
}

// lock takes s.mu for a method of the handle and returns the error that
// method must return at once instead: the handle is closed or closing, or the
// method was called from inside one of the handle's own callbacks, where
// taking s.mu would deadlock.
func (s *state) lock() error {
	if s.inCallback.Load() && onCallThread(s) {
		return ErrReentrant
	}
	s.mu.Lock()
	if s.closed != nil {
		err := s.closed
		s.mu.Unlock()
		return err
	}
	if s.closing.Load() {
		s.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// withOp prepares an operation's context: Close cancels it with ErrClosed.
func (s *state) withOp(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	s.cancelMu.Lock()
	s.cancelOp = cancel
	s.cancelMu.Unlock()
	if s.closing.Load() {
		cancel(ErrClosed)
	}
	return ctx, func() {
		s.cancelMu.Lock()
		s.cancelOp = nil
		s.cancelMu.Unlock()
		cancel(nil)
	}
}

// opContext returns the running operation's context. An operation that runs
// on its caller's thread makes it cancellable by Close only here, when a
// conversation or a fail delay first needs it, since most calls need neither.
// It runs on the transaction's thread or on the caller's, never both at once.
func (s *state) opContext() context.Context {
	if s.opLazy && s.opDone == nil {
		s.opCtx, s.opDone = s.withOp(s.opCtx)
	}
	return s.opCtx
}

// do runs f, a short call on the transaction's thread, for a method that
// takes no context. Such a call neither converses nor blocks, so Close has
// nothing to cancel.
func (s *state) do(f func()) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := s.checkOwner(); err != nil {
		return err
	}
	return s.exec(context.Background(), callOp, f)
}

// curOp is the operation that runOp runs.
type curOp struct {
	op     libpam.Op
	native int32
	name   string
}

// runOp runs s.cur on the transaction's thread and leaves its status and
// error in opRC and opErr.
func (s *state) runOp() {
	c := s.cur
	s.opRC, s.opErr = s.lib.Call(s.pamh, c.op, c.native), nil
	if !s.elevated.Load() {
		s.scrub()
	}
	if s.opRC != 0 {
		s.opErr = s.newError(c.name, s.opRC, nil)
	}
}

// endLazyOp ends the context opContext made for an operation that ran on
// its caller's thread.
func (s *state) endLazyOp() {
	if s.opDone != nil {
		s.opDone()
	}
	s.opCtx, s.opLazy, s.opDone = nil, false, nil
}

// newError builds the error of a failed call with native status rc. It must
// run on the transaction's thread (or before the handle exists), since it
// asks libpam for the text and the current user.
func (s *state) newError(op string, rc int, cause error) *Error {
	e := &Error{Op: op, Service: s.service, User: s.user, Code: Code(s.lib.CodeOf(rc)), Err: cause, errno: rc}
	e.strerror = s.lib.Strerror(s.pamh, rc)
	if s.pamh != 0 {
		if n, ok := s.lib.NativeItem(libpam.ItemUser); ok {
			if u, ok, _ := s.lib.GetItemString(s.pamh, n); ok {
				e.User = u
			}
		}
	}
	return e
}

// operation runs one of the six PAM operations.
func (s *state) operation(ctx context.Context, op libpam.Op, name string, flags Flags) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	if err := s.checkOwner(); err != nil {
		return err
	}
	if op.LeavesThreadState() {
		s.dirtyTID = true
	}
	at := s.place(callOp, ctx.Done() != nil)
	s.convErr, s.delayed = nil, false
	if at.lazy() {
		// Nothing can abandon the call: its context becomes cancellable
		// only if a conversation or a delay asks for it.
		s.opCtx, s.opLazy, s.opDone = ctx, true, nil
		defer s.endLazyOp()
	} else {
		var done func()
		ctx, done = s.withOp(ctx)
		defer done()
		s.opCtx, s.opLazy = ctx, false
	}
	s.cur = curOp{op: op, native: s.lib.NativeFlags(opFlags(op, flags)), name: name}
	if err := s.execAt(at, callOp, ctx, s.runOp); err != nil {
		// An abandoned call still runs on the transaction's thread, which
		// owns opCtx and convErr now.
		return errorf("%s %s via %s: %w", name, esc.Name(s.user), esc.Name(s.service), err)
	}
	if s.opLazy {
		ctx = s.opCtx // endLazyOp clears it
	} else {
		s.opCtx = nil
	}
	rc, e := s.opRC, s.opErr
	s.opErr = nil
	s.last = rc
	convErr := s.convErr
	s.convErr = nil
	if e != nil {
		e.Err = convErr
		if cause := context.Cause(ctx); cause != nil && !errors.Is(convErr, cause) {
			// The conversation saw the context end (it may report only
			// context.Canceled): say why it ended, such as ErrClosed.
			if convErr != nil {
				cause = fmt.Errorf("%w: %w", cause, unprefixed(convErr))
			}
			e.Err = cause
		}
	}
	delayErr := s.applyDelay(ctx, rc, e)
	if e != nil {
		if e.Err == nil {
			e.Err = delayErr
		}
		return e
	}
	// A module may shrug off a failed conversation, but a panic in a
	// callback is a bug the caller must hear about even when the stack
	// succeeded.
	if convErr != nil && isCallbackBug(convErr) {
		return errorf("%s: the stack succeeded but the conversation failed: %w", name, convErr)
	}
	if delayErr != nil && isCallbackBug(delayErr) {
		return errorf("%s: the fail delay callback failed: %w", name, delayErr)
	}
	return nil
}

// isCallbackBug reports whether err says that a callback panicked or ended
// its goroutine.
func isCallbackBug(err error) bool {
	var p *PanicError
	return errors.As(err, &p) || errors.Is(err, ErrGoexit)
}

// Authenticate authenticates the user (pam_authenticate). Flags: Silent,
// DisallowNullAuthTok.
//
// Authentication alone does not mean the user may log in: an expired or
// locked account still authenticates. A login must also call AcctMgmt and
// refuse on its error; Login does both.
func (h *Handle) Authenticate(ctx context.Context, flags Flags) error {
	return h.s.operation(ctx, libpam.OpAuthenticate, "authenticate", flags)
}

// AcctMgmt checks that the account may be used now (pam_acct_mgmt): not
// expired, not locked, allowed at this time and from this host. ErrNewAuthTokReqd
// means the user must change the token (ChangeAuthTok with
// ChangeExpiredAuthTok) before logging in. Flags: Silent, DisallowNullAuthTok.
func (h *Handle) AcctMgmt(ctx context.Context, flags Flags) error {
	return h.s.operation(ctx, libpam.OpAcctMgmt, "acct_mgmt", flags)
}

// Login runs Authenticate then AcctMgmt, the pair that "log this user in"
// needs: authentication alone lets expired and locked accounts through.
func (h *Handle) Login(ctx context.Context, flags Flags) error {
	if err := h.Authenticate(ctx, flags); err != nil {
		return err
	}
	return h.AcctMgmt(ctx, flags)
}

func (s *state) setcred(ctx context.Context, which libpam.Flag, name string, flags Flags) error {
	return s.operation(ctx, libpam.OpSetcred, name, Flags(which)|flags&Silent)
}

// EstablishCredentials gives the user the credentials of the stack's modules
// (pam_setcred with PAM_ESTABLISH_CRED), usually after a successful login and
// before OpenSession. Many modules need root for it. Flags: Silent.
func (h *Handle) EstablishCredentials(ctx context.Context, flags Flags) error {
	return h.s.setcred(ctx, libpam.FlagEstablishCred, "establish_credentials", flags)
}

// DeleteCredentials removes the credentials EstablishCredentials gave
// (PAM_DELETE_CRED). Flags: Silent.
func (h *Handle) DeleteCredentials(ctx context.Context, flags Flags) error {
	return h.s.setcred(ctx, libpam.FlagDeleteCred, "delete_credentials", flags)
}

// ReinitializeCredentials renews the user's credentials fully
// (PAM_REINITIALIZE_CRED). Flags: Silent.
func (h *Handle) ReinitializeCredentials(ctx context.Context, flags Flags) error {
	return h.s.setcred(ctx, libpam.FlagReinitializeCred, "reinitialize_credentials", flags)
}

// RefreshCredentials extends the lifetime of the user's credentials
// (PAM_REFRESH_CRED). Flags: Silent.
func (h *Handle) RefreshCredentials(ctx context.Context, flags Flags) error {
	return h.s.setcred(ctx, libpam.FlagRefreshCred, "refresh_credentials", flags)
}

// OpenSession opens a session for the user (pam_open_session). Session
// modules often change process-wide state (login UID, limits, mounts); a
// server that handles many users usually runs sessions in a child process.
// Flags: Silent.
func (h *Handle) OpenSession(ctx context.Context, flags Flags) error {
	return h.s.operation(ctx, libpam.OpOpenSession, "open_session", flags)
}

// CloseSession closes the session OpenSession opened (pam_close_session).
// Flags: Silent.
func (h *Handle) CloseSession(ctx context.Context, flags Flags) error {
	return h.s.operation(ctx, libpam.OpCloseSession, "close_session", flags)
}

// ChangeAuthTok changes the user's authentication token (pam_chauthtok),
// asking for the old and new tokens through the conversation. Flags: Silent,
// ChangeExpiredAuthTok.
func (h *Handle) ChangeAuthTok(ctx context.Context, flags Flags) error {
	return h.s.operation(ctx, libpam.OpChauthtok, "chauthtok", flags)
}

// Close ends the transaction (pam_end) with the status of the last operation.
// An operation in progress on another goroutine is cancelled (it returns an
// error matching ErrClosed), operations waiting to start are refused, and
// Close waits for the running one to return. Close is idempotent: later calls
// return nil, and every other method returns ErrClosed. A handle abandoned
// because a context ended while a module was blocked in C is already closed:
// Close returns at once, and the transaction is ended when the C call
// returns.
func (h *Handle) Close() error {
	err := h.s.close(true)
	if err != ErrReentrant {
		h.cleanup.Stop() // the transaction is ended, or ending elsewhere
	}
	return err
}

// close ends the transaction. With cancel it first interrupts what runs; the
// runtime cleanup of a dropped Handle does not, since a method of the Handle
// may still be running.
func (s *state) close(cancel bool) error {
	return s.closeAs(cancel, false)
}

// closeAs is close; owner says that the caller is Run itself, on a threadRun
// handle's thread, the only one that may end it. Otherwise closeAs tells
// whether the caller runs on that thread (Run's function) only once it holds
// s.mu: the thread may change until then, while a fail delay is waited out.
func (s *state) closeAs(cancel, owner bool) error {
	if s.inCallback.Load() && onCallThread(s) {
		return ErrReentrant
	}
	if cancel {
		s.closing.Store(true)
		s.cancelMu.Lock()
		if s.cancelOp != nil {
			s.cancelOp(ErrClosed)
		}
		s.cancelMu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed != nil {
		return nil
	}
	if s.policy == threadRun && !owner && !s.onOwner() {
		// Only Run's goroutine may call pam_end; Run does when its
		// function returns. Until then every method returns ErrClosed.
		s.closing.Store(true)
		return nil
	}
	s.closed = ErrClosed
	s.opErr = nil
	s.exec(context.Background(), callEnd, s.end) // for Run: the owner's thread, this one
	s.pamh = 0
	s.release()
	if e := s.opErr; e != nil {
		s.opErr = nil
		return e
	}
	return nil
}

// end runs pam_end with the last operation's status, on the transaction's
// thread; a failure leaves its error in opErr.
func (s *state) end() {
	if rc := s.lib.End(s.pamh, s.last); rc != 0 {
		s.opErr = s.newError("end", rc, nil)
	}
}
