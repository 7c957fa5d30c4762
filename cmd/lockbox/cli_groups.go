package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lockbox-dev/lockbox/internal/client"
)

// findGroup names a group by id or slug (the first argument of the groups commands).
func findGroup(ctx context.Context, cl *client.Client, ref string) (client.Group, error) {
	groups, err := cl.Groups(ctx)
	if err != nil {
		return client.Group{}, err
	}
	for _, g := range groups {
		if g.ID == ref || g.Slug == ref {
			return g, nil
		}
	}
	return client.Group{}, fmt.Errorf("no group %s in the organization (give its ID or slug)", ref)
}

func groupRow(g client.Group) []string { return []string{g.Slug, g.Name, g.RoleSlug(), g.ID} }

var groupHeader = []string{"SLUG", "NAME", "ORG ROLE", "ID"}

// newGroupsCmd is `lockbox groups`: the organization's groups and who is in them.
func (c *cli) newGroupsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "groups", Short: "Manage the organization's groups of users and machine identities"}

	list := &cobra.Command{
		Use:   "list",
		Short: "List the organization's groups",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			groups, err := cl.Groups(cmd.Context())
			if err != nil {
				return err
			}
			rows := make([][]string, len(groups))
			for i, g := range groups {
				rows[i] = groupRow(g)
			}
			if groups == nil {
				groups = []client.Group{}
			}
			return c.print(groups, groupHeader, rows)
		},
	}

	var slug, role string
	create := &cobra.Command{
		Use:   "create NAME [--slug SLUG] [--role no-access]",
		Short: "Create a group (its organization role bounds who may manage it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			g, err := cl.CreateGroup(cmd.Context(), args[0], slug, role)
			if err != nil {
				return err
			}
			return c.print(g, groupHeader, [][]string{groupRow(g)})
		},
	}
	create.Flags().StringVar(&slug, "slug", "", "slug, 5 to 36 characters (default: from the name)")
	create.Flags().StringVar(&role, "role", "", "organization role: admin, member, no-access (default) or a custom role's slug")

	get := &cobra.Command{
		Use:   "get GROUP",
		Short: "Show a group (by ID or slug) with its users and machine identities",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			g, err := findGroup(cmd.Context(), cl, args[0])
			if err != nil {
				return err
			}
			users, err := cl.GroupUsers(cmd.Context(), g.ID)
			if err != nil {
				return err
			}
			ids, err := cl.GroupIdentities(cmd.Context(), g.ID)
			if err != nil {
				return err
			}
			rows := [][]string{}
			for _, u := range users {
				rows = append(rows, []string{"user", u.Username, u.ID})
			}
			for _, i := range ids {
				rows = append(rows, []string{"identity", i.Name, i.ID})
			}
			if users == nil {
				users = []client.GroupUser{}
			}
			if ids == nil {
				ids = []client.GroupIdentity{}
			}
			v := struct {
				client.Group
				Users             []client.GroupUser     `json:"users"`
				MachineIdentities []client.GroupIdentity `json:"machineIdentities"`
			}{g, users, ids}
			if c.output != "json" {
				if _, err := fmt.Fprintf(c.stdout, "%s (%s), organization role %s, ID %s\n", printable(g.Name), printable(g.Slug), printable(g.RoleSlug()), printable(g.ID)); err != nil {
					return err
				}
			}
			return c.print(v, []string{"MEMBER", "NAME", "ID"}, rows)
		},
	}

	del := &cobra.Command{
		Use:   "delete GROUP",
		Short: "Delete a group: its members lose the roles it held in projects",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			g, err := findGroup(cmd.Context(), cl, args[0])
			if err != nil {
				return err
			}
			g, err = cl.DeleteGroup(cmd.Context(), g.ID)
			if err != nil {
				return err
			}
			return c.printLine("deleted group "+g.Slug, g)
		},
	}

	member := func(use, short string, user, remove bool) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				cl, err := c.client(cmd.Context())
				if err != nil {
					return err
				}
				g, err := findGroup(cmd.Context(), cl, args[0])
				if err != nil {
					return err
				}
				verb := map[bool]string{false: "added %s to %s", true: "removed %s from %s"}[remove]
				if user {
					u, err := cl.AddGroupUser(cmd.Context(), g.ID, args[1], remove)
					if err != nil {
						return err
					}
					return c.printLine(fmt.Sprintf(verb, u.Username, g.Slug), u)
				}
				if err := cl.AddGroupIdentity(cmd.Context(), g.ID, args[1], remove); err != nil {
					return err
				}
				return c.printLine(fmt.Sprintf(verb, args[1], g.Slug), map[string]string{"id": args[1]})
			},
		}
	}
	cmd.AddCommand(list, create, get, del,
		member("add-user GROUP USERNAME", "Put a user of the organization (username or email) in a group", true, false),
		member("remove-user GROUP USERNAME", "Take a user out of a group", true, true),
		member("add-identity GROUP IDENTITY_ID", "Put a machine identity of the organization in a group", false, false),
		member("remove-identity GROUP IDENTITY_ID", "Take a machine identity out of a group", false, true))
	return cmd
}

