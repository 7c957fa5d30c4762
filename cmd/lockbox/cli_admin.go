package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockbox-dev/lockbox/internal/client"
)

type projectOut struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Slug string `json:"slug"`
}

func (c *cli) newProjectsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "projects", Short: "Create and list projects"}
	cmd.AddCommand(c.newProjectMembersCmd(), c.newProjectGroupsCmd())
	var plain bool
	var slug, template string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a project (with the dev, staging and prod environments)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{"projectName": args[0]}
			if slug != "" {
				body["slug"] = slug
			}
			if template != "" {
				body["template"] = template
			}
			var out struct {
				Project projectOut `json:"project"`
			}
			if err := c.call(cmd.Context(), http.MethodPost, "/api/v1/projects", body, &out); err != nil {
				return err
			}
			if plain {
				_, err := fmt.Fprintln(c.stdout, out.Project.ID)
				return err
			}
			p := out.Project
			return c.print(p, []string{"ID", "NAME", "SLUG"}, [][]string{{p.ID, p.Name, p.Slug}})
		},
	}
	create.Flags().BoolVar(&plain, "plain", false, "print only the new project's ID")
	create.Flags().StringVar(&slug, "slug", "", "slug (default: from the name)")
	create.Flags().StringVar(&template, "template", "", "start from this project template's environments and roles (lockbox project-templates)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the projects you can see",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Projects []projectOut `json:"projects"`
			}
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/projects", nil, &out); err != nil {
				return err
			}
			rows := make([][]string, len(out.Projects))
			for i, p := range out.Projects {
				rows[i] = []string{p.ID, p.Name, p.Slug}
			}
			return c.print(out.Projects, []string{"ID", "NAME", "SLUG"}, rows)
		},
	}
	var role string
	addIdentity := &cobra.Command{
		Use:   "add-identity PROJECT_ID IDENTITY_ID [--role ROLE]",
		Short: "Make a machine identity a member of a project (role: admin, member, viewer, no-access or a custom role's slug)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				IdentityMembership struct {
					ID    string `json:"id"`
					Roles []struct {
						Role           string  `json:"role"`
						CustomRoleSlug *string `json:"customRoleSlug"`
					} `json:"roles"`
				} `json:"identityMembership"`
			}
			path := "/api/v1/projects/" + pathEscape(args[0]) + "/identity-memberships/" + pathEscape(args[1])
			if err := c.call(cmd.Context(), http.MethodPost, path, map[string]any{"role": role}, &out); err != nil {
				return err
			}
			m := out.IdentityMembership
			roles := make([]string, len(m.Roles))
			for i, r := range m.Roles {
				roles[i] = r.Role
				if r.CustomRoleSlug != nil && *r.CustomRoleSlug != "" {
					roles[i] = *r.CustomRoleSlug
				}
			}
			return c.print(m, []string{"MEMBERSHIP", "ROLES"}, [][]string{{m.ID, strings.Join(roles, ",")}})
		},
	}
	addIdentity.Flags().StringVar(&role, "role", "member", "project role")
	cmd.AddCommand(create, list, addIdentity)
	return cmd
}

type envOut struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Slug     string `json:"slug"`
	Position int    `json:"position"`
}

func envs(ctx context.Context, cl *client.Client, projectID string) ([]envOut, error) {
	var out struct {
		Environments []envOut `json:"environments"`
	}
	err := cl.Do(ctx, http.MethodGet, "/api/v1/projects/"+pathEscape(projectID)+"/environments", nil, &out)
	return out.Environments, err
}

