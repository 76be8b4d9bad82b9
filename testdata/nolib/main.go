// Command nolib is built by TestWithoutLibpam with CGO_ENABLED=0 and run
// where libpam cannot be loaded: it must get ErrNotSupported and keep going.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/gopam/pam"
)

func main() {
	fmt.Println("implementation:", pam.Implementation())
	fmt.Println("extensions:", len(pam.Extensions()))
	h, err := pam.Start(pam.Config{Service: "nolib", User: "alice", ConfDir: os.Getenv("NOLIB_CONFDIR"), Conv: pam.Answers()})
	fmt.Println("not supported:", errors.Is(err, pam.ErrNotSupported))
	if err != nil {
		fmt.Println("error:", err)
	} else {
		fmt.Println("authenticate:", h.Authenticate(context.Background(), 0))
		h.Close()
	}
	fmt.Println("still running")
}
