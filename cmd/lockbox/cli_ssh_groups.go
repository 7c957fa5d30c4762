package main

import (
	"errors"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lockbox-dev/lockbox/internal/client"
)

var sshGroupHeader = []string{"NAME", "ID", "PROJECT", "LOGIN USERS"}

func sshGroupRow(g client.SSHHostGroup) []string {
	users := make([]string, len(g.LoginMappings))
	for i, m := range g.LoginMappings {
		users[i] = m.LoginUser
	}
	return []string{g.Name, g.ID, g.ProjectID, strings.Join(users, ",")}
}

func (c *cli) newSSHHostGroupCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "host-groups", Aliases: []string{"host-group"},
		Short: "Group SSH hosts: a group's login mappings let its principals log in to every host in it"}

	var g client.SSHHostGroup
	var logins []string
	create := &cobra.Command{
		Use:   "create --project ID --name SLUG [--login USER=PRINCIPAL ...]",
		Short: "Create a host group; --login deploy=<identity id> lets that identity log in as deploy on the group's hosts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.ProjectID == "" || g.Name == "" {
				return errors.New("--project and --name are required")
			}
			ms, err := parseLogins(logins)
			if err != nil {
				return err
			}
			g.LoginMappings = ms
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			out, err := cl.SSHCreateHostGroup(cmd.Context(), g)
			if err != nil {
				return err
			}
			return c.print(out, sshGroupHeader, [][]string{sshGroupRow(out)})
		},
	}
	projectFlag(create, &g.ProjectID)
	create.Flags().StringVar(&g.Name, "name", "", "the group's name: a slug, unique in the organization")
	create.Flags().StringArrayVar(&logins, "login", nil, "LOGIN_USER=PRINCIPAL (an identity ID, user ID or email); repeat")

	var listProject string
	list := &cobra.Command{
		Use:   "list --project ID",
		Short: "List a project's host groups",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if listProject == "" {
				return errors.New("--project is required")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			gs, err := cl.SSHHostGroups(cmd.Context(), listProject)
			if err != nil {
				return err
			}
			rows := make([][]string, len(gs))
			for i, g := range gs {
				rows[i] = sshGroupRow(g)
			}
			return c.print(gs, sshGroupHeader, rows)
		},
	}
	projectFlag(list, &listProject)

	get := &cobra.Command{
		Use:   "get GROUP_ID",
		Short: "Show a host group",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			g, err := cl.SSHHostGroup(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return c.print(g, sshGroupHeader, [][]string{sshGroupRow(g)})
		},
	}

	var newName string
	var newLogins []string
	var clearLogins bool
	update := &cobra.Command{
		Use:   "update GROUP_ID [--name SLUG] [--login USER=PRINCIPAL ... | --no-logins]",
		Short: "Rename a host group or replace its login mappings",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ms []client.SSHLoginMapping
			switch {
			case clearLogins && len(newLogins) > 0:
				return errors.New("--login and --no-logins exclude each other")
			case clearLogins:
				ms = []client.SSHLoginMapping{}
			case len(newLogins) > 0:
				var err error
				if ms, err = parseLogins(newLogins); err != nil {
					return err
				}
			case newName == "":
				return errors.New("nothing to change: give --name, --login or --no-logins")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			g, err := cl.SSHUpdateHostGroup(cmd.Context(), args[0], newName, ms)
			if err != nil {
				return err
			}
			return c.print(g, sshGroupHeader, [][]string{sshGroupRow(g)})
		},
	}
	update.Flags().StringVar(&newName, "name", "", "new name")
	update.Flags().StringArrayVar(&newLogins, "login", nil, "LOGIN_USER=PRINCIPAL; repeat; replaces all the group's mappings")
	update.Flags().BoolVar(&clearLogins, "no-logins", false, "remove all the group's login mappings")

	del := &cobra.Command{
		Use:   "delete GROUP_ID",
		Short: "Delete a host group (its hosts stay, without its login mappings)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			g, err := cl.SSHDeleteHostGroup(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return c.print(g, sshGroupHeader, [][]string{sshGroupRow(g)})
		},
	}

	var filter string
	hosts := &cobra.Command{
		Use:   "hosts GROUP_ID [--filter group-members|non-group-members]",
		Short: "List the hosts of the group's project, and which are in the group",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			hs, err := cl.SSHGroupHosts(cmd.Context(), args[0], filter)
			if err != nil {
				return err
			}
			rows := make([][]string, len(hs))
			for i, h := range hs {
				in, since := "no", ""
				if h.IsPartOfGroup {
					in = "yes"
				}
				if h.JoinedGroupAt != nil {
					since = *h.JoinedGroupAt
				}
				rows[i] = []string{h.Hostname, h.ID, in, since}
			}
			return c.print(hs, []string{"HOSTNAME", "ID", "IN GROUP", "SINCE"}, rows)
		},
	}
	hosts.Flags().StringVar(&filter, "filter", "", "group-members or non-group-members")

	member := func(use, short string, add bool) *cobra.Command {
		return &cobra.Command{
			Use:   use + " GROUP_ID HOST_ID",
			Short: short,
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				cl, err := c.client(cmd.Context())
				if err != nil {
					return err
				}
				h, err := cl.SSHAddHostToGroup(cmd.Context(), args[0], args[1], add)
				if err != nil {
					return err
				}
				return c.print(h, sshHostHeader, [][]string{sshHostRow(h)})
			},
		}
	}
	cmd.AddCommand(create, list, get, update, del, hosts,
		member("add-host", "Put a host in a group: it takes the group's login mappings", true),
		member("remove-host", "Take a host out of a group", false))
	return cmd
}

func (c *cli) newSSHRevokeCmd() *cobra.Command {
	var caID string
	cmd := &cobra.Command{
		Use:   "revoke SERIAL_OR_ID [--ca ID]",
		Short: "Revoke an issued SSH certificate by serial number or record ID; its CA's KRL then lists it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			r, err := cl.SSHRevoke(cmd.Context(), args[0], caID)
			if err != nil {
				return err
			}
			at := ""
			if r.RevokedAt != nil {
				at = *r.RevokedAt
			}
			return c.print(r, []string{"SERIAL", "CA", "STATUS", "REVOKED AT", "ID"},
				[][]string{{r.SerialNumber, r.SshCaID, r.Status, at, r.ID}})
		},
	}
	cmd.Flags().StringVar(&caID, "ca", "", "the CA that issued the serial (needed only if two of your CAs issued it)")
	return cmd
}

// newSSHKRLCmd fetches a CA's KRL; with --out it replaces the file
// atomically, so that a cron job can keep sshd's RevokedKeys current.
func (c *cli) newSSHKRLCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "krl CA_ID --out FILE",
		Short: "Write a CA's key revocation list (OpenSSH's KRL format, for sshd's RevokedKeys; no login needed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("--out is required (the KRL is binary)")
			}
			cl, err := c.publicClient()
			if err != nil {
				return err
			}
			b, err := cl.SSHKRL(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := writeFileAtomic(out, 0o644, writeBytes(b)); err != nil {
				return err
			}
			return c.print(struct {
				File  string `json:"file"`
				Bytes int    `json:"bytes"`
			}{out, len(b)}, []string{"FILE", "BYTES"}, [][]string{{out, strconv.Itoa(len(b))}})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "where to write the KRL (replaced atomically)")
	return cmd
}
