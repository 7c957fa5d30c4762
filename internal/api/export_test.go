package api

import (
	"net/http"
	"net/netip"
)

// ResolveClientIP exposes resolveClientIP to the external tests.
var ResolveClientIP = func(r *http.Request, trusted []netip.Prefix, realIP bool) string {
	ip, _ := resolveClientIP(r, trusted, realIP)
	return ip
}
