// Package org manages the people of an organization: users' memberships
// (invited, accepted, deactivated) with their organization roles, one-time
// invitations, and custom organization roles. It holds no HTTP: the API and
// the dashboard call the same services.
package org
