// Package bench holds the benchmarks of make bench. They are built only
// with the bench tag, so without it `go test ./...` reports "no test
// files" here rather than a pass.
package bench
