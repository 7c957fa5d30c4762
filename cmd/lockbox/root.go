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
	root.AddCommand(
		newServerCmd(getenv, stdout, stderr),
		newBootstrapCmd(getenv, stdout),
		newRotateRootKeyCmd(getenv, stdout, stderr),
		newVersionCmd(stdout),
	)
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
