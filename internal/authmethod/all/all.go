// Package all registers the built-in machine-identity login methods.
package all

import (
	_ "github.com/lockbox-dev/lockbox/internal/authmethod/awsauth"     // aws-auth
	_ "github.com/lockbox-dev/lockbox/internal/authmethod/azureauth"   // azure-auth
	_ "github.com/lockbox-dev/lockbox/internal/authmethod/gcpauth"     // gcp-auth
	_ "github.com/lockbox-dev/lockbox/internal/authmethod/jwtauth"     // jwt-auth
	_ "github.com/lockbox-dev/lockbox/internal/authmethod/k8sauth"     // kubernetes-auth
	_ "github.com/lockbox-dev/lockbox/internal/authmethod/ldapauth"    // ldap-auth
	_ "github.com/lockbox-dev/lockbox/internal/authmethod/oidcauth"    // oidc-auth
	_ "github.com/lockbox-dev/lockbox/internal/authmethod/tlscertauth" // tls-cert-auth
)
