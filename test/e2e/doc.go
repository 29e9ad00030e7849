// Package e2e is the end-to-end suite: the real daemon, as root, against
// the real reana-client, acting as the POSIX test users of test/setup.sh.
// Its tests are built only with the e2e tag (make test), so without it
// `go test ./...` reports "no test files" here rather than a pass.
package e2e
