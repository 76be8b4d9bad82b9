package pam_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/gopam/pam"
	"github.com/gopam/pam/internal/testmodule"
	"github.com/gopam/pam/pamtest"
)

// TestLinesFromPipe is acceptance 1(e): the line conversation answers a
// stack's prompts from a pipe, one line each, writes the echo-on answer but
// never the echo-off one, and consumes nothing past the lines it used.
func TestLinesFromPipe(t *testing.T) {
	st := pamtest.New(t)
	mod := testmodule.Build(t)
	svc := st.Service("lines",
		"auth optional pam_echo.so hello-info",
		"auth required "+mod+" [echoprompt=Name: ] expect=alice",
		"auth required "+mod+" [prompt=Password: ] expect=hunter2")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		w.Write([]byte("alice\r\nhunter2\nleft over\n"))
		w.Close()
	}()
	var out bytes.Buffer
	conv := pam.Lines(r, &out)
	h := startCfg(t, pam.Config{Service: svc, AskUser: true, ConfDir: st.Dir(), Conv: conv})
	if err := h.Authenticate(context.Background(), 0); err != nil {
		t.Fatalf("authenticate: %v\n%s", err, out.String())
	}
	if want := "hello-info\nName: alice\nPassword: \n"; out.String() != want {
		t.Errorf("transcript %q, want %q", out.String(), want)
	}
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "left over\n" {
		t.Errorf("left in the pipe: %q, %v; want the unused line", rest, err)
	}
	// The input has ended: the next prompt has no answer.
	_, err = conv.Converse(context.Background(), []pam.Message{{Style: pam.PromptEchoOff, Text: "Again: "}})
	if !errors.Is(err, pam.ErrNoAnswer) {
		t.Errorf("after the input ended: got %v, want ErrNoAnswer", err)
	}
}

func TestLinesEdges(t *testing.T) {
	conv := pam.Lines(strings.NewReader("one\n\nlast"), nil)
	msgs := []pam.Message{{Style: pam.PromptEchoOn}, {Style: pam.TextInfo, Text: "info"}, {Style: pam.PromptEchoOff}, {Style: pam.PromptEchoOn}}
	r, err := conv.Converse(context.Background(), msgs)
	if err != nil || string(r[0].Data) != "one" || r[1].Data != nil || len(r[2].Data) != 0 || string(r[3].Data) != "last" {
		t.Fatalf("got %q, %v; want one, nothing, an empty answer, last", r, err)
	}
	if _, err := pam.Lines(strings.NewReader("x\n"), nil).Converse(context.Background(), []pam.Message{{Style: pam.BinaryPrompt}}); err == nil {
		t.Error("a binary prompt was answered")
	}
	long := strings.Repeat("y", 70<<10) + "\n"
	if _, err := pam.Lines(strings.NewReader(long), nil).Converse(context.Background(), []pam.Message{{Style: pam.PromptEchoOn}}); err == nil {
		t.Error("an answer of 70 KiB was accepted")
	}
}
