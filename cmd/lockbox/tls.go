package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/lockbox-dev/lockbox/internal/config"
)

// tlsFiles serves the API listener's TLS configuration from the files the
// settings name, and re-reads them on reload (SIGHUP), so a renewed
// certificate is served without a restart. A reload that fails keeps the
// configuration in use.
type tlsFiles struct {
	cert, key, clientCA string
	cur                 atomic.Pointer[tls.Config]
}

func newTLSFiles(cfg config.Config) (*tlsFiles, error) {
	f := &tlsFiles{cert: cfg.TLSCertFile, key: cfg.TLSKeyFile, clientCA: cfg.TLSClientCAFile}
	if err := f.reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// reload reads the files again and, if they make a valid configuration,
// serves it to every new connection.
func (f *tlsFiles) reload() error {
	cert, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		// The error names the files and what is wrong, never key material.
		return fmt.Errorf("TLS certificate %s and key %s: %v", f.cert, f.key, err)
	}
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}
	if f.clientCA != "" {
		pem, err := os.ReadFile(f.clientCA)
		if err != nil {
			return fmt.Errorf("TLS client CA file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("TLS client CA file %s: no PEM certificate in it", f.clientCA)
		}
		// A client may present no certificate (tokens still authenticate
		// it); one it presents must chain to these CAs.
		c.ClientCAs, c.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	f.cur.Store(c)
	return nil
}

// config is the listener's configuration: each handshake gets the one
// loaded last.
func (f *tlsFiles) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := f.cur.Load()
			if c == nil {
				return nil, errors.New("no TLS configuration loaded")
			}
			return c, nil
		},
	}
}
