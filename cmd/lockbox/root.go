package main

import (
	"io"

	"github.com/spf13/cobra"
)

// newRootCmd builds the command tree. With only naming a top-level command
// (commandFor), it builds that one alone: each command's flags and
// subcommands cost start-up time that `lockbox run` pays on every use, and
// a command never reads another's. "" builds every command.
func newRootCmd(getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer, only string) *cobra.Command {
	root := &cobra.Command{
		Use:           "lockbox",
		Short:         "lockbox: secrets manager speaking Infisical's API",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	c := &cli{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	pf := root.PersistentFlags()
	pf.StringVar(&c.domain, "domain", "", "server URL (default $LOCKBOX_API_URL, $INFISICAL_API_URL, the saved session's, or http://127.0.0.1:8080)")
	pf.StringVar(&c.token, "token", "", "access token (default $LOCKBOX_TOKEN or $INFISICAL_TOKEN, then the saved session; prefer those: flags show in ps)")
	pf.StringVarP(&c.output, "output", "o", "table", "table or json")
	root.PersistentPreRunE = c.checkOutput
	root.AddGroup(&cobra.Group{ID: "use", Title: "Secrets:"}, &cobra.Group{ID: "admin", Title: "Administration:"},
		&cobra.Group{ID: "server", Title: "Server:"})
	for _, t := range c.topCommands() {
		if only != "" && t.name != only {
			continue
		}
		cmd := t.new()
		cmd.GroupID = t.group
		root.AddCommand(cmd)
	}
	return root
}

// topCommand is a top-level command: its name (what cobra's Use gives it),
// its group in the help, and how to build it.
type topCommand struct {
	name, group string
	new         func() *cobra.Command
}

// topCommands lists the top-level commands in the order the help shows them.
func (c *cli) topCommands() []topCommand {
	getenv, stdout, stderr := c.getenv, c.stdout, c.stderr
	return []topCommand{
		{"login", "use", c.newLoginCmd}, {"logout", "use", c.newLogoutCmd}, {"run", "use", c.newRunCmd},
		{"export", "use", c.newExportCmd}, {"secrets", "use", c.newSecretsCmd}, {"folders", "use", c.newFoldersCmd},
		{"dynamic-secrets", "use", c.newDynamicCmd}, {"kms", "use", c.newKMSCmd}, {"rotations", "use", c.newRotationsCmd},
		{"connections", "use", c.newConnectionsCmd}, {"pki", "use", c.newPKICmd}, {"ssh", "use", c.newSSHCmd},
		{"projects", "admin", c.newProjectsCmd}, {"environments", "admin", c.newEnvironmentsCmd},
		{"identities", "admin", c.newIdentitiesCmd}, {"audit-logs", "admin", c.newAuditLogsCmd},
		{"bootstrap", "admin", c.newBootstrapCmd}, {"privileges", "admin", c.newPrivilegesCmd},
		{"project-templates", "admin", c.newProjectTemplatesCmd}, {"users", "admin", c.newUsersCmd},
		{"groups", "admin", c.newGroupsCmd},
		{"server", "server", func() *cobra.Command { return newServerCmd(getenv, stdout, stderr) }},
		{"rotate-root-key", "server", func() *cobra.Command { return newRotateRootKeyCmd(getenv, stdout, stderr) }},
		{"backup", "server", func() *cobra.Command { return newBackupCmd(getenv, stdout, stderr) }},
		{"restore", "server", func() *cobra.Command { return newRestoreCmd(getenv, stdout, stderr) }},
		{"version", "", func() *cobra.Command { return newVersionCmd(stdout) }},
	}
}

// commandFor names the top-level command args run, or "" when that is not
// plain from the first argument (a flag first, help, completion, a name
// that is no command): then the whole tree is built and cobra decides.
func commandFor(args []string) string {
	if len(args) == 0 {
		return ""
	}
	for _, t := range (&cli{}).topCommands() {
		if t.name == args[0] {
			return t.name
		}
	}
	return ""
}

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := io.WriteString(stdout, version+"\n")
			return err
		},
	}
}