func (c *cli) newEnvironmentsCmd() *cobra.Command {
	var projectID string
	cmd := &cobra.Command{Use: "environments", Short: "List, create and delete a project's environments"}
	cmd.PersistentFlags().StringVar(&projectID, "projectId", "", "project ID (required)")
	cmd.MarkPersistentFlagRequired("projectId")
	list := &cobra.Command{
		Use:   "list",
		Short: "List environments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			es, err := envs(cmd.Context(), cl, projectID)
			if err != nil {
				return err
			}
			rows := make([][]string, len(es))
			for i, e := range es {
				rows[i] = []string{e.Slug, e.Name, e.ID}
			}
			return c.print(es, []string{"SLUG", "NAME", "ID"}, rows)
		},
	}
	var slug string
	create := &cobra.Command{
		Use:   "create NAME --slug SLUG",
		Short: "Create an environment",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Environment envOut `json:"environment"`
			}
			if err := c.call(cmd.Context(), http.MethodPost, "/api/v1/projects/"+pathEscape(projectID)+"/environments",
				map[string]any{"name": args[0], "slug": slug}, &out); err != nil {
				return err
			}
			e := out.Environment
			return c.print(e, []string{"SLUG", "NAME", "ID"}, [][]string{{e.Slug, e.Name, e.ID}})
		},
	}
	create.Flags().StringVar(&slug, "slug", "", "environment slug (required)")
	create.MarkFlagRequired("slug")
	del := &cobra.Command{
		Use:   "delete SLUG",
		Short: "Delete an environment and every secret in it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			es, err := envs(cmd.Context(), cl, projectID)
			if err != nil {
				return err
			}
			for _, e := range es {
				if e.Slug == args[0] {
					if err := cl.Do(cmd.Context(), http.MethodDelete, "/api/v1/projects/"+pathEscape(projectID)+"/environments/"+pathEscape(e.ID), nil, nil); err != nil {
						return err
					}
					return c.print(e, []string{"SLUG", "ACTION"}, [][]string{{e.Slug, "deleted"}})
				}
			}
			return fmt.Errorf("no environment %q in project %s", args[0], projectID)
		},
	}
	cmd.AddCommand(list, create, del)
	return cmd
}

// orgID is --org-id, else the organization of the calling machine identity,
// else the caller's only organization.
func orgID(ctx context.Context, cl *client.Client, flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if id, err := cl.IdentityOrgID(ctx); err == nil && id != "" {
		return id, nil
	}
	var orgs struct {
		Organizations []struct {
			ID string `json:"id"`
		} `json:"organizations"`
	}
	if err := cl.Do(ctx, http.MethodGet, "/api/v1/organization", nil, &orgs); err != nil {
		return "", err
	}
	if len(orgs.Organizations) != 1 {
		return "", fmt.Errorf("you belong to %d organizations: give --org-id", len(orgs.Organizations))
	}
	return orgs.Organizations[0].ID, nil
}

func (c *cli) newIdentitiesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "identities", Short: "Machine identities, their login methods and client secrets"}
	var org, role string
	var plain bool
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a machine identity in the organization",
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
			var out struct {
				Identity struct {
					ID   string `json:"id"`
					Name string `json:"name"`
				} `json:"identity"`
			}
			if err := cl.Do(cmd.Context(), http.MethodPost, "/api/v1/identities", map[string]any{"name": args[0], "organizationId": oid, "role": role}, &out); err != nil {
				return err
			}
			if plain {
				_, err := fmt.Fprintln(c.stdout, out.Identity.ID)
				return err
			}
			return c.print(out.Identity, []string{"ID", "NAME", "ROLE"}, [][]string{{out.Identity.ID, out.Identity.Name, role}})
		},
	}
	create.Flags().StringVar(&org, "org-id", "", "organization ID (default: yours)")
	create.Flags().StringVar(&role, "role", "member", "organization role: admin, member or no-access")
	create.Flags().BoolVar(&plain, "plain", false, "print only the new identity's ID")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the organization's machine identities",
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
			var out struct {
				Identities []struct {
					Role     string `json:"role"`
					Identity struct {
						ID          string   `json:"id"`
						Name        string   `json:"name"`
						AuthMethods []string `json:"authMethods"`
					} `json:"identity"`
				} `json:"identities"`
			}
			if err := cl.Do(cmd.Context(), http.MethodGet, "/api/v1/identities?orgId="+url.QueryEscape(oid)+"&limit=1000", nil, &out); err != nil {
				return err
			}
			rows := make([][]string, len(out.Identities))
			for i, m := range out.Identities {
				rows[i] = []string{m.Identity.ID, m.Identity.Name, m.Role, strings.Join(m.Identity.AuthMethods, ",")}
			}
			return c.print(out.Identities, []string{"ID", "NAME", "ROLE", "AUTH METHODS"}, rows)
		},
	}
	list.Flags().StringVar(&org, "org-id", "", "organization ID (default: yours)")
	cmd.AddCommand(create, list, c.newUACmd(), c.newClientSecretsCmd())
	cmd.AddCommand(c.newAuthMethodCmds()...)
	return cmd
}

