package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lockbox-dev/lockbox/internal/client"
	"github.com/lockbox-dev/lockbox/internal/dotenv"
)

func pathEscape(s string) string { return url.PathEscape(s) }

// secretItem is one secret as the raw API returns it.
type secretItem struct {
	ID            string `json:"id"`
	SecretKey     string `json:"secretKey"`
	SecretValue   string `json:"secretValue"`
	SecretComment string `json:"secretComment"`
	SecretPath    string `json:"secretPath"`
	Type          string `json:"type"`
	Version       int    `json:"version"`
}

type secretList struct {
	Secrets []secretItem `json:"secrets"`
	Imports []struct {
		SecretPath  string       `json:"secretPath"`
		Environment string       `json:"environment"`
		Secrets     []secretItem `json:"secrets"`
	} `json:"imports"`
}

type fetchOpts struct {
	scope
	recursive, imports bool
}

func (o *fetchOpts) flags(cmd *cobra.Command) {
	o.scope.flags(cmd)
	cmd.Flags().BoolVar(&o.recursive, "recursive", false, "include secrets of every folder below --path")
	cmd.Flags().BoolVar(&o.imports, "include-imports", true, "include imported secrets")
}

func (o fetchOpts) query() string {
	q := url.Values{"workspaceId": {o.projectID}, "environment": {o.env}, "secretPath": {o.path},
		"expandSecretReferences": {"true"}, "recursive": {strconv.FormatBool(o.recursive)}, "include_imports": {strconv.FormatBool(o.imports)}}
	return q.Encode()
}

// fetch lists the secrets; with etag set, a 304 returns (nil, etag, nil).
func fetch(ctx context.Context, cl *client.Client, o fetchOpts, etag string) (*secretList, string, error) {
	var h http.Header
	if etag != "" {
		h = http.Header{"If-None-Match": {etag}}
	}
	var out secretList
	status, rh, err := cl.Request(ctx, http.MethodGet, "/api/v3/secrets/raw?"+o.query(), h, nil, &out)
	if err != nil {
		return nil, "", err
	}
	if status == http.StatusNotModified {
		return nil, etag, nil
	}
	return &out, rh.Get("ETag"), nil
}

// flatten merges a list into KEY → value: imported secrets first (later
// imports win, as in Infisical), then the folder's own; with --recursive, a
// key in a deeper folder wins over the same key closer to --path, as with
// Infisical's CLI.
func flatten(l *secretList) ([]string, map[string]string) {
	vals := map[string]string{}
	for _, imp := range l.Imports {
		for _, s := range imp.Secrets {
			vals[s.SecretKey] = s.SecretValue
		}
	}
	own := append([]secretItem(nil), l.Secrets...)
	sort.SliceStable(own, func(i, j int) bool { return depth(own[i].SecretPath) < depth(own[j].SecretPath) })
	for _, s := range own {
		vals[s.SecretKey] = s.SecretValue
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, vals
}

// depth is the number of segments of a folder path ("/" is 0).
func depth(p string) int {
	n := 0
	for _, seg := range strings.Split(p, "/") {
		if seg != "" {
			n++
		}
	}
	return n
}

func (c *cli) newSecretsCmd() *cobra.Command {
	var o fetchOpts
	var plain bool
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "List secrets (values included); get, set and delete them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			l, _, err := fetch(cmd.Context(), cl, o, "")
			if err != nil {
				return err
			}
			if c.output == "json" {
				return c.print(l, nil, nil)
			}
			keys, vals := flatten(l)
			rows := make([][]string, len(keys))
			for i, k := range keys {
				rows[i] = []string{k, vals[k]}
			}
			return c.print(nil, []string{"KEY", "VALUE"}, rows)
		},
	}
	o.flags(cmd)
	get := &cobra.Command{
		Use:   "get NAME...",
		Short: "Print secrets by name",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var found []secretItem
			for _, name := range args {
				var out struct {
					Secret secretItem `json:"secret"`
				}
				q := url.Values{"workspaceId": {o.projectID}, "environment": {o.env}, "secretPath": {o.path},
					"expandSecretReferences": {"true"}, "include_imports": {strconv.FormatBool(o.imports)}}
				if err := c.call(cmd.Context(), http.MethodGet, "/api/v3/secrets/raw/"+pathEscape(name)+"?"+q.Encode(), nil, &out); err != nil {
					return err
				}
				found = append(found, out.Secret)
			}
			if plain {
				for _, s := range found {
					fmt.Fprintln(c.stdout, s.SecretValue)
				}
				return nil
			}
			rows := make([][]string, len(found))
			for i, s := range found {
				rows[i] = []string{s.SecretKey, s.SecretValue}
			}
			return c.print(found, []string{"KEY", "VALUE"}, rows)
		},
	}
	o.flags(get)
	get.Flags().BoolVar(&plain, "plain", false, "print only the values, one per line")

	var file string
	set := &cobra.Command{
		Use:   "set KEY=VALUE... | set --file .env",
		Short: "Create or update secrets",
		RunE: func(cmd *cobra.Command, args []string) error {
			pairs, err := pairsFrom(args, file, c.stdin)
			if err != nil {
				return err
			}
			if len(pairs) == 0 {
				return errors.New("nothing to set: give KEY=VALUE arguments or --file")
			}
			var rows [][]string
			for _, p := range pairs {
				body := map[string]any{"workspaceId": o.projectID, "environment": o.env, "secretPath": o.path, "secretValue": p.value, "type": "shared"}
				action := "updated"
				err := c.call(cmd.Context(), http.MethodPatch, "/api/v3/secrets/raw/"+pathEscape(p.key), body, nil)
				var ae *client.APIError
				if errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound {
					action = "created"
					err = c.call(cmd.Context(), http.MethodPost, "/api/v3/secrets/raw/"+pathEscape(p.key), body, nil)
				}
				if err != nil {
					return fmt.Errorf("%s: %w", p.key, err)
				}
				rows = append(rows, []string{p.key, action})
			}
			return c.print(rowsJSON(rows, "key", "action"), []string{"KEY", "ACTION"}, rows)
		},
	}
	o.scope.flags(set)
	set.Flags().StringVar(&file, "file", "", "read KEY=VALUE lines from a .env file (- for standard input)")

	del := &cobra.Command{
		Use:   "delete NAME...",
		Short: "Delete secrets",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rows [][]string
			for _, name := range args {
				body := map[string]any{"workspaceId": o.projectID, "environment": o.env, "secretPath": o.path, "type": "shared"}
				if err := c.call(cmd.Context(), http.MethodDelete, "/api/v3/secrets/raw/"+pathEscape(name), body, nil); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				rows = append(rows, []string{name, "deleted"})
			}
			return c.print(rowsJSON(rows, "key", "action"), []string{"KEY", "ACTION"}, rows)
		},
	}
	o.scope.flags(del)
	cmd.AddCommand(get, set, del)
	return cmd
}

