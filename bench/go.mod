module github.com/gopam/pam/bench

go 1.25.0

require (
	github.com/gopam/pam v0.0.0
	github.com/msteinert/pam/v2 v2.1.0
)

require (
	github.com/ebitengine/purego v0.11.3 // indirect
	golang.org/x/sys v0.47.0 // indirect
	golang.org/x/term v0.45.0 // indirect
)

replace github.com/gopam/pam => ../
