package metrics

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Path is where the metrics are served.
const Path = "/metrics"

// Server serves a Metrics registry over HTTP.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// Serve listens on addr (host:port; port 0 picks one, see Addr) and serves
// the metrics at Path until Close. Errors of the HTTP server go to lg.
func (m *Metrics) Serve(addr string, lg zerolog.Logger) (*Server, error) {
	if addr == "" || !strings.Contains(addr, ":") {
		return nil, fmt.Errorf("metrics address %q: want host:port, e.g. 127.0.0.1:9464 or :9464", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serving metrics: %w", err)
	}
	errLog := log.New(logWriter{lg}, "", 0)
	mux := http.NewServeMux()
	mux.Handle(Path, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: errLog}))
	s := &Server{
		ln: ln,
		srv: &http.Server{
			Handler: mux, ErrorLog: errLog,
			// A scraper that stalls holds one goroutine, never the
			// supervisor.
			ReadHeaderTimeout: 10 * time.Second,
			WriteTimeout:      30 * time.Second,
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			lg.Error().Err(err).Msg("metrics server ended")
		}
	}()
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server, letting a scrape in progress finish for up to a
// second.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

// logWriter turns the standard logger's lines into zerolog warnings.
type logWriter struct{ l zerolog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Warn().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