// rowsJSON turns table rows into objects for --output json.
func rowsJSON(rows [][]string, names ...string) []map[string]string {
	out := make([]map[string]string, len(rows))
	for i, r := range rows {
		m := map[string]string{}
		for j, n := range names {
			if j < len(r) {
				m[n] = r[j]
			}
		}
		out[i] = m
	}
	return out
}

type pair struct{ key, value string }

func pairsFrom(args []string, file string, stdin io.Reader) ([]pair, error) {
	var out []pair
	for i, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			// Not quoted: it may be a value given without its key.
			return nil, fmt.Errorf("argument %d is not KEY=VALUE", i+1)
		}
		out = append(out, pair{k, v})
	}
	if file != "" {
		var r io.Reader = stdin
		if file != "-" {
			f, err := os.Open(file)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			r = f
		}
		b, err := io.ReadAll(io.LimitReader(r, 16<<20))
		if err != nil {
			return nil, err
		}
		ps, err := parseDotenv(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		out = append(out, ps...)
	}
	return out, nil
}

// parseDotenv reads a .env file (dotenv.Parse).
func parseDotenv(s string) ([]pair, error) {
	ps, err := dotenv.Parse(s)
	if err != nil {
		return nil, err
	}
	out := make([]pair, len(ps))
	for i, p := range ps {
		out[i] = pair{p.Key, p.Value}
	}
	return out, nil
}

// yamlSafe escapes, in a JSON string, the characters a YAML double-quoted
// scalar does not take as they are: DEL, the C1 controls and U+FEFF.
func yamlSafe(b []byte) string {
	var out strings.Builder
	for _, r := range string(b) {
		if r == 0x7f || r >= 0x80 && r <= 0x9f || r == 0xfeff {
			fmt.Fprintf(&out, `\u%04x`, r)
		} else {
			out.WriteRune(r)
		}
	}
	return out.String()
}

