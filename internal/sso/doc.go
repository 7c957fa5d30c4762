// Package sso signs users in with their organization's OpenID Connect
// identity provider: the per-organization configuration (client secret
// sealed), the authorization-code login with state, nonce and PKCE, and the
// user created on first login with the configured organization role.
package sso
