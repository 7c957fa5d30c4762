package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockbox-dev/lockbox/internal/client"
)

type leaseOut struct {
	ID               string    `json:"id"`
	ExternalEntityID string    `json:"externalEntityId"`
	ExpireAt         time.Time `json:"expireAt"`
	Status           string    `json:"status"`
	StatusDetails    *string   `json:"statusDetails"`
}

// dynScope resolves --projectId to the slug the dynamic-secret API wants.
func (c *cli) dynScope(ctx context.Context, sc scope) (*client.Client, map[string]any, error) {
	cl, err := c.client(ctx)
	if err != nil {
		return nil, nil, err
	}
	slug, err := projectSlug(ctx, cl, sc.projectID)
	if err != nil {
		return nil, nil, err
	}
	return cl, map[string]any{"projectSlug": slug, "environmentSlug": sc.env, "path": sc.path}, nil
}

func scopeQuery(b map[string]any) string {
	return url.Values{"projectSlug": {b["projectSlug"].(string)}, "environmentSlug": {b["environmentSlug"].(string)}, "path": {b["path"].(string)}}.Encode()
}

func with(b map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range b {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func leaseRow(l leaseOut) []string {
	return []string{l.ID, l.ExternalEntityID, l.Status, l.ExpireAt.Local().Format(time.RFC3339)}
}

var leaseHeader = []string{"LEASE ID", "USERNAME", "STATUS", "EXPIRES"}

func (c *cli) newDynamicCmd() *cobra.Command {
	var sc scope
	cmd := &cobra.Command{Use: "dynamic-secrets", Short: "Dynamic secrets and their leases"}

	list := &cobra.Command{
		Use:   "list",
		Short: "List the dynamic secrets in --path",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, b, err := c.dynScope(cmd.Context(), sc)
			if err != nil {
				return err
			}
			var out struct {
				DynamicSecrets []struct {
					ID         string `json:"id"`
					Name       string `json:"name"`
					Type       string `json:"type"`
					DefaultTTL string `json:"defaultTTL"`
					MaxTTL     string `json:"maxTTL"`
				} `json:"dynamicSecrets"`
			}
			if err := cl.Do(cmd.Context(), http.MethodGet, "/api/v1/dynamic-secrets?"+scopeQuery(b), nil, &out); err != nil {
				return err
			}
			rows := make([][]string, len(out.DynamicSecrets))
			for i, d := range out.DynamicSecrets {
				rows[i] = []string{d.Name, d.Type, d.DefaultTTL, d.MaxTTL, d.ID}
			}
			return c.print(out.DynamicSecrets, []string{"NAME", "TYPE", "DEFAULT TTL", "MAX TTL", "ID"}, rows)
		},
	}
	sc.flags(list)

	var typ, inputsFile, defTTL, maxTTL, userTmpl string
	create := &cobra.Command{
		Use:   "create NAME --type TYPE --inputs FILE.json",
		Short: "Create a dynamic secret (see docs/providers.md for each type's inputs)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := os.ReadFile(inputsFile)
			if err != nil {
				return err
			}
			var inputs map[string]any
			if err := json.Unmarshal(raw, &inputs); err != nil {
				return fmt.Errorf("%s is not a JSON object: %v", inputsFile, err)
			}
			cl, b, err := c.dynScope(cmd.Context(), sc)
			if err != nil {
				return err
			}
			body := with(b, "name", args[0], "defaultTTL", defTTL, "provider", map[string]any{"type": typ, "inputs": inputs})
			if maxTTL != "" {
				body["maxTTL"] = maxTTL
			}
			if userTmpl != "" {
				body["usernameTemplate"] = userTmpl
			}
			var out struct {
				DynamicSecret struct {
					ID   string `json:"id"`
					Name string `json:"name"`
					Type string `json:"type"`
				} `json:"dynamicSecret"`
			}
			if err := cl.Do(cmd.Context(), http.MethodPost, "/api/v1/dynamic-secrets", body, &out); err != nil {
				return err
			}
			d := out.DynamicSecret
			return c.print(d, []string{"NAME", "TYPE", "ID"}, [][]string{{d.Name, d.Type, d.ID}})
		},
	}
	sc.flags(create)
	create.Flags().StringVar(&typ, "type", "", "provider type: sql-database, redis, rabbit-mq, ldap, totp")
	create.Flags().StringVar(&inputsFile, "inputs", "", "JSON file with the provider's inputs")
	create.Flags().StringVar(&defTTL, "default-ttl", "1h", "default lease TTL")
	create.Flags().StringVar(&maxTTL, "max-ttl", "", "longest lease TTL")
	create.Flags().StringVar(&userTmpl, "username-template", "", "username template, e.g. app_{{randomUsername}}")
	create.MarkFlagRequired("type")
	create.MarkFlagRequired("inputs")

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a dynamic secret after revoking its leases",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, b, err := c.dynScope(cmd.Context(), sc)
			if err != nil {
				return err
			}
			forced, _ := cmd.Flags().GetBool("force")
			if err := cl.Do(cmd.Context(), http.MethodDelete, "/api/v1/dynamic-secrets/"+pathEscape(args[0]), with(b, "isForced", forced), nil); err != nil {
				return err
			}
			return c.print(map[string]string{"name": args[0], "action": "deleted"}, []string{"NAME", "ACTION"}, [][]string{{args[0], "deleted"}})
		},
	}
	sc.flags(del)
	del.Flags().Bool("force", false, "delete even if a lease cannot be revoked (its credential is left behind)")

	cmd.AddCommand(list, create, del, c.newLeaseCmd())
	return cmd
}

