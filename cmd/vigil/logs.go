package main

import (
	"fmt"
	"os"

	"github.com/rs/zerolog"

	"github.com/vigilsec/vigil/cmd/vigil/internal/metrics"
	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/audit"
)

// logs are vigil's two streams: audit records and its own diagnostics.
type logs struct {
	audit, diag zerolog.Logger
	close       func()
}

// openLogs returns loggers for stderr, or with file both streams go to file
// as JSON lines (like strace -o, everything vigil says goes there; only an
// error that ends vigil is also printed on stderr, by main). Audit records
// on stderr are written unbuffered so they interleave in order with the
// watchee's own output; a file is buffered.
func openLogs(file string, level zerolog.Level) (logs, error) {
	if file == "" {
		return logs{
			audit: audit.NewLogger(os.Stderr, level),
			diag:  audit.NewLogger(os.Stderr, zerolog.InfoLevel),
			close: func() {},
		}, nil
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return logs{}, fmt.Errorf("opening audit log: %w", err)
	}
	sink := audit.NewSink(f)
	return logs{
		audit: audit.NewLogger(sink, level),
		diag:  audit.NewLogger(sink, zerolog.InfoLevel),
		close: func() { sink.Close() },
	}, nil
}

// serveMetrics starts the metrics endpoint when addr is set; stop ends it.
func serveMetrics(addr string, diag zerolog.Logger) (m *metrics.Metrics, stop func(), err error) {
	if addr == "" {
		return nil, func() {}, nil
	}
	m = metrics.New()
	srv, err := m.Serve(addr, diag)
	if err != nil {
		return nil, nil, err
	}
	diag.Info().Str("addr", srv.Addr()).Str("path", metrics.Path).Msg("serving Prometheus metrics")
	return m, func() { srv.Close() }, nil
}

// enforcerMetrics avoids handing the enforcer a typed nil interface.
func enforcerMetrics(m *metrics.Metrics) enforcer.Metrics {
	if m == nil {
		return nil
	}
	return m
}