func projectGroupRow(m client.ProjectGroup) []string {
	roles := make([]string, len(m.Roles))
	for i, r := range m.Roles {
		roles[i] = r.Slug()
		if r.IsTemporary && r.TemporaryAccessEndTime != nil {
			roles[i] += " (until " + *r.TemporaryAccessEndTime + ")"
		}
	}
	return []string{m.Group.Slug, strings.Join(roles, ", "), m.Group.ID}
}

// grantsOf makes role grants of slugs, temporary for temporary when set.
func grantsOf(slugs []string, temporary string) []client.RoleGrant {
	out := make([]client.RoleGrant, len(slugs))
	for i, r := range slugs {
		out[i] = client.RoleGrant{Role: r}
		if temporary != "" {
			out[i].IsTemporary, out[i].TemporaryMode, out[i].TemporaryRange = true, "relative", temporary
		}
	}
	return out
}

// newProjectGroupsCmd is `lockbox projects groups`: the groups of a project.
func (c *cli) newProjectGroupsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "groups", Short: "List, add and remove a project's groups and set their roles"}
	header := []string{"GROUP", "ROLES", "GROUP ID"}
	var project string
	need := func() error {
		if project == "" {
			return errors.New("--project is required")
		}
		return nil
	}
	list := &cobra.Command{
		Use:   "list --project ID",
		Short: "List a project's groups and their roles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := need(); err != nil {
				return err
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			ms, err := cl.ProjectGroups(cmd.Context(), project)
			if err != nil {
				return err
			}
			rows := make([][]string, len(ms))
			for i, m := range ms {
				rows[i] = projectGroupRow(m)
			}
			if ms == nil {
				ms = []client.ProjectGroup{}
			}
			return c.print(ms, header, rows)
		},
	}
	projectFlag(list, &project)

	var roles []string
	var temporary string
	grant := func(use, short string, update bool) *cobra.Command {
		sub := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := need(); err != nil {
					return err
				}
				if len(roles) == 0 {
					return errors.New("--role is required")
				}
				cl, err := c.client(cmd.Context())
				if err != nil {
					return err
				}
				if !update {
					m, err := cl.AddProjectGroup(cmd.Context(), project, args[0], grantsOf(roles, temporary))
					if err != nil {
						return err
					}
					return c.print(m, header, [][]string{projectGroupRow(m)})
				}
				gid := args[0]
				if g, err := findGroup(cmd.Context(), cl, args[0]); err == nil {
					gid = g.ID
				}
				got, err := cl.SetProjectGroupRoles(cmd.Context(), project, gid, grantsOf(roles, temporary))
				if err != nil {
					return err
				}
				m := client.ProjectGroup{GroupID: gid, Roles: got}
				m.Group.ID, m.Group.Slug = gid, args[0]
				return c.print(m, header, [][]string{projectGroupRow(m)})
			},
		}
		projectFlag(sub, &project)
		sub.Flags().StringArrayVar(&roles, "role", nil, "role slug: admin, member, viewer, no-access or a custom role (repeatable)")
		sub.Flags().StringVar(&temporary, "temporary", "", "make the roles temporary for this long, e.g. 30m, 1h, 1d")
		return sub
	}
	remove := &cobra.Command{
		Use:   "remove --project ID GROUP",
		Short: "Remove a group from a project: its members lose the roles it held there",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := need(); err != nil {
				return err
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			m, err := cl.RemoveProjectGroup(cmd.Context(), project, args[0])
			if err != nil {
				return err
			}
			return c.printLine("removed group "+args[0]+" from the project", m)
		},
	}
	projectFlag(remove, &project)
	cmd.AddCommand(list,
		grant("add --project ID GROUP --role ROLE [--role ROLE]... [--temporary 1h]", "Add a group (ID, slug or name) to a project with roles", false),
		grant("set-role --project ID GROUP --role ROLE [--role ROLE]... [--temporary 1h]", "Replace a group's roles in a project", true),
		remove)
	return cmd
}
