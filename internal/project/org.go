package project

import "time"

// Org is an organization: the tenant that owns projects and identities.
type Org struct {
	ID        string
	Name      string
	Slug      string
	CreatedAt time.Time
	UpdatedAt time.Time
}
