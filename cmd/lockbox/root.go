package main

import (
	"io"

	"github.com/spf13/cobra"
)

func newRootCmd(getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
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
	pf.StringVar(&c.token, "token", "", "access token (default $LOCKBOX_TOKEN or $INFISICAL_TOKEN, then the saved session)")
	pf.StringVarP(&c.output, "output", "o", "table", "table or json")
	root.PersistentPreRunE = c.checkOutput
	root.AddGroup(&cobra.Group{ID: "use", Title: "Secrets:"}, &cobra.Group{ID: "admin", Title: "Administration:"},
		&cobra.Group{ID: "server", Title: "Server:"})
	for _, g := range []struct {
		id   string
		cmds []*cobra.Command
	}{
		{"use", []*cobra.Command{c.newLoginCmd(), c.newLogoutCmd(), c.newRunCmd(), c.newExportCmd(), c.newSecretsCmd(), c.newFoldersCmd(),
			c.newDynamicCmd(), c.newKMSCmd(), c.newRotationsCmd(), c.newConnectionsCmd(), c.newPKICmd(), c.newSSHCmd()}},
		{"admin", []*cobra.Command{c.newProjectsCmd(), c.newEnvironmentsCmd(), c.newIdentitiesCmd(), c.newAuditLogsCmd(), c.newBootstrapCmd(),
			c.newPrivilegesCmd(), c.newProjectTemplatesCmd(), c.newUsersCmd(), c.newGroupsCmd()}},
		{"server", []*cobra.Command{newServerCmd(getenv, stdout, stderr), newRotateRootKeyCmd(getenv, stdout, stderr),
			newBackupCmd(getenv, stdout, stderr), newRestoreCmd(getenv, stdout, stderr)}},
	} {
		for _, cmd := range g.cmds {
			cmd.GroupID = g.id
			root.AddCommand(cmd)
		}
	}
	root.AddCommand(newVersionCmd(stdout))
	return root
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
