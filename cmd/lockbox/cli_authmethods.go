package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
	_ "github.com/lockbox-dev/lockbox/internal/authmethod/all" // the registered methods
)

// newAuthMethodCmds makes `lockbox identities <method> attach|get|update|revoke`
// for every registered platform login method (JWT, OIDC, Kubernetes, ...).
func (c *cli) newAuthMethodCmds() []*cobra.Command {
	var cmds []*cobra.Command
	for _, reg := range authmethod.All() {
		cmds = append(cmds, c.newAuthMethodCmd(reg))
	}
	return cmds
}

func (c *cli) newAuthMethodCmd(reg authmethod.Registration) *cobra.Command {
	cmd := &cobra.Command{Use: reg.Name, Short: reg.DisplayName + " of an identity"}
	path := func(id string) string { return "/api/v1/auth/" + reg.Name + "/identities/" + pathEscape(id) }
	// show prints the configuration: the fields as JSON, or a sorted
	// field/value table.
	show := func(out map[string]json.RawMessage) error {
		var cfg map[string]any
		json.Unmarshal(out[reg.WireKey], &cfg)
		keys := make([]string, 0, len(cfg))
		for k := range cfg {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		rows := make([][]string, len(keys))
		for i, k := range keys {
			v, _ := json.Marshal(cfg[k])
			rows[i] = []string{k, strings.Trim(string(v), `"`)}
		}
		return c.print(cfg, []string{"FIELD", "VALUE"}, rows)
	}
	var config string
	// body reads --config: a JSON object, inline or @FILE.
	body := func() (map[string]any, error) {
		raw := []byte(config)
		if rest, ok := strings.CutPrefix(config, "@"); ok {
			b, err := os.ReadFile(rest)
			if err != nil {
				return nil, fmt.Errorf("--config: %v", err)
			}
			raw = b
		}
		m := map[string]any{}
		if strings.TrimSpace(string(raw)) == "" {
			return m, nil
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("--config must be a JSON object (inline or @FILE): %v", err)
		}
		return m, nil
	}
	write := func(method string) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			b, err := body()
			if err != nil {
				return err
			}
			var out map[string]json.RawMessage
			if err := c.call(cmd.Context(), method, path(args[0]), b, &out); err != nil {
				return err
			}
			return show(out)
		}
	}
	read := func(method string) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			var out map[string]json.RawMessage
			if err := c.call(cmd.Context(), method, path(args[0]), nil, &out); err != nil {
				return err
			}
			return show(out)
		}
	}
	attach := &cobra.Command{
		Use:   "attach IDENTITY_ID --config JSON|@FILE",
		Short: "Attach " + reg.DisplayName + " to an identity (fields as Infisical's, shared token settings included)",
		Args:  cobra.ExactArgs(1),
		RunE:  write(http.MethodPost),
	}
	update := &cobra.Command{
		Use:   "update IDENTITY_ID --config JSON|@FILE",
		Short: "Change an identity's " + reg.DisplayName + "; fields left out keep their values",
		Args:  cobra.ExactArgs(1),
		RunE:  write(http.MethodPatch),
	}
	for _, sub := range []*cobra.Command{attach, update} {
		sub.Flags().StringVar(&config, "config", "", `the configuration as a JSON object, or @FILE (e.g. {"boundIssuer":"https://issuer","accessTokenTTL":3600})`)
	}
	get := &cobra.Command{Use: "get IDENTITY_ID", Short: "Show an identity's " + reg.DisplayName + " (secret fields are never shown)",
		Args: cobra.ExactArgs(1), RunE: read(http.MethodGet)}
	revoke := &cobra.Command{Use: "revoke IDENTITY_ID", Short: "Remove " + reg.DisplayName + " from an identity and revoke its tokens",
		Args: cobra.ExactArgs(1), RunE: read(http.MethodDelete)}
	cmd.AddCommand(attach, get, update, revoke)
	return cmd
}
