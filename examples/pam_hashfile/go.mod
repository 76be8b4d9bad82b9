module github.com/gopam/pam/examples/pam_hashfile

go 1.25.0

require github.com/gopam/pam v0.0.0

require (
	github.com/ebitengine/purego v0.11.3 // indirect
	golang.org/x/crypto v0.55.0
	golang.org/x/sys v0.47.0 // indirect
	golang.org/x/term v0.45.0 // indirect
)

replace github.com/gopam/pam => ../..
