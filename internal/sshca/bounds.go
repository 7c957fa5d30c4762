package sshca

import "github.com/lockbox-dev/lockbox/internal/errs"

// Refusals of a create past a bound: the service checks what it read (before
// any costly work: a CA's key), the store counts again under a lock of the
// project, so that concurrent creates do not pass the bound.

// TooManyCAs refuses a CA past MaxCAsPerProject.
func TooManyCAs(n int) error {
	return errs.BadRequest("The project has %d SSH CAs, the most it may have; delete one first", n)
}

// TooManyTemplates refuses a template past MaxTemplatesPerProject.
func TooManyTemplates(n int) error {
	return errs.BadRequest("The project has %d SSH certificate templates, the most it may have", n)
}

// TooManyHosts refuses a host past MaxHostsPerProject.
func TooManyHosts(n int) error {
	return errs.BadRequest("The project has %d SSH hosts, the most it may have", n)
}

// TooManyHostGroups refuses a host group past MaxHostGroupsPerProject.
func TooManyHostGroups(n int) error {
	return errs.BadRequest("The project has %d SSH host groups, the most it may have", n)
}