func (c *cli) newLeaseCmd() *cobra.Command {
	var sc scope
	cmd := &cobra.Command{Use: "lease", Short: "Create, renew, revoke and list leases"}
	var ttl string
	create := &cobra.Command{
		Use:   "create DYNAMIC_SECRET_NAME",
		Short: "Create a lease and print its credentials",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, b, err := c.dynScope(cmd.Context(), sc)
			if err != nil {
				return err
			}
			var out struct {
				Lease leaseOut       `json:"lease"`
				Data  map[string]any `json:"data"`
			}
			if err := cl.Do(cmd.Context(), http.MethodPost, "/api/v1/dynamic-secrets/leases", with(b, "dynamicSecretName", args[0], "ttl", ttl), &out); err != nil {
				return err
			}
			if c.output == "json" {
				return c.print(out, nil, nil)
			}
			rows := [][]string{{"LEASE ID", out.Lease.ID}, {"EXPIRES", out.Lease.ExpireAt.Local().Format(time.RFC3339)}}
			keys := make([]string, 0, len(out.Data))
			for k := range out.Data {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				v := out.Data[k]
				s, ok := v.(string)
				if !ok {
					b, _ := json.Marshal(v)
					s = string(b)
				}
				rows = append(rows, []string{k, s})
			}
			return c.print(nil, []string{"KEY", "VALUE"}, rows)
		},
	}
	sc.flags(create)
	create.Flags().StringVar(&ttl, "ttl", "", "lease TTL (default: the dynamic secret's default TTL)")

	// change runs one request on a lease and prints the lease it answers.
	change := func(method, suffix string, body func(scope map[string]any) map[string]any) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			cl, b, err := c.dynScope(cmd.Context(), sc)
			if err != nil {
				return err
			}
			var out struct {
				Lease leaseOut `json:"lease"`
			}
			if err := cl.Do(cmd.Context(), method, "/api/v1/dynamic-secrets/leases/"+pathEscape(args[0])+suffix, body(b), &out); err != nil {
				return err
			}
			return c.print(out.Lease, leaseHeader, [][]string{leaseRow(out.Lease)})
		}
	}
	renew := &cobra.Command{
		Use:   "renew LEASE_ID",
		Short: "Extend a lease to now + --ttl",
		Args:  cobra.ExactArgs(1),
		RunE:  change(http.MethodPost, "/renew", func(b map[string]any) map[string]any { return with(b, "ttl", ttl) }),
	}
	sc.flags(renew)
	renew.Flags().StringVar(&ttl, "ttl", "", "new TTL from now")

	revoke := &cobra.Command{
		Use:   "revoke LEASE_ID",
		Short: "Revoke a lease now",
		Args:  cobra.ExactArgs(1),
		RunE:  change(http.MethodDelete, "", func(b map[string]any) map[string]any { return b }),
	}
	sc.flags(revoke)

	list := &cobra.Command{
		Use:   "list DYNAMIC_SECRET_NAME",
		Short: "List a dynamic secret's leases",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, b, err := c.dynScope(cmd.Context(), sc)
			if err != nil {
				return err
			}
			var out struct {
				Leases []leaseOut `json:"leases"`
			}
			if err := cl.Do(cmd.Context(), http.MethodGet, "/api/v1/dynamic-secrets/"+pathEscape(args[0])+"/leases?"+scopeQuery(b), nil, &out); err != nil {
				return err
			}
			rows := make([][]string, len(out.Leases))
			for i, l := range out.Leases {
				rows[i] = leaseRow(l)
			}
			return c.print(out.Leases, leaseHeader, rows)
		},
	}
	sc.flags(list)
	cmd.AddCommand(create, renew, revoke, list)
	return cmd
}
