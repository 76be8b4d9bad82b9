package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/esc"
)

// transaction runs one PAM transaction: start, items and environment from
// the command line, the operations in order until one fails, then the report.
type transaction struct {
	o      *options
	stdout io.Writer
	stderr io.Writer
	conv   *conversation
	rep    report

	// afterOp, when set, runs after each successful operation (the demo
	// shows the environment once the session is open).
	afterOp func(op operation, h *pam.Handle)
	// onFailure, when set, adds to the report of a failed operation.
	onFailure func(op operation, err error)
}

func newTransaction(o *options, mode string, stdin *os.File, stdout, stderr io.Writer) *transaction {
	t := &transaction{o: o, stdout: stdout, stderr: stderr}
	t.conv = newConversation(o, stdin, stdout, stderr)
	t.rep = report{
		Format:         1,
		Mode:           mode,
		Implementation: pam.Implementation(),
		Service:        o.service,
		User:           o.pamUser,
		ConfDir:        o.confDir,
		Setup:          []setup{},
		Operations:     []opRecord{},
	}
	return t
}

// human reports whether results are printed as lines (not --json).
func (t *transaction) human() bool { return !t.o.json }

func (t *transaction) verbosef(format string, args ...any) {
	if t.o.verbose {
		fmt.Fprintf(t.stderr, "gopam: "+format+"\n", args...)
	}
}

// fail records the first failure and prints it as pamtester would, with a
// hint when the conversation caused it.
func (t *transaction) fail(err error) {
	text := failureText(err, t.o.timeout)
	h := hint(err)
	if t.rep.Error == "" {
		t.rep.Error, t.rep.Hint = text, h
	}
	if t.human() {
		fmt.Fprintf(t.stderr, "gopam: %s\n", oneLine(text))
		if h != "" {
			fmt.Fprintf(t.stderr, "gopam: %s\n", h)
		}
	}
	var pe *pam.Error
	if errors.As(err, &pe) {
		t.verbosef("%s failed with %s (%d): %v", pe.Op, codeName(pe.Code, pe.Errno()), pe.Errno(), oneLine(err.Error()))
	} else {
		t.verbosef("%v", oneLine(err.Error()))
	}
}

// run runs the transaction and returns the exit status.
func (t *transaction) run() int {
	status := t.transact()
	t.rep.OK = status == exitOK
	t.rep.ExitStatus = status
	if t.o.json {
		if err := t.rep.write(t.stdout); err != nil {
			fmt.Fprintf(t.stderr, "gopam: writing the report: %v\n", err)
			return exitFailure
		}
	}
	return status
}

func (t *transaction) transact() int {
	o := t.o
	ctx := context.Background()
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}

	cfg := pam.Config{
		Service: o.service,
		User:    o.pamUser,
		// An empty USER leaves the user unset, so the first module that
		// needs one asks for it (pam.Config would otherwise pick the
		// current user).
		AskUser: o.pamUser == "",
		ConfDir: o.confDir,
		Conv:    t.conv,
	}
	t.verbosef("invoking pam_start(%s, %s, ...)", esc.Quote(o.service), esc.Quote(o.pamUser))
	t0 := time.Now()
	h, err := pam.StartContext(ctx, cfg)
	t.rep.Start = newResult(err, time.Since(t0))
	if err != nil {
		t.startFailed(err)
		return exitFailure
	}
	defer func() {
		if err := h.Close(); err != nil {
			t.verbosef("pam_end: %v", err)
		}
	}()

	for _, it := range o.items {
		t0 := time.Now()
		err := h.SetItem(it.item, it.value)
		t.rep.Setup = append(t.rep.Setup, setup{Action: "set_item", Name: it.item.String(), Value: it.value, result: newResult(err, time.Since(t0))})
		if err != nil {
			t.fail(err)
			return exitFailure
		}
	}
	for _, e := range o.env {
		t0 := time.Now()
		action := "putenv"
		var err error
		if e.unset {
			action = "unsetenv"
			err = h.Env().Unset(e.name)
		} else {
			err = h.Env().Set(e.name, e.value)
		}
		shown, _ := shownValue(e.name, e.value)
		t.rep.Setup = append(t.rep.Setup, setup{Action: action, Name: e.name, Value: shown, result: newResult(err, time.Since(t0))})
		if err != nil {
			t.fail(err)
			return exitFailure
		}
	}

	status := exitOK
	for _, op := range o.ops {
		t.verbosef("performing operation - %s", op.name)
		rec := opRecord{Op: op.name, Flags: op.names, Conversation: []convEvent{}}
		if rec.Flags == nil {
			rec.Flags = []string{}
		}
		t.conv.recordTo(&rec.Conversation)
		t0 := time.Now()
		err := op.call(ctx, h)
		rec.result = newResult(err, time.Since(t0))
		t.conv.recordTo(nil)
		if err == nil {
			rec.Message = ops[op.name].success
		} else {
			rec.Message = failureText(err, o.timeout)
		}
		t.rep.Operations = append(t.rep.Operations, rec)
		if err != nil {
			t.fail(err)
			if t.onFailure != nil {
				t.onFailure(op, err)
			}
			status = exitFailure
			break
		}
		if t.human() {
			fmt.Fprintf(t.stdout, "gopam: %s\n", ops[op.name].success)
		}
		if t.afterOp != nil {
			t.afterOp(op, h)
		}
	}

	env, err := t.env(h)
	if err != nil {
		// After a timeout the handle is gone; the environment with it.
		t.verbosef("reading the PAM environment: %v", err)
	}
	t.rep.Env = env
	if o.printEnv && t.human() && err == nil {
		t.printEnv(env, "")
	}
	return status
}

// env reads the PAM environment, masking sensitive values.
func (t *transaction) env(h *pam.Handle) ([]envVar, error) {
	list, err := h.Env().List()
	if err != nil {
		return nil, err
	}
	vars := make([]envVar, 0, len(list))
	for _, kv := range list {
		name, value, _ := strings.Cut(kv, "=")
		shown, masked := shownValue(name, value)
		vars = append(vars, envVar{Name: name, Value: shown, Masked: masked})
	}
	return vars, nil
}

func (t *transaction) printEnv(env []envVar, indent string) {
	for _, v := range env {
		fmt.Fprintf(t.stdout, "%s%s=%s\n", indent, v.Name, oneLine(v.Value))
	}
}

// startFailed reports a failed pam_start in pamtester's words, then what
// gopam can tell about the cause.
func (t *transaction) startFailed(err error) {
	o := t.o
	text := "Initialization failure"
	var detail string
	var pe *pam.Error
	if !errors.As(err, &pe) {
		// Not a PAM code: libpam missing, no confdir support, ...
		detail = err.Error()
	} else if o.confDir != "" && !exists(filepath.Join(o.confDir, strings.ToLower(filepath.Base(o.service)))) && !exists(filepath.Join(o.confDir, "other")) {
		detail = fmt.Sprintf("%s has no service file %s and no \"other\"", esc.Quote(o.confDir), esc.Quote(strings.ToLower(filepath.Base(o.service))))
	}
	t.rep.Error, t.rep.Hint = text, detail
	if t.human() {
		fmt.Fprintf(t.stderr, "gopam: %s\n", text)
		if detail != "" {
			fmt.Fprintf(t.stderr, "gopam: %s\n", oneLine(detail))
		}
	}
	if pe != nil {
		t.verbosef("pam_start failed with %s (%d): %s", codeName(pe.Code, pe.Errno()), pe.Errno(), pe.Strerror())
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
