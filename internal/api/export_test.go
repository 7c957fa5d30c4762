package api

// ResolveClientIP exposes resolveClientIP to the external tests.
var ResolveClientIP = resolveClientIP
