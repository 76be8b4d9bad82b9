// Package pam authenticates users against the host's PAM stack (Pluggable
// Authentication Modules) and runs the rest of a PAM transaction: account
// checks, credentials, sessions, password changes and the PAM environment.
//
// gopam loads libpam at run time, so programs build with CGO_ENABLED=0 and
// without the PAM headers, and start on machines without libpam: there, PAM
// calls return an error matching ErrNotSupported. Implementation() and
// Extensions() tell which PAM was found (Linux-PAM or OpenPAM) and what it
// offers beyond the common API.
//
// # A login
//
// Start a transaction with a Config, run the operations, Close it:
//
//	h, err := pam.Start(pam.Config{Service: "myapp", User: "alice", Conv: conv})
//	if err != nil { ... }
//	defer h.Close()
//	if err := h.Login(ctx, 0); err != nil { ... } // Authenticate, then AcctMgmt
//
// Authenticate alone is not a login: an expired or locked account still
// authenticates, and only AcctMgmt refuses it. Login runs both.
//
// Run does the same in one call, on one thread locked for the transaction
// (the caller's when ctx cannot end), with no hand-off between threads on
// each call, the way to check a login per request:
//
//	err := pam.Run(ctx, cfg, func(ctx context.Context, h *pam.Handle) error {
//		return h.Login(ctx, 0)
//	})
//
// # Conversations
//
// Modules ask questions (a password, a one-time code) and show messages
// through a Conversation, which receives all the messages of one call at once
// and returns one Response per message. Answers travel as []byte and gopam
// wipes its copies once libpam has them. MessageFunc handles one message at a
// time; UserPassword answers a password login by prompt style (CheckPassword
// runs such a login in one call); Answers replays answers known beforehand,
// in order; Lines reads them from a stream, one line each;
// TerminalConversation talks to the user at a terminal and is the default.
// A program that gives its own conversation names the user (Config.User).
//
// # Errors
//
// Every call that libpam fails returns an *Error that names the operation,
// user and service, and matches its Code with errors.Is:
//
//	if errors.Is(err, pam.ErrAuth) { ... }        // wrong password
//	var pe *pam.Error
//	if errors.As(err, &pe) { log.Print(pe.Errno(), pe.Strerror()) }
//
// An error returned by the conversation, a panic in a callback (as a
// PanicError), a runtime.Goexit in a conversation (ErrGoexit) and the end of
// the context are wrapped by the operation's error. Classify maps any error
// of the package to an Outcome (credentials, account, temporary, canceled,
// ...), with a documented precedence.
//
// Error texts are safe to log. User names, service names, prompts, module
// messages and environment names come from users and modules, so every
// error text of the package (and of the gopam command) writes them escaped:
// a plain short name (ASCII letters, digits and . _ - @ +, at most 64 bytes)
// as it is, anything else in Go's %q quoting, cut after its first 256 bytes
// with "...(N more bytes)" after the closing quote. The text of a wrapped
// cause is kept on one line the same way and cut after 512 bytes. A text is
// therefore one line of bounded length whatever the input held, and begins
// with "pam: " once. The fields keep the full values: (*Error).User holds
// the whole user name, as PAM_USER did.
//
// # Threads, contexts and fail delays
//
// Where each PAM call runs is decided in one place, by the policy
// (Config.Threads) and the call's context:
//
//	policy           context            Start, Authenticate, AcctMgmt,     setcred and session calls,
//	                                    ChangeAuthTok, items, Close        and every call after the first
//	---------------  -----------------  ---------------------------------  ------------------------------
//	ThreadDefault    cannot end         the caller's thread, locked        one dedicated thread, retired
//	                 (Background)       for the call: no hand-off          after the transaction
//	ThreadDefault    can end            a new goroutine's thread, which    the same dedicated thread
//	                                    the caller can abandon (Start
//	                                    and Close: the caller's thread)
//	ThreadPerHandle  any                one dedicated thread for the handle's life (reused by later
//	                                    handles unless a setcred or session call ran on it)
//	(Run)            any                the thread of Run's function, locked for the transaction
//
// By default a call whose context cannot end runs on the
// caller's own thread, locked for the call, with no hand-off; one whose
// context can end runs on a goroutine the caller can abandon; from the first
// credential or session call on, every call of the handle runs on one
// dedicated thread, which ends with the transaction. ThreadPerHandle, the
// strict mode, runs every call of a handle on one thread whichever goroutine
// calls. Under Run every call runs on the thread of Run's function, whose
// goroutine owns the handle. A Conversation of the program's own runs beside
// the call, on a goroutine of its own (see Conversation); the Handle's
// methods may be called from any goroutine and are serialised.
// Each operation takes a context: it reaches the
// conversation, and when it ends while a module is blocked in C the call
// returns at once and the handle is ended when C returns. After a failed
// Authenticate the fail delay (pam_fail_delay) is waited for in Go, not in a
// C thread, unless Config.BlockingFailDelay is set; Config.Delay hands it to
// the application instead. Call slots (Slots, SetMaxInFlight) bound the OS
// threads doing PAM work; a caller that gets none fails with ErrNoSlot, at
// once if Config.SlotWait says so, which a server answers with "busy".
//
// The fail delay slows each client down; it does not bound how many
// attempts run at once. Because no thread waits, an attacker who opens many
// connections gets many guesses per delay: a thousand parallel attempts
// behind a 2 s delay all end after about 2 s. A server that checks passwords
// must add its own limits: attempts per user and per source address (a
// token bucket in front of Run or StartDialog, a counter with a lockout
// window, Config.Delay to refuse a client's next attempt until its delay is
// over), a bound on logins in progress (SetMaxInFlight, a semaphore), and
// pam_faillock (or pam_tally2) in the stack to lock accounts after repeated
// failures whatever the source.
//
// # The module cache
//
// libpam loads a stack's modules at every start and unloads them at every
// end; gopam keeps the modules libpam loaded (see SetModuleCache), which
// makes a short transaction several times faster than libpam alone. Module
// static state then lives as long as the process, as it already does
// whenever two transactions overlap; a module whose file changes on disk is
// released, so the next transaction after the last one using it loads the
// new file.
//
// # Secrets in the environment
//
// Some modules leave passwords in the PAM environment. After every operation,
// session ones included, gopam removes the variables whose names match
// Config.SensitiveEnv unless the handle is elevated (SetElevated, root only).
// The default patterns match the whole name in any case, across '/':
// "KRB5/PASSWORD", "Password" and "LDAP_PASSWD" are all removed. Names are
// decided in libpam's memory, so the values removed are never copied into Go
// memory.
//
// Package pamtest builds private PAM stacks for tests, the way gopam's own
// tests run the real libpam and real modules.
package pam
