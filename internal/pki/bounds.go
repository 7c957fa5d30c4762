package pki

import "github.com/lockbox-dev/lockbox/internal/errs"

// Refusals of a create past a bound: the service checks what it read (before
// any costly work: a CA's key), the store counts again under a lock of the
// project or collection, so that concurrent creates do not pass the bound.

// TooManyCAs refuses a CA past MaxCAsPerProject.
func TooManyCAs(n int) error {
	return errs.BadRequest("The project has %d CAs, the most it may have; delete one first", n)
}

// TooManyTemplates refuses a certificate template past MaxTemplates.
func TooManyTemplates(n int) error {
	return errs.BadRequest("The project has %d certificate templates, the most it may have", n)
}

// TooManyCollections refuses a collection past MaxCollections.
func TooManyCollections(n int) error {
	return errs.BadRequest("The project has %d PKI collections, the most it may have; delete one first", n)
}

// TooManyItems refuses a collection item past MaxItemsPerCollection.
func TooManyItems(n int) error {
	return errs.BadRequest("The collection holds %d items, the most it may; remove one first", n)
}

// TooManyAlerts refuses an alert past MaxAlerts.
func TooManyAlerts(n int) error {
	return errs.BadRequest("The project has %d PKI alerts, the most it may have; delete one first", n)
}
