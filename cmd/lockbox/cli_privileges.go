package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lockbox-dev/lockbox/internal/client"
)

// maxJSONInput bounds a rules or template file read by the CLI.
const maxJSONInput = 1 << 20

// jsonInput returns the JSON given inline (text) or in a file ("-" is
// standard input); both empty is nil.
func (c *cli) jsonInput(flag, text, file string) (json.RawMessage, error) {
	if text != "" && file != "" {
		return nil, fmt.Errorf("give --%s or --%s-file, not both", flag, flag)
	}
	b := []byte(text)
	if file != "" {
		var r io.Reader = c.stdin
		if file != "-" {
			f, err := os.Open(file)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			r = f
		}
		var err error
		if b, err = io.ReadAll(io.LimitReader(r, maxJSONInput+1)); err != nil {
			return nil, fmt.Errorf("read --%s-file: %w", flag, err)
		}
		if len(b) > maxJSONInput {
			return nil, fmt.Errorf("--%s-file holds more than %d bytes", flag, maxJSONInput)
		}
	}
	if len(b) == 0 {
		return nil, nil
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("--%s is not valid JSON", flag)
	}
	return b, nil
}

var privilegeHeader = []string{"SLUG", "TEMPORARY", "ENDS", "ID"}

func privilegeRow(p client.Privilege) []string {
	temporary, ends := "no", ""
	if p.IsTemporary {
		temporary, ends = p.TemporaryRange, p.TemporaryAccessEndTime
	}
	return []string{p.Slug, temporary, ends, p.ID}
}