func writeExport(w io.Writer, format string, keys []string, vals map[string]string) error {
	switch format {
	case "dotenv":
		for _, k := range keys {
			if _, err := fmt.Fprintf(w, "%s=%s\n", k, dotenv.Quote(vals[k])); err != nil {
				return err
			}
		}
	case "json":
		out := make([]map[string]string, len(keys))
		for i, k := range keys {
			out[i] = map[string]string{"key": k, "value": vals[k]}
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
		_, err := io.WriteString(w, yamlSafe(b.Bytes())) // DEL and C1 controls escaped, as in --output json
		return err
	case "yaml":
		// A JSON string is a YAML double-quoted scalar once the characters
		// YAML does not take there as they are (DEL, C1 controls such as
		// U+0085, a line break to YAML 1.1; a BOM) are escaped too: a DEL
		// made PyYAML refuse the whole file.
		for _, k := range keys {
			kb, _ := json.Marshal(k)
			vb, _ := json.Marshal(vals[k])
			if _, err := fmt.Fprintf(w, "%s: %s\n", yamlSafe(kb), yamlSafe(vb)); err != nil {
				return err
			}
		}
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write([]string{"Key", "Value"})
		for _, k := range keys {
			cw.Write([]string{k, vals[k]})
		}
		cw.Flush()
		return cw.Error()
	default:
		return fmt.Errorf("--format must be dotenv, json, yaml or csv, not %q", format)
	}
	return nil
}

func (c *cli) newExportCmd() *cobra.Command {
	var o fetchOpts
	var format, outFile string
	var allowEnv []string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Print secrets as dotenv, json, yaml or csv",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := writeExport(io.Discard, format, nil, nil); err != nil {
				return err
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			l, _, err := fetch(cmd.Context(), cl, o, "")
			if err != nil {
				return err
			}
			keys, vals := flatten(l)
			if format == "dotenv" {
				// A dotenv export is made to be sourced by a shell.
				keys = envSafe(c.stderr, keys, vals, true, allowEnv)
			}
			if outFile == "" {
				return writeExport(c.stdout, format, keys, vals)
			}
			return writeFileAtomic(outFile, 0o600, func(w io.Writer) error { return writeExport(w, format, keys, vals) })
		},
	}
	o.flags(cmd)
	cmd.Flags().StringVar(&format, "format", "dotenv", "dotenv, json, yaml or csv")
	cmd.Flags().StringVar(&outFile, "output-file", "", "write to this file (a new file of mode 0600, renamed over it) instead of standard output")
	cmd.Flags().StringArrayVar(&allowEnv, "allow-env", nil, "dotenv: write this secret even if its name makes programs run code (PATH, LD_PRELOAD, ...); repeatable")
	return cmd
}

func (c *cli) newFoldersCmd() *cobra.Command {
	var sc scope
	list := func(cmd *cobra.Command, args []string) error {
		cl, err := c.client(cmd.Context())
		if err != nil {
			return err
		}
		var out struct {
			Folders []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"folders"`
		}
		q := url.Values{"workspaceId": {sc.projectID}, "environment": {sc.env}, "path": {sc.path}}
		if err := cl.Do(cmd.Context(), http.MethodGet, "/api/v1/folders?"+q.Encode(), nil, &out); err != nil {
			return err
		}
		rows := make([][]string, len(out.Folders))
		for i, f := range out.Folders {
			rows[i] = []string{f.Name, f.ID}
		}
		return c.print(out.Folders, []string{"NAME", "ID"}, rows)
	}
	cmd := &cobra.Command{Use: "folders", Short: "List, create and delete folders", Args: cobra.NoArgs, RunE: list}
	sc.flags(cmd)
	get := &cobra.Command{Use: "get", Short: "List the folders in --path", Args: cobra.NoArgs, RunE: list}
	sc.flags(get)
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a folder in --path",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Folder struct {
					ID   string `json:"id"`
					Name string `json:"name"`
				} `json:"folder"`
			}
			if err := c.call(cmd.Context(), http.MethodPost, "/api/v1/folders", map[string]any{"workspaceId": sc.projectID,
				"environment": sc.env, "path": sc.path, "name": args[0]}, &out); err != nil {
				return err
			}
			return c.print(out.Folder, []string{"NAME", "ID"}, [][]string{{out.Folder.Name, out.Folder.ID}})
		},
	}
	sc.flags(create)
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a folder in --path, with everything in it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.call(cmd.Context(), http.MethodDelete, "/api/v1/folders/"+pathEscape(args[0]), map[string]any{"workspaceId": sc.projectID,
				"environment": sc.env, "path": sc.path}, nil); err != nil {
				return err
			}
			return c.print(map[string]string{"name": args[0], "action": "deleted"}, []string{"NAME", "ACTION"}, [][]string{{args[0], "deleted"}})
		},
	}
	sc.flags(del)
	cmd.AddCommand(get, create, del)
	return cmd
}
