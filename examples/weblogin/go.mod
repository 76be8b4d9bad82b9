module github.com/gopam/pam/examples/weblogin

go 1.26.0

require (
	github.com/chromedp/chromedp v0.23.0
	github.com/gopam/pam v0.0.0
)

require (
	github.com/chromedp/cdproto v0.159.0 // indirect
	github.com/ebitengine/purego v0.11.3 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/term v0.48.0 // indirect
)

replace github.com/gopam/pam => ../..