func (c *cli) newUACmd() *cobra.Command {
	cmd := &cobra.Command{Use: "universal-auth", Short: "Universal Auth of an identity"}
	var ttl, maxTTL, uses int64
	var plain bool
	attach := &cobra.Command{
		Use:   "attach IDENTITY_ID",
		Short: "Attach Universal Auth to an identity; prints its client ID",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{}
			if cmd.Flags().Changed("access-token-ttl") {
				body["accessTokenTTL"] = ttl
			}
			if cmd.Flags().Changed("access-token-max-ttl") {
				body["accessTokenMaxTTL"] = maxTTL
			}
			if cmd.Flags().Changed("access-token-num-uses-limit") {
				body["accessTokenNumUsesLimit"] = uses
			}
			var out struct {
				UA struct {
					ClientID          string `json:"clientId"`
					AccessTokenTTL    int64  `json:"accessTokenTTL"`
					AccessTokenMaxTTL int64  `json:"accessTokenMaxTTL"`
				} `json:"identityUniversalAuth"`
			}
			if err := c.call(cmd.Context(), http.MethodPost, "/api/v1/auth/universal-auth/identities/"+pathEscape(args[0]), body, &out); err != nil {
				return err
			}
			if plain {
				_, err := fmt.Fprintln(c.stdout, out.UA.ClientID)
				return err
			}
			u := out.UA
			return c.print(u, []string{"CLIENT ID", "ACCESS TOKEN TTL", "MAX TTL"},
				[][]string{{u.ClientID, strconv.FormatInt(u.AccessTokenTTL, 10), strconv.FormatInt(u.AccessTokenMaxTTL, 10)}})
		},
	}
	attach.Flags().Int64Var(&ttl, "access-token-ttl", 0, "access token lifetime in seconds (default 2592000)")
	attach.Flags().Int64Var(&maxTTL, "access-token-max-ttl", 0, "longest lifetime through renewals, seconds")
	attach.Flags().Int64Var(&uses, "access-token-num-uses-limit", 0, "uses per access token (0: unlimited)")
	attach.Flags().BoolVar(&plain, "plain", false, "print only the client ID")
	cmd.AddCommand(attach)
	return cmd
}

type clientSecretOut struct {
	ID                       string `json:"id"`
	Description              string `json:"description"`
	ClientSecretPrefix       string `json:"clientSecretPrefix"`
	ClientSecretNumUses      int64  `json:"clientSecretNumUses"`
	ClientSecretNumUsesLimit int64  `json:"clientSecretNumUsesLimit"`
	ClientSecretTTL          int64  `json:"clientSecretTTL"`
	IsClientSecretRevoked    bool   `json:"isClientSecretRevoked"`
	CreatedAt                string `json:"createdAt"`
}

func csRow(s clientSecretOut) []string {
	return []string{s.ID, s.ClientSecretPrefix + "…", s.Description, fmt.Sprintf("%d/%d", s.ClientSecretNumUses, s.ClientSecretNumUsesLimit),
		strconv.FormatBool(s.IsClientSecretRevoked), s.CreatedAt}
}

var csHeader = []string{"ID", "PREFIX", "DESCRIPTION", "USES", "REVOKED", "CREATED"}

