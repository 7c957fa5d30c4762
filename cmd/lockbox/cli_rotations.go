package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lockbox-dev/lockbox/internal/client"
)

var connHeader = []string{"NAME", "APP", "ID", "TARGET"}

func connRow(a client.AppConnection) []string {
	target := ""
	if h, ok := a.Credentials["host"].(string); ok {
		target = h
		if p, ok := a.Credentials["port"].(float64); ok {
			target += ":" + strconv.Itoa(int(p))
		}
	} else if u, ok := a.Credentials["url"].(string); ok {
		target = u
	}
	return []string{a.Name, a.App, a.ID, target}
}

func (c *cli) newConnectionsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "connections", Short: "Manage app connections: the admin credentials secret rotations act with"}

	var app string
	list := &cobra.Command{
		Use: "list [--app postgres|mysql|ldap|redis]", Short: "List the organization's app connections", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			cs, err := cl.AppConnections(cmd.Context(), app)
			if err != nil {
				return err
			}
			rows := make([][]string, len(cs))
			for i, a := range cs {
				rows[i] = connRow(a)
			}
			return c.print(cs, connHeader, rows)
		},
	}
	list.Flags().StringVar(&app, "app", "", "only connections of this app")

	var n client.NewAppConnection
	var credFile string
	create := &cobra.Command{
		Use:   "create --app APP --name NAME --credentials-file FILE",
		Short: "Create an app connection; the server connects to prove the credentials",
		Long: "Create an app connection. The credentials are a JSON object read from --credentials-file\n" +
			`("-": standard input), never from the command line, e.g. {"host":"db.internal","port":5432,` + "\n" +
			`"database":"app","username":"admin","password":"..."} (postgres, mysql), {"host","port","username","password"}` + "\n" +
			`(redis) or {"url":"ldaps://dc.internal","dn":"cn=admin,...","password":"...","provider":"openldap"} (ldap).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if n.App == "" || n.Name == "" || credFile == "" {
				return errors.New("--app, --name and --credentials-file are required")
			}
			b, err := c.jsonInput("credentials", "", credFile)
			if err != nil {
				return err
			}
			if err := json.Unmarshal(b, &n.Credentials); err != nil || n.Credentials == nil {
				return errors.New("the credentials file is not a JSON object")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			a, err := cl.CreateAppConnection(cmd.Context(), n)
			if err != nil {
				return err
			}
			return c.print(a, connHeader, [][]string{connRow(a)})
		},
	}
	create.Flags().StringVar(&n.App, "app", "", "postgres, mysql, ldap or redis")
	create.Flags().StringVar(&n.Name, "name", "", "connection name (a slug)")
	create.Flags().StringVar(&n.Description, "description", "", "description")
	create.Flags().StringVar(&credFile, "credentials-file", "", `JSON credentials file ("-": standard input)`)
	create.Flags().StringArrayVar(&n.RotationPrincipals, "rotation-principal", nil,
		"a principal (name, or pattern with *) that members who may only use the connection may rotate; repeatable")

	get := &cobra.Command{
		Use: "get APP CONNECTION_ID", Short: "Show an app connection (never its password)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			a, err := cl.AppConnection(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return c.print(a, connHeader, [][]string{connRow(a)})
		},
	}
	del := &cobra.Command{
		Use: "delete APP CONNECTION_ID", Short: "Delete an app connection no rotation uses", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			a, err := cl.DeleteAppConnection(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return c.print(a, connHeader, [][]string{connRow(a)})
		},
	}
	cmd.AddCommand(list, create, get, del)
	return cmd
}

var rotHeader = []string{"NAME", "TYPE", "STATUS", "ACTIVE", "NEXT", "ID", "MESSAGE"}

func rotRow(r client.SecretRotation) []string {
	next, msg := "-", ""
	if r.NextRotationAt != nil {
		next = *r.NextRotationAt
	}
	if r.LastRotationMessage != nil {
		msg = *r.LastRotationMessage
	}
	active := r.Parameters["username1"]
	if r.ActiveIndex == 1 {
		active = r.Parameters["username2"]
	}
	if r.Type == "ldap-password" {
		active = r.Parameters["dn"]
	}
	return []string{r.Name, r.Type, r.RotationStatus, active, next, r.ID, msg}
}

func (c *cli) newRotationsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "rotations", Short: "Manage secret rotations: static credentials that change on a schedule"}

	var project string
	list := &cobra.Command{
		Use: "list --project ID", Short: "List a project's secret rotations", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if project == "" {
				return errors.New("--project is required")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			rs, err := cl.SecretRotations(cmd.Context(), project)
			if err != nil {
				return err
			}
			rows := make([][]string, len(rs))
			for i, r := range rs {
				rows[i] = rotRow(r)
			}
			return c.print(rs, rotHeader, rows)
		},
	}
	projectFlag(list, &project)

	var n client.NewSecretRotation
	var at, user1, user2, dn, scope, mapUser, mapPass, mapDN string
	var manual bool
	create := &cobra.Command{
		Use:   "create --type TYPE --project ID --connection ID --env ENV --name NAME --map-username KEY --map-password KEY ...",
		Short: "Create a secret rotation; its first rotation runs at once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if n.Type == "" || n.ProjectID == "" || n.ConnectionID == "" || n.Environment == "" || n.Name == "" {
				return errors.New("--type, --project, --connection, --env and --name are required")
			}
			if at != "" {
				h, m, ok := strings.Cut(at, ":")
				hh, err1 := strconv.Atoi(h)
				mm, err2 := strconv.Atoi(m)
				if !ok || err1 != nil || err2 != nil {
					return fmt.Errorf("--at %q: want HH:MM (UTC)", at)
				}
				n.RotateAtUtc = map[string]int{"hours": hh, "minutes": mm}
			}
			n.Parameters = map[string]string{}
			for k, v := range map[string]string{"username1": user1, "username2": user2, "dn": dn, "permissionScope": scope} {
				if v != "" {
					n.Parameters[k] = v
				}
			}
			n.SecretsMapping = map[string]string{"password": mapPass}
			if n.Type == "ldap-password" {
				n.SecretsMapping["dn"] = mapDN
			} else {
				n.SecretsMapping["username"] = mapUser
			}
			if manual {
				f := false
				n.IsAutoRotationEnabled = &f
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			r, err := cl.CreateSecretRotation(cmd.Context(), n)
			if err != nil {
				return err
			}
			return c.print(r, rotHeader, [][]string{rotRow(r)})
		},
	}
	f := create.Flags()
	f.StringVar(&n.Type, "type", "", "postgres-credentials, mysql-credentials, redis-credentials or ldap-password")
	projectFlag(create, &n.ProjectID)
	f.StringVar(&n.ConnectionID, "connection", "", "app connection ID")
	f.StringVar(&n.Environment, "env", "", "environment slug")
	f.StringVar(&n.SecretPath, "path", "/", "secret path")
	f.StringVar(&n.Name, "name", "", "rotation name (a slug)")
	f.IntVar(&n.RotationInterval, "interval", 30, "days between rotations")
	f.StringVar(&at, "at", "", "time of day of the rotation, HH:MM UTC (default 00:00)")
	f.BoolVar(&manual, "manual", false, "rotate only when asked (no schedule)")
	f.StringVar(&user1, "username1", "", "first of the two users that alternate (databases, redis)")
	f.StringVar(&user2, "username2", "", "second user")
	f.StringVar(&dn, "dn", "", "ldap-password: the entry whose password rotates")
	f.StringVar(&scope, "scope", "", `redis-credentials: the users' ACL rules, e.g. "~app:* +@read"`)
	f.StringVar(&mapUser, "map-username", "", "secret that receives the user name")
	f.StringVar(&mapPass, "map-password", "", "secret that receives the password")
	f.StringVar(&mapDN, "map-dn", "", "ldap-password: secret that receives the DN")

	rotate := &cobra.Command{
		Use: "rotate TYPE ROTATION_ID", Short: "Rotate now", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			r, err := cl.RotateSecrets(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return c.print(r, rotHeader, [][]string{rotRow(r)})
		},
	}
	var delSecrets, revoke bool
	del := &cobra.Command{
		Use: "delete TYPE ROTATION_ID [--delete-secrets] [--revoke]", Short: "Delete a secret rotation", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			r, err := cl.DeleteSecretRotation(cmd.Context(), args[0], args[1], delSecrets, revoke)
			if err != nil {
				return err
			}
			return c.print(r, rotHeader, [][]string{rotRow(r)})
		},
	}
	del.Flags().BoolVar(&delSecrets, "delete-secrets", false, "also delete the secrets it writes")
	del.Flags().BoolVar(&revoke, "revoke", false, "first make the credentials it issued stop working (revokeGeneratedCredentials)")
	cmd.AddCommand(list, create, rotate, del)
	return cmd
}