func (c *cli) newPrivilegesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "privileges", Short: "Give identities additional privileges in a project, permanent or temporary"}

	var project, identity string
	list := &cobra.Command{
		Use:   "list --project ID --identity ID",
		Short: "List an identity's additional privileges in a project",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if project == "" || identity == "" {
				return errors.New("--project and --identity are required")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			ps, err := cl.Privileges(cmd.Context(), project, identity)
			if err != nil {
				return err
			}
			rows := make([][]string, len(ps))
			for i, p := range ps {
				rows[i] = privilegeRow(p)
			}
			if ps == nil {
				ps = []client.Privilege{}
			}
			return c.print(struct {
				Privileges []client.Privilege `json:"privileges"`
			}{ps}, privilegeHeader, rows)
		},
	}
	projectFlag(list, &project)
	list.Flags().StringVar(&identity, "identity", "", "identity ID")

	var np client.NewPrivilege
	var rules, rulesFile string
	create := &cobra.Command{
		Use:   "create --project ID --identity ID (--permissions JSON | --permissions-file FILE) [--slug S] [--temporary-range 1h [--temporary-start TIME]]",
		Short: "Give an identity member of a project extra permission rules beyond its roles",
		Long: `Give an identity member of a project extra permission rules beyond its roles.
Rules are Infisical's (the form of custom project roles), for example
  [{"subject":"secrets","action":["read","readValue"],"conditions":{"environment":"dev","secretPath":"/app"}}]
You can only grant rules you hold yourself. With --temporary-range the privilege
stops working at its end (start: --temporary-start, RFC 3339, or now).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if np.ProjectID == "" || np.IdentityID == "" {
				return errors.New("--project and --identity are required")
			}
			perms, err := c.jsonInput("permissions", rules, rulesFile)
			if err != nil {
				return err
			}
			if perms == nil {
				return errors.New("--permissions or --permissions-file is required")
			}
			if np.TemporaryAccessStartTime != "" && np.TemporaryRange == "" {
				return errors.New("--temporary-start needs --temporary-range")
			}
			np.Permissions = perms
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			p, err := cl.CreatePrivilege(cmd.Context(), np)
			if err != nil {
				return err
			}
			return c.print(p, privilegeHeader, [][]string{privilegeRow(p)})
		},
	}
	projectFlag(create, &np.ProjectID)
	create.Flags().StringVar(&np.IdentityID, "identity", "", "identity ID")
	create.Flags().StringVar(&np.Slug, "slug", "", "name of the privilege (default: random)")
	create.Flags().StringVar(&rules, "permissions", "", "the rules, a JSON array")
	create.Flags().StringVar(&rulesFile, "permissions-file", "", "file holding the rules (- for standard input)")
	create.Flags().StringVar(&np.TemporaryRange, "temporary-range", "", "make it temporary for this long (30m, 1h, 1d)")
	create.Flags().StringVar(&np.TemporaryAccessStartTime, "temporary-start", "", "when a temporary privilege starts (RFC 3339; default now)")

	get := &cobra.Command{
		Use:   "get PRIVILEGE_ID",
		Short: "Show a privilege with its rules (JSON)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			p, err := cl.PrivilegeByID(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if c.output == "json" {
				return c.print(p, nil, nil)
			}
			if err := c.print(p, privilegeHeader, [][]string{privilegeRow(p)}); err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.stdout, "permissions: %s\n", strings.TrimSpace(string(p.Permissions)))
			return err
		},
	}

	del := &cobra.Command{
		Use:   "delete PRIVILEGE_ID",
		Short: "Remove a privilege",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			p, err := cl.DeletePrivilege(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return c.print(p, privilegeHeader, [][]string{privilegeRow(p)})
		},
	}
	cmd.AddCommand(list, create, get, del)
	return cmd
}

var templateHeader = []string{"NAME", "TYPE", "ENVIRONMENTS", "ROLES", "ID", "DESCRIPTION"}

func templateRow(t client.ProjectTemplate) []string {
	var envs, roles []string
	for _, e := range t.Environments {
		envs = append(envs, e.Slug)
	}
	for _, r := range t.Roles {
		roles = append(roles, r.Slug)
	}
	return []string{t.Name, t.Type, strings.Join(envs, ","), strings.Join(roles, ","), t.ID, t.Description}
}

func (c *cli) newProjectTemplatesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "project-templates", Short: "Manage the environments and roles new projects start with"}

	var typ string
	list := &cobra.Command{
		Use:   "list [--type secret-manager]",
		Short: "List the built-in and the organization's project templates",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			ts, err := cl.ProjectTemplates(cmd.Context(), typ)
			if err != nil {
				return err
			}
			rows := make([][]string, len(ts))
			for i, t := range ts {
				rows[i] = templateRow(t)
			}
			if ts == nil {
				ts = []client.ProjectTemplate{}
			}
			return c.print(struct {
				ProjectTemplates []client.ProjectTemplate `json:"projectTemplates"`
			}{ts}, templateHeader, rows)
		},
	}
	list.Flags().StringVar(&typ, "type", "", "only templates of this project type")

	var nt client.NewProjectTemplate
	var roles, rolesFile, envs, envsFile string
	create := &cobra.Command{
		Use:   "create --name NAME [--type secret-manager] [--environments JSON] [--roles JSON]",
		Short: "Create a project template",
		Long: `Create a project template. A project created with --template NAME (or the API's
"template") starts with its environments and custom roles, for example
  --environments '[{"name":"Development","slug":"dev","position":1}]'
  --roles '[{"name":"Auditor","slug":"auditor","permissions":[{"subject":"secrets","action":["read"]}]}]'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if nt.Name == "" {
				return errors.New("--name is required")
			}
			var err error
			if nt.Roles, err = c.jsonInput("roles", roles, rolesFile); err != nil {
				return err
			}
			if nt.Environments, err = c.jsonInput("environments", envs, envsFile); err != nil {
				return err
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			t, err := cl.CreateProjectTemplate(cmd.Context(), nt)
			if err != nil {
				return err
			}
			return c.print(t, templateHeader, [][]string{templateRow(t)})
		},
	}
	create.Flags().StringVar(&nt.Name, "name", "", "template name (a slug)")
	create.Flags().StringVar(&nt.Description, "description", "", "description")
	create.Flags().StringVar(&nt.Type, "type", "secret-manager", "project type")
	create.Flags().StringVar(&roles, "roles", "", "custom roles, a JSON array of {name, slug, permissions}")
	create.Flags().StringVar(&rolesFile, "roles-file", "", "file holding the roles (- for standard input)")
	create.Flags().StringVar(&envs, "environments", "", "environments, a JSON array of {name, slug, position}")
	create.Flags().StringVar(&envsFile, "environments-file", "", "file holding the environments (- for standard input)")

	get := &cobra.Command{
		Use:   "get TEMPLATE_ID",
		Short: "Show a project template",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			t, err := cl.ProjectTemplateByID(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return c.print(t, templateHeader, [][]string{templateRow(t)})
		},
	}

	del := &cobra.Command{
		Use:   "delete TEMPLATE_ID",
		Short: "Delete a project template (projects made from it keep what it gave them)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			t, err := cl.DeleteProjectTemplate(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return c.print(t, templateHeader, [][]string{templateRow(t)})
		},
	}
	cmd.AddCommand(list, create, get, del)
	return cmd
}
