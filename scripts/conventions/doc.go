// Package conventions holds tests that check conventions of the whole
// repository which no linter states: they run with `go test ./...`.
package conventions
