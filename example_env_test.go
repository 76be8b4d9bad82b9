package pam_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/gopam/pam"
)

// Env().All() goes straight into a range statement; each loop reads a copy
// of the environment.
func ExampleEnv_All() {
	confdir := exampleStack("myapp",
		"auth required pam_permit.so",
		"session required pam_permit.so")
	defer os.RemoveAll(confdir)

	h, err := pam.Start(pam.Config{Service: "myapp", User: "alice", ConfDir: confdir, Conv: pam.Answers()})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	if err := h.Env().Set("LANG", "C.UTF-8"); err != nil {
		log.Fatal(err)
	}
	if err := h.OpenSession(context.Background(), 0); err != nil {
		log.Fatal(err)
	}
	for name, value := range h.Env().All() {
		fmt.Printf("%s=%s\n", name, value)
	}
	// Output: LANG=C.UTF-8
}
