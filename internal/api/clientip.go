package api

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIP is the request's client address as withClientIP resolved it. The
// rate limiter, trusted-IP checks, audit events and the access log all read it
// here, so they cannot disagree.
func clientIP(r *http.Request) string {
	if ip, ok := r.Context().Value(keyClientIP).(string); ok {
		return ip
	}
	return peerHost(r.RemoteAddr) // outside the middleware: never a header
}

// withClientIP resolves the client address and whether the client reached
// us over TLS once per request (clientIP, OverTLS).
func (s *Server) withClientIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, proxied := resolveClientIP(r, s.trustedProxies, s.realIP)
		if proxied && !s.realIP && r.Header.Get("X-Real-IP") != "" && len(r.Header.Values("X-Forwarded-For")) == 0 {
			s.realIPWarned.Do(func() {
				s.log.Warn("a trusted proxy names its client in X-Real-IP only, which is not read: every client counts as the proxy " +
					"(rate limits, trusted IPs, audit); set LOCKBOX_CLIENT_IP_HEADER=x-real-ip if it overwrites that header")
			})
		}
		ctx := context.WithValue(r.Context(), keyClientIP, ip)
		ctx = context.WithValue(ctx, keyOverTLS, r.TLS != nil || (proxied && forwardedHTTPS(r)))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// forwardedHTTPS reports whether the proxy that sent r says its client used
// HTTPS: the last X-Forwarded-Proto value (the one the nearest proxy added).
// Only asked of a trusted proxy.
func forwardedHTTPS(r *http.Request) bool {
	v := r.Header.Values("X-Forwarded-Proto")
	if len(v) == 0 {
		return false
	}
	hops := strings.Split(v[len(v)-1], ",")
	return strings.EqualFold(strings.TrimSpace(hops[len(hops)-1]), "https")
}

// OverTLS reports whether the client of a request served by the Server
// reached it over TLS: the connection is TLS, or the TCP peer is a trusted
// proxy (TrustedProxies) whose X-Forwarded-Proto says https. From anyone
// else the header is ignored. Outside the Server's middleware: r.TLS alone.
func OverTLS(r *http.Request) bool {
	if v, ok := r.Context().Value(keyOverTLS).(bool); ok {
		return v
	}
	return r.TLS != nil
}

// resolveClientIP returns the TCP peer's address unless the peer is a trusted
// proxy. Then, with realIP, X-Real-IP names the client; otherwise
// X-Forwarded-For is walked from the right, skipping trusted proxies: the
// first untrusted address is the client. An unparsable entry ends the walk
// at the last trusted hop, which is the most that can be vouched for. Only
// the one header is read: a proxy that sets X-Real-IP passes on the
// X-Forwarded-For its client sent, and one that appends to X-Forwarded-For
// passes on the client's X-Real-IP. proxied reports whether the peer is a
// trusted proxy.
func resolveClientIP(r *http.Request, trusted []netip.Prefix, realIP bool) (ip string, proxied bool) {
	peer, err := netip.ParseAddr(peerHost(r.RemoteAddr))
	if err != nil {
		return peerHost(r.RemoteAddr), false
	}
	// A link-local peer ("fe80::1%eth0") is a client without its zone: no
	// prefix contains a zoned address, so every trusted-IP list refused
	// it. It is never a trusted proxy: fe80::1 on one link is not fe80::1
	// on another, and any host on any attached link could take it.
	peer = peer.Unmap()
	if peer.Zone() != "" {
		return peer.WithZone("").String(), false
	}
	if !inPrefixes(trusted, peer) {
		return peer.String(), false
	}
	if realIP {
		if a, ok := parseHop(r.Header.Get("X-Real-IP")); ok {
			return a.String(), true
		}
		return peer.String(), true
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		hops := strings.Split(strings.Join(xff, ","), ",")
		ip := peer
		for i := len(hops) - 1; i >= 0; i-- {
			a, ok := parseHop(hops[i])
			if !ok {
				break
			}
			ip = a
			if !inPrefixes(trusted, ip) {
				break
			}
		}
		return ip.String(), true
	}
	return peer.String(), true
}

// peerIsTrustedProxy reports whether the request's TCP peer itself (not an
// address it forwards) is a trusted proxy.
func (s *Server) peerIsTrustedProxy(r *http.Request) bool {
	peer, err := netip.ParseAddr(peerHost(r.RemoteAddr))
	return err == nil && peer.Zone() == "" && inPrefixes(s.trustedProxies, peer.Unmap())
}

// parseHop parses one forwarded address: "192.0.2.1", "2001:db8::1",
// "192.0.2.1:443" or "[2001:db8::1]:443".
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	if a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func inPrefixes(list []netip.Prefix, a netip.Addr) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerHost is the host part of a RemoteAddr.
func peerHost(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

// ClientIP is the client address of a request served by the Server, after
// its trusted-proxy rules (for handlers mounted beside the API, such as the
// dashboard).
func ClientIP(r *http.Request) string { return clientIP(r) }
