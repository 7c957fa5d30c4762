package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lockbox-dev/lockbox/internal/client"
)

// newUsersCmd is `lockbox users`: the people of the organization.
func (c *cli) newUsersCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "Invite, list and remove the people of the organization"}
	var org string

	list := &cobra.Command{
		Use:   "list",
		Short: "List the organization's users with their role and state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			oid, err := orgID(cmd.Context(), cl, org)
			if err != nil {
				return err
			}
			users, err := cl.OrgMembers(cmd.Context(), oid)
			if err != nil {
				return err
			}
			rows := make([][]string, len(users))
			for i, u := range users {
				state := u.Status
				if !u.IsActive {
					state = "deactivated"
				}
				rows[i] = []string{u.User.Email, u.RoleSlug, state, u.ID}
			}
			if users == nil {
				users = []client.OrgMember{}
			}
			return c.print(users, []string{"EMAIL", "ROLE", "STATE", "MEMBERSHIP ID"}, rows)
		},
	}
	list.Flags().StringVar(&org, "org-id", "", "organization ID (default: yours)")

	var role string
	invite := &cobra.Command{
		Use:   "invite EMAIL... [--role member]",
		Short: "Invite people: prints each one-time link, or mails it when the server has LOCKBOX_SMTP_URL",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			oid, err := orgID(cmd.Context(), cl, org)
			if err != nil {
				return err
			}
			links, err := cl.InviteUsers(cmd.Context(), oid, args, role)
			if err != nil {
				return err
			}
			rows := make([][]string, len(links))
			for i, l := range links {
				mailed := "no"
				if l.Mailed {
					mailed = "yes"
				}
				link := l.Link
				if link == "" && !l.Mailed {
					link = "(mail failed: invite again)"
				}
				rows[i] = []string{l.Email, mailed, link}
			}
			return c.print(links, []string{"EMAIL", "MAILED", "LINK"}, rows)
		},
	}
	invite.Flags().StringVar(&org, "org-id", "", "organization ID (default: yours)")
	invite.Flags().StringVar(&role, "role", "member", "organization role: admin, member, no-access or a custom role's slug")

	remove := &cobra.Command{
		Use:   "remove EMAIL",
		Short: "Remove a user from the organization and all its projects",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			oid, err := orgID(cmd.Context(), cl, org)
			if err != nil {
				return err
			}
			users, err := cl.OrgMembers(cmd.Context(), oid)
			if err != nil {
				return err
			}
			for _, u := range users {
				if strings.EqualFold(u.User.Email, args[0]) {
					m, err := cl.RemoveOrgMember(cmd.Context(), oid, u.ID)
					if err != nil {
						return err
					}
					return c.printLine("removed "+u.User.Email, m)
				}
			}
			return fmt.Errorf("no user %s in the organization", args[0])
		},
	}
	remove.Flags().StringVar(&org, "org-id", "", "organization ID (default: yours)")
	cmd.AddCommand(list, invite, remove)
	return cmd
}

func projectUserRow(m client.ProjectUser) []string {
	roles := make([]string, len(m.Roles))
	for i, r := range m.Roles {
		roles[i] = r.Slug()
		if r.IsTemporary && r.TemporaryAccessEndTime != nil {
			roles[i] += " (until " + *r.TemporaryAccessEndTime + ")"
		}
	}
	return []string{m.User.Email, strings.Join(roles, ", "), m.ID}
}

// newProjectMembersCmd is `lockbox projects members`: the users of a project.
func (c *cli) newProjectMembersCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "members", Short: "List, add and remove a project's users and set their roles"}
	header := []string{"EMAIL", "ROLES", "MEMBERSHIP ID"}
	need := func(project string) error {
		if project == "" {
			return errors.New("--project is required")
		}
		return nil
	}

	var project string
	list := &cobra.Command{
		Use:   "list --project ID",
		Short: "List a project's users and their roles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := need(project); err != nil {
				return err
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			ms, err := cl.ProjectUsers(cmd.Context(), project)
			if err != nil {
				return err
			}
			rows := make([][]string, len(ms))
			for i, m := range ms {
				rows[i] = projectUserRow(m)
			}
			if ms == nil {
				ms = []client.ProjectUser{}
			}
			return c.print(ms, header, rows)
		},
	}
	projectFlag(list, &project)

	var roles []string
	add := &cobra.Command{
		Use:   "add --project ID EMAIL... [--role viewer]...",
		Short: "Make users of the organization members of a project (default role: member)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := need(project); err != nil {
				return err
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			ms, err := cl.AddProjectUsers(cmd.Context(), project, args, roles)
			if err != nil {
				return err
			}
			rows := make([][]string, len(ms))
			for i, m := range ms {
				rows[i] = projectUserRow(m)
			}
			if ms == nil {
				ms = []client.ProjectUser{}
			}
			return c.print(ms, header, rows)
		},
	}
	projectFlag(add, &project)
	add.Flags().StringArrayVar(&roles, "role", nil, "role slug: admin, member, viewer, no-access or a custom role (repeatable)")

	remove := &cobra.Command{
		Use:   "remove --project ID EMAIL...",
		Short: "End users' memberships of a project",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := need(project); err != nil {
				return err
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			ms, err := cl.RemoveProjectUsers(cmd.Context(), project, args)
			if err != nil {
				return err
			}
			rows := make([][]string, len(ms))
			for i, m := range ms {
				rows[i] = projectUserRow(m)
			}
			return c.print(ms, header, rows)
		},
	}
	projectFlag(remove, &project)

	var setRoles []string
	var temporary string
	setRole := &cobra.Command{
		Use:   "set-role --project ID EMAIL --role ROLE [--role ROLE]... [--temporary 1h]",
		Short: "Replace a member's roles; with --temporary they stop working after that long",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := need(project); err != nil {
				return err
			}
			if len(setRoles) == 0 {
				return errors.New("--role is required")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			m, err := cl.ProjectUserByLogin(cmd.Context(), project, args[0])
			if err != nil {
				return err
			}
			grants := make([]client.RoleGrant, len(setRoles))
			for i, r := range setRoles {
				grants[i] = client.RoleGrant{Role: r}
				if temporary != "" {
					grants[i].IsTemporary, grants[i].TemporaryMode, grants[i].TemporaryRange = true, "relative", temporary
				}
			}
			got, err := cl.SetProjectUserRoles(cmd.Context(), project, m.ID, grants)
			if err != nil {
				return err
			}
			m.Roles = got
			return c.print(m, header, [][]string{projectUserRow(m)})
		},
	}
	projectFlag(setRole, &project)
	setRole.Flags().StringArrayVar(&setRoles, "role", nil, "role slug (repeatable)")
	setRole.Flags().StringVar(&temporary, "temporary", "", "make the roles temporary for this long, e.g. 30m, 1h, 1d")

	cmd.AddCommand(list, add, remove, setRole)
	return cmd
}
