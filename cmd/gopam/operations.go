package main

import (
	"context"
	"strings"

	"github.com/gopam/pam"
)

// credential says which pam_setcred action a setcred operation asks for.
type credential int

const (
	credDefault credential = iota // no credential flag: establish, as libpam does
	credEstablish
	credDelete
	credReinitialize
	credRefresh
)

// operation is one parsed OPERATION argument, such as
// "authenticate(PAM_SILENT)".
type operation struct {
	name  string // canonical, lower case
	flags pam.Flags
	cred  credential
	names []string // the flags as given, canonical spelling, for reports
}

// opInfo describes one of the six operations.
type opInfo struct {
	// success is the line printed after "gopam: " when the operation
	// succeeds; the words are pamtester's, so that scripts that look for
	// them keep working.
	success string
}

var ops = map[string]opInfo{
	"authenticate":  {success: "successfully authenticated"},
	"acct_mgmt":     {success: "account management done."},
	"setcred":       {success: "credential info has successfully been set."},
	"open_session":  {success: "successfully opened a session"},
	"close_session": {success: "session has successfully been closed."},
	"chauthtok":     {success: "authentication token altered successfully."},
}

// opFlags are the flags any operation accepts. pamtester accepts them on
// every operation; the pam package passes on only those PAM defines for the
// operation.
var opFlags = map[string]pam.Flags{
	"PAM_SILENT":                 pam.Silent,
	"PAM_DISALLOW_NULL_AUTHTOK":  pam.DisallowNullAuthTok,
	"PAM_CHANGE_EXPIRED_AUTHTOK": pam.ChangeExpiredAuthTok,
}

// credFlags are the flags only setcred accepts, at most one of them.
var credFlags = map[string]credential{
	"PAM_ESTABLISH_CRED":    credEstablish,
	"PAM_DELETE_CRED":       credDelete,
	"PAM_REINITIALIZE_CRED": credReinitialize,
	"PAM_REFRESH_CRED":      credRefresh,
}

// parseOperation parses "name" or "name(FLAG|FLAG...)". Names and flags are
// matched without regard to case, as pamtester matches them.
func parseOperation(spec string) (operation, error) {
	name, list, hasFlags := strings.Cut(spec, "(")
	name = strings.ToLower(strings.TrimSpace(name))
	if _, ok := ops[name]; !ok {
		return operation{}, usagef("unknown operation %q (known: authenticate, acct_mgmt, setcred, open_session, close_session, chauthtok)", spec)
	}
	op := operation{name: name}
	if !hasFlags {
		return op, nil
	}
	list, closed := strings.CutSuffix(list, ")")
	if !closed || strings.ContainsAny(list, "()") {
		return operation{}, usagef("malformed operation %q: want %s(FLAG|FLAG...)", spec, name)
	}
	if strings.TrimSpace(list) == "" {
		return op, nil
	}
	for _, tok := range strings.Split(list, "|") {
		f := strings.ToUpper(strings.TrimSpace(tok))
		if f == "" {
			return operation{}, usagef("malformed operation %q: empty flag between '|'", spec)
		}
		if v, ok := opFlags[f]; ok {
			op.flags |= v
			op.names = append(op.names, f)
			continue
		}
		c, ok := credFlags[f]
		if !ok {
			return operation{}, usagef("operation %q: unknown flag %q", spec, strings.TrimSpace(tok))
		}
		if name != "setcred" {
			return operation{}, usagef("operation %q: %s is a flag of setcred only", spec, f)
		}
		if op.cred != credDefault && op.cred != c {
			return operation{}, usagef("operation %q: setcred takes one of PAM_ESTABLISH_CRED, PAM_DELETE_CRED, PAM_REINITIALIZE_CRED, PAM_REFRESH_CRED", spec)
		}
		op.cred = c
		op.names = append(op.names, f)
	}
	return op, nil
}

// call runs the operation on h.
func (op operation) call(ctx context.Context, h *pam.Handle) error {
	switch op.name {
	case "authenticate":
		return h.Authenticate(ctx, op.flags)
	case "acct_mgmt":
		return h.AcctMgmt(ctx, op.flags)
	case "setcred":
		switch op.cred {
		case credDelete:
			return h.DeleteCredentials(ctx, op.flags)
		case credReinitialize:
			return h.ReinitializeCredentials(ctx, op.flags)
		case credRefresh:
			return h.RefreshCredentials(ctx, op.flags)
		}
		return h.EstablishCredentials(ctx, op.flags)
	case "open_session":
		return h.OpenSession(ctx, op.flags)
	case "close_session":
		return h.CloseSession(ctx, op.flags)
	case "chauthtok":
		return h.ChangeAuthTok(ctx, op.flags)
	}
	panic("gopam: unknown operation " + op.name) // parseOperation admits only the six
}
