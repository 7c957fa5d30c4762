// Package project holds organizations, projects, environments and folders, and
// the rules for creating, changing and deleting them.
package project