func (c *cli) newClientSecretsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "client-secrets", Short: "An identity's Universal Auth client secrets"}
	var desc string
	var uses, ttl int64
	var plain bool
	create := &cobra.Command{
		Use:   "create IDENTITY_ID",
		Short: "Create a client secret (shown once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				ClientSecret     string          `json:"clientSecret"`
				ClientSecretData clientSecretOut `json:"clientSecretData"`
			}
			if err := c.call(cmd.Context(), http.MethodPost, "/api/v1/auth/universal-auth/identities/"+pathEscape(args[0])+"/client-secrets",
				map[string]any{"description": desc, "numUsesLimit": uses, "ttl": ttl}, &out); err != nil {
				return err
			}
			if plain {
				_, err := fmt.Fprintln(c.stdout, out.ClientSecret)
				return err
			}
			return c.print(out, []string{"CLIENT SECRET", "ID"}, [][]string{{out.ClientSecret, out.ClientSecretData.ID}})
		},
	}
	create.Flags().StringVar(&desc, "description", "", "what the secret is for")
	create.Flags().Int64Var(&uses, "num-uses-limit", 0, "logins allowed (0: unlimited)")
	create.Flags().Int64Var(&ttl, "ttl", 0, "lifetime in seconds (0: no expiry)")
	create.Flags().BoolVar(&plain, "plain", false, "print only the client secret")
	list := &cobra.Command{
		Use:   "list IDENTITY_ID",
		Short: "List client secrets (never their values)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				ClientSecretData []clientSecretOut `json:"clientSecretData"`
			}
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/auth/universal-auth/identities/"+pathEscape(args[0])+"/client-secrets", nil, &out); err != nil {
				return err
			}
			rows := make([][]string, len(out.ClientSecretData))
			for i, s := range out.ClientSecretData {
				rows[i] = csRow(s)
			}
			return c.print(out.ClientSecretData, csHeader, rows)
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke IDENTITY_ID CLIENT_SECRET_ID",
		Short: "Revoke a client secret",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				ClientSecretData clientSecretOut `json:"clientSecretData"`
			}
			if err := c.call(cmd.Context(), http.MethodPost, "/api/v1/auth/universal-auth/identities/"+pathEscape(args[0])+"/client-secrets/"+pathEscape(args[1])+"/revoke", nil, &out); err != nil {
				return err
			}
			return c.print(out.ClientSecretData, csHeader, [][]string{csRow(out.ClientSecretData)})
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func (c *cli) newAuditLogsCmd() *cobra.Command {
	var eventType, actor, actorType, projectID, start, end string
	var limit, offset int
	cmd := &cobra.Command{
		Use:   "audit-logs",
		Short: "List the organization's audit log, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"limit": {strconv.Itoa(limit)}, "offset": {strconv.Itoa(offset)}}
			for k, v := range map[string]string{"eventType": eventType, "actor": actor, "actorType": actorType, "projectId": projectID} {
				if v != "" {
					q.Set(k, v)
				}
			}
			for k, v := range map[string]string{"startDate": start, "endDate": end} {
				if v == "" {
					continue
				}
				t, err := parseWhen(v)
				if err != nil {
					return fmt.Errorf("--%s: %v", map[string]string{"startDate": "since", "endDate": "until"}[k], err)
				}
				q.Set(k, t.UTC().Format(time.RFC3339))
			}
			var out struct {
				AuditLogs []struct {
					CreatedAt string  `json:"createdAt"`
					ProjectID *string `json:"projectId"`
					IPAddress string  `json:"ipAddress"`
					Event     struct {
						Type     string         `json:"type"`
						Metadata map[string]any `json:"metadata"`
					} `json:"event"`
					Actor struct {
						Type     string         `json:"type"`
						Metadata map[string]any `json:"metadata"`
					} `json:"actor"`
				} `json:"auditLogs"`
			}
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/organization/audit-logs?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			rows := make([][]string, len(out.AuditLogs))
			for i, l := range out.AuditLogs {
				who := l.Actor.Type
				for _, k := range []string{"name", "email", "identityId", "userId"} {
					if v, ok := l.Actor.Metadata[k].(string); ok && v != "" {
						who += ":" + v
						break
					}
				}
				meta, _ := json.Marshal(l.Event.Metadata)
				proj := ""
				if l.ProjectID != nil {
					proj = *l.ProjectID
				}
				rows[i] = []string{l.CreatedAt, l.Event.Type, who, proj, truncateCell(string(meta), 80)}
			}
			return c.print(out.AuditLogs, []string{"TIME", "EVENT", "ACTOR", "PROJECT", "DETAILS"}, rows)
		},
	}
	f := cmd.Flags()
	f.StringVar(&eventType, "event-type", "", "only these event types (comma list), e.g. create-secret,get-secrets")
	f.StringVar(&actor, "actor", "", "only this actor (user or identity ID)")
	f.StringVar(&actorType, "actor-type", "", "user or identity")
	f.StringVar(&projectID, "projectId", "", "only this project")
	f.StringVar(&start, "since", "", "from this time (RFC 3339) or duration ago (e.g. 1h)")
	f.StringVar(&end, "until", "", "up to this time (RFC 3339) or duration ago")
	f.IntVar(&limit, "limit", 20, "how many (1-1000)")
	f.IntVar(&offset, "offset", 0, "skip this many")
	return cmd
}

// parseWhen reads an RFC 3339 time or a duration before now.
func parseWhen(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration", s)
	}
	return time.Now().Add(-d), nil
}

func truncateCell(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
