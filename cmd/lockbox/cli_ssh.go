package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lockbox-dev/lockbox/internal/client"
)

// publicClient is a client without a token, for the routes anyone may call.
func (c *cli) publicClient() (*client.Client, error) {
	s, err := c.loadSession()
	if err != nil {
		return nil, err
	}
	return client.New(c.domainFor(s), ""), nil
}

func (c *cli) newSSHCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "ssh", Short: "SSH certificates: sign keys, issue key pairs, manage CAs, templates and hosts"}
	cmd.AddCommand(c.newSSHSignCmd(), c.newSSHIssueCmd(), c.newSSHCACmd(), c.newSSHTemplateCmd(), c.newSSHHostCmd(),
		c.newSSHHostGroupCmd(), c.newSSHRevokeCmd())
	return cmd
}

// parseLogins reads --login LOGIN_USER=PRINCIPAL flags into login mappings,
// one per login user.
func parseLogins(logins []string) ([]client.SSHLoginMapping, error) {
	var ms []client.SSHLoginMapping
	byUser := map[string]int{}
	for _, l := range logins {
		user, principal, ok := strings.Cut(l, "=")
		if !ok || user == "" || principal == "" {
			return nil, fmt.Errorf("--login %q: want LOGIN_USER=PRINCIPAL", l)
		}
		i, seen := byUser[user]
		if !seen {
			i = len(ms)
			byUser[user] = i
			ms = append(ms, client.SSHLoginMapping{LoginUser: user})
		}
		ms[i].AllowedPrincipals.Usernames = append(ms[i].AllowedPrincipals.Usernames, principal)
	}
	return ms, nil
}

// certFlags are the flags of sign and issue.
func certFlags(cmd *cobra.Command, r *client.SSHCertRequest) {
	cmd.Flags().StringVar(&r.CertificateTemplateID, "template", "", "certificate template ID (required)")
	cmd.Flags().StringSliceVar(&r.Principals, "principal", nil, "principal (user or host name) to certify; repeat or separate with commas (required)")
	cmd.Flags().StringVar(&r.CertType, "cert-type", "user", "user or host")
	cmd.Flags().StringVar(&r.TTL, "ttl", "", "validity, such as 1h (default: the template's)")
	cmd.Flags().StringVar(&r.KeyID, "key-id", "", "key ID to record in the certificate (if the template allows custom ones)")
}

func checkCertFlags(r client.SSHCertRequest) error {
	if r.CertificateTemplateID == "" || len(r.Principals) == 0 {
		return errors.New("--template and --principal are required")
	}
	return nil
}

// writeNewFile writes data to path with perm, refusing to replace a file
// unless force; a replacement is a new file renamed over it
// (writeFileAtomic), so a link there is not followed and the old file's
// mode is not kept.
func writeNewFile(path string, data []byte, perm os.FileMode, force bool) error {
	if force {
		return writeFileAtomic(path, perm, writeBytes(data))
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists; use --force to replace it", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func withNewline(s string) []byte { return []byte(strings.TrimRight(s, "\n") + "\n") }

func (c *cli) newSSHSignCmd() *cobra.Command {
	var r client.SSHCertRequest
	var out string
	var force bool
	cmd := &cobra.Command{
		Use:   "sign PUBLIC_KEY_FILE --template ID --principal NAME [--cert-type user|host] [--ttl 1h] [--out FILE]",
		Short: "Sign a public key; the certificate goes beside it as NAME-cert.pub, as ssh-keygen -s writes it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkCertFlags(r); err != nil {
				return err
			}
			pub, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			if strings.Contains(string(pub), "PRIVATE KEY") {
				return fmt.Errorf("%s holds a private key; give the public key (the .pub file)", args[0])
			}
			r.PublicKey = string(pub)
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			cert, err := cl.SSHSign(cmd.Context(), r)
			if err != nil {
				return err
			}
			if out == "" {
				out = strings.TrimSuffix(args[0], ".pub") + "-cert.pub"
			}
			if out == "-" {
				return c.printLine(strings.TrimSpace(cert.SignedKey), cert)
			}
			if err := writeNewFile(out, withNewline(cert.SignedKey), 0o644, force); err != nil {
				return err
			}
			return c.print(struct {
				SerialNumber    string `json:"serialNumber"`
				CertificateFile string `json:"certificateFile"`
			}{cert.SerialNumber, out}, []string{"SERIAL", "CERTIFICATE"}, [][]string{{cert.SerialNumber, out}})
		},
	}
	certFlags(cmd, &r)
	cmd.Flags().StringVar(&out, "out", "", `where to write the certificate ("-": standard output; default: beside the key, NAME-cert.pub)`)
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing certificate file")
	return cmd
}

func (c *cli) newSSHIssueCmd() *cobra.Command {
	var r client.SSHCertRequest
	var key string
	var force bool
	cmd := &cobra.Command{
		Use:   "issue --template ID --principal NAME --key FILE [--key-algorithm ED25519] [--ttl 1h]",
		Short: "Have the server make a key pair and its certificate: FILE (private, mode 0600), FILE.pub and FILE-cert.pub",
		Long: "Issue writes the private key to --key with mode 0600, the public key to FILE.pub and the certificate to\n" +
			"FILE-cert.pub, where ssh -i FILE finds it. The server keeps no copy of the private key. With --output json\n" +
			"and no --key, everything, the private key included, is printed instead.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkCertFlags(r); err != nil {
				return err
			}
			if key == "" && c.output != "json" {
				return errors.New("--key is required (or --output json to print the key pair)")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			cert, err := cl.SSHIssue(cmd.Context(), r)
			if err != nil {
				return err
			}
			if key == "" {
				return c.print(cert, nil, nil)
			}
			return c.writeKeyPair(key, cert, force)
		},
	}
	certFlags(cmd, &r)
	cmd.Flags().StringVar(&r.KeyAlgorithm, "key-algorithm", "", "ED25519 (default), EC_prime256v1, EC_secp384r1, RSA_2048 or RSA_4096")
	cmd.Flags().StringVar(&key, "key", "", "where to write the private key (its .pub and -cert.pub beside it)")
	cmd.Flags().BoolVar(&force, "force", false, "replace existing files")
	return cmd
}

// writeKeyPair writes an issued key pair and certificate as ssh-keygen lays them out.
func (c *cli) writeKeyPair(key string, cert client.SSHCert, force bool) error {
	files := []struct {
		path string
		data string
		perm os.FileMode
	}{{key, cert.PrivateKey, 0o600}, {key + ".pub", cert.PublicKey, 0o644}, {key + "-cert.pub", cert.SignedKey, 0o644}}
	if !force {
		for _, f := range files {
			if _, err := os.Lstat(f.path); err == nil {
				return fmt.Errorf("%s exists; use --force to replace it", f.path)
			}
		}
	}
	for _, f := range files {
		if err := writeNewFile(f.path, withNewline(f.data), f.perm, force); err != nil {
			return err
		}
	}
	return c.print(struct {
		SerialNumber    string `json:"serialNumber"`
		KeyAlgorithm    string `json:"keyAlgorithm"`
		PrivateKeyFile  string `json:"privateKeyFile"`
		CertificateFile string `json:"certificateFile"`
	}{cert.SerialNumber, cert.KeyAlgorithm, key, key + "-cert.pub"},
		[]string{"SERIAL", "ALGORITHM", "KEY", "CERTIFICATE"}, [][]string{{cert.SerialNumber, cert.KeyAlgorithm, key, key + "-cert.pub"}})
}

var sshCAHeader = []string{"NAME", "ALGORITHM", "STATUS", "ID", "PUBLIC KEY"}

func sshCARow(ca client.SSHCA) []string {
	return []string{ca.FriendlyName, ca.KeyAlgorithm, ca.Status, ca.ID, ca.PublicKey}
}

func (c *cli) newSSHCACmd() *cobra.Command {
	cmd := &cobra.Command{Use: "ca", Short: "Create, list, show and delete SSH certificate authorities"}
	var project, name, alg string
	create := &cobra.Command{
		Use:   "create --project ID [--name NAME] [--algorithm ED25519]",
		Short: "Create a CA (its private key is generated on the server and never shown)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if project == "" {
				return errors.New("--project is required")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			ca, err := cl.SSHCreateCA(cmd.Context(), project, name, alg)
			if err != nil {
				return err
			}
			return c.print(ca, sshCAHeader, [][]string{sshCARow(ca)})
		},
	}
	projectFlag(create, &project)
	create.Flags().StringVar(&name, "name", "", "friendly name")
	create.Flags().StringVar(&alg, "algorithm", "ED25519", "ED25519, EC_prime256v1, EC_secp384r1, RSA_2048 or RSA_4096")

	var listProject string
	list := &cobra.Command{
		Use:   "list --project ID",
		Short: "List a project's CAs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if listProject == "" {
				return errors.New("--project is required")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			cas, err := cl.SSHCAs(cmd.Context(), listProject)
			if err != nil {
				return err
			}
			rows := make([][]string, len(cas))
			for i, ca := range cas {
				rows[i] = sshCARow(ca)
			}
			return c.print(cas, sshCAHeader, rows)
		},
	}
	projectFlag(list, &listProject)

	get := &cobra.Command{
		Use:   "get CA_ID",
		Short: "Show a CA",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			ca, err := cl.SSHCA(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return c.print(ca, sshCAHeader, [][]string{sshCARow(ca)})
		},
	}
	pk := &cobra.Command{
		Use:   "public-key CA_ID",
		Short: "Print a CA's public key, for TrustedUserCAKeys or a @cert-authority line (no login needed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.publicClient()
			if err != nil {
				return err
			}
			k, err := cl.SSHPublicKey(cmd.Context(), "/api/v1/ssh/ca/"+url.PathEscape(args[0])+"/public-key")
			if err != nil {
				return err
			}
			return c.printLine(k, struct {
				PublicKey string `json:"publicKey"`
			}{k})
		},
	}
	del := &cobra.Command{
		Use:   "delete CA_ID",
		Short: "Delete a CA, its private key and its templates",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			ca, err := cl.SSHDeleteCA(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return c.print(ca, sshCAHeader, [][]string{sshCARow(ca)})
		},
	}
	status := func(use, short, st string) *cobra.Command {
		return &cobra.Command{
			Use:   use + " CA_ID",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				cl, err := c.client(cmd.Context())
				if err != nil {
					return err
				}
				ca, err := cl.SSHSetCAStatus(cmd.Context(), args[0], st)
				if err != nil {
					return err
				}
				return c.print(ca, sshCAHeader, [][]string{sshCARow(ca)})
			},
		}
	}
	cmd.AddCommand(create, list, get, pk, del, status("disable", "Stop a CA signing anything (reversible)", "disabled"),
		status("enable", "Let a disabled CA sign again", "active"), c.newSSHKRLCmd())
	return cmd
}

var sshTemplateHeader = []string{"NAME", "ID", "CA", "TTL", "MAX TTL", "USERS", "HOSTS", "TYPES"}

func sshTemplateRow(t client.SSHTemplate) []string {
	var types []string
	if t.AllowUserCertificates {
		types = append(types, "user")
	}
	if t.AllowHostCertificates {
		types = append(types, "host")
	}
	return []string{t.Name, t.ID, t.SshCaID, t.TTL, t.MaxTTL, strings.Join(t.AllowedUsers, ","), strings.Join(t.AllowedHosts, ","), strings.Join(types, ",")}
}

func (c *cli) newSSHTemplateCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "template", Short: "Create and list certificate templates, the bounds of what a CA signs"}
	t := client.SSHTemplate{AllowedUsers: []string{}, AllowedHosts: []string{}}
	var user, host bool
	create := &cobra.Command{
		Use:   "create --ca ID --name NAME [--allowed-users a,ops-*] [--allowed-hosts *.example.com] [--ttl 1h] [--max-ttl 30d]",
		Short: "Create a template",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if t.SshCaID == "" || t.Name == "" {
				return errors.New("--ca and --name are required")
			}
			t.AllowUserCertificates, t.AllowHostCertificates = user, host
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			out, err := cl.SSHCreateTemplate(cmd.Context(), t)
			if err != nil {
				return err
			}
			return c.print(out, sshTemplateHeader, [][]string{sshTemplateRow(out)})
		},
	}
	create.Flags().StringVar(&t.SshCaID, "ca", "", "the CA's ID")
	create.Flags().StringVar(&t.Name, "name", "", "name (a slug)")
	create.Flags().StringSliceVar(&t.AllowedUsers, "allowed-users", []string{}, "user principals allowed (patterns with * and ?)")
	create.Flags().StringSliceVar(&t.AllowedHosts, "allowed-hosts", []string{}, "host principals allowed (patterns with * and ?)")
	create.Flags().StringVar(&t.TTL, "ttl", "", "default validity (default 1h)")
	create.Flags().StringVar(&t.MaxTTL, "max-ttl", "", "longest validity (default 30d)")
	create.Flags().BoolVar(&user, "user-certs", true, "allow user certificates")
	create.Flags().BoolVar(&host, "host-certs", false, "allow host certificates")
	create.Flags().BoolVar(&t.AllowCustomKeyIds, "custom-key-ids", false, "allow requests to choose the key ID")
	create.Flags().StringToStringVar(&t.CriticalOptions, "critical-option", nil, "critical option of user certificates (force-command=CMD, source-address=CIDRs)")

	var project string
	list := &cobra.Command{
		Use:   "list --project ID",
		Short: "List a project's templates",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if project == "" {
				return errors.New("--project is required")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			ts, err := cl.SSHTemplates(cmd.Context(), project)
			if err != nil {
				return err
			}
			rows := make([][]string, len(ts))
			for i, t := range ts {
				rows[i] = sshTemplateRow(t)
			}
			return c.print(ts, sshTemplateHeader, rows)
		},
	}
	projectFlag(list, &project)
	del := &cobra.Command{
		Use:   "delete TEMPLATE_ID",
		Short: "Delete a template",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			t, err := cl.SSHDeleteTemplate(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return c.print(t, sshTemplateHeader, [][]string{sshTemplateRow(t)})
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}

var sshHostHeader = []string{"HOSTNAME", "ID", "PROJECT", "LOGIN USERS"}

func sshHostRow(h client.SSHHost) []string {
	users := make([]string, len(h.LoginMappings))
	for i, m := range h.LoginMappings {
		users[i] = m.LoginUser
	}
	return []string{h.Hostname, h.ID, h.ProjectID, strings.Join(users, ",")}
}

func (c *cli) newSSHHostCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "host", Short: "Register SSH hosts, list them, and get certificates to log in to them"}
	var h client.SSHHost
	var logins []string
	add := &cobra.Command{
		Use:   "add --project ID --hostname NAME [--user-ca ID] [--host-ca ID] [--login USER=PRINCIPAL,...]",
		Short: "Register a host; --login ubuntu=<identity id> lets that identity log in as ubuntu; CAs not given are the project's defaults",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if h.ProjectID == "" || h.Hostname == "" {
				return errors.New("--project and --hostname are required")
			}
			ms, err := parseLogins(logins)
			if err != nil {
				return err
			}
			h.LoginMappings = ms
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			out, err := cl.SSHAddHost(cmd.Context(), h)
			if err != nil {
				return err
			}
			return c.print(out, sshHostHeader, [][]string{sshHostRow(out)})
		},
	}
	projectFlag(add, &h.ProjectID)
	add.Flags().StringVar(&h.Hostname, "hostname", "", "the host's name (its host certificate's principal)")
	add.Flags().StringVar(&h.Alias, "alias", "", "alias")
	add.Flags().StringVar(&h.UserSshCaID, "user-ca", "", "ID of the CA that signs user certificates for the host (default: the project's default user CA)")
	add.Flags().StringVar(&h.HostSshCaID, "host-ca", "", "ID of the CA that signs the host's certificate (default: the project's default host CA)")
	add.Flags().StringVar(&h.UserCertTtl, "user-cert-ttl", "", "validity of user certificates (default 8h)")
	add.Flags().StringVar(&h.HostCertTtl, "host-cert-ttl", "", "validity of host certificates (default 1y)")
	add.Flags().StringArrayVar(&logins, "login", nil, "LOGIN_USER=PRINCIPAL (an identity ID, user ID or email); repeat")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the hosts you may read or log in to",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			hs, err := cl.SSHHosts(cmd.Context())
			if err != nil {
				return err
			}
			rows := make([][]string, len(hs))
			for i, h := range hs {
				rows[i] = sshHostRow(h)
			}
			return c.print(hs, sshHostHeader, rows)
		},
	}

	var loginUser, key string
	var force bool
	login := &cobra.Command{
		Use:   "issue-user-cert HOST_ID --login-user USER --key FILE",
		Short: "Get a key pair and certificate to log in to a host as USER (FILE, FILE.pub, FILE-cert.pub)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if loginUser == "" || key == "" {
				return errors.New("--login-user and --key are required")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			cert, err := cl.SSHIssueHostUserCert(cmd.Context(), args[0], loginUser)
			if err != nil {
				return err
			}
			return c.writeKeyPair(key, cert, force)
		},
	}
	login.Flags().StringVar(&loginUser, "login-user", "", "the account to log in as")
	login.Flags().StringVar(&key, "key", "", "where to write the private key")
	login.Flags().BoolVar(&force, "force", false, "replace existing files")

	var out string
	var hostForce bool
	hostCert := &cobra.Command{
		Use:   "issue-host-cert HOST_ID PUBLIC_KEY_FILE [--out FILE]",
		Short: "Sign a host's public key (e.g. /etc/ssh/ssh_host_ed25519_key.pub) as its host certificate",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pub, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			cert, err := cl.SSHIssueHostHostCert(cmd.Context(), args[0], string(pub))
			if err != nil {
				return err
			}
			if out == "" {
				out = strings.TrimSuffix(args[1], ".pub") + "-cert.pub"
			}
			if out == "-" {
				return c.printLine(strings.TrimSpace(cert.SignedKey), cert)
			}
			if err := writeNewFile(out, withNewline(cert.SignedKey), 0o644, hostForce); err != nil {
				return err
			}
			return c.print(struct {
				SerialNumber    string `json:"serialNumber"`
				CertificateFile string `json:"certificateFile"`
			}{cert.SerialNumber, out}, []string{"SERIAL", "CERTIFICATE"}, [][]string{{cert.SerialNumber, out}})
		},
	}
	hostCert.Flags().StringVar(&out, "out", "", `where to write the certificate ("-": standard output; default NAME-cert.pub beside the key)`)
	hostCert.Flags().BoolVar(&hostForce, "force", false, "replace an existing certificate file")

	var user bool
	caKey := &cobra.Command{
		Use:   "ca-public-key HOST_ID [--user]",
		Short: "Print the public key of a host's host CA (for known_hosts), or with --user its user CA (for TrustedUserCAKeys)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			which := "/host-ca-public-key"
			if user {
				which = "/user-ca-public-key"
			}
			cl, err := c.publicClient()
			if err != nil {
				return err
			}
			k, err := cl.SSHPublicKey(cmd.Context(), "/api/v1/ssh/hosts/"+url.PathEscape(args[0])+which)
			if err != nil {
				return err
			}
			return c.printLine(k, struct {
				PublicKey string `json:"publicKey"`
			}{k})
		},
	}
	caKey.Flags().BoolVar(&user, "user", false, "the user CA's key instead of the host CA's")
	del := &cobra.Command{
		Use:   "delete HOST_ID",
		Short: "Delete a host",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			h, err := cl.SSHDeleteHost(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return c.print(h, sshHostHeader, [][]string{sshHostRow(h)})
		},
	}
	cmd.AddCommand(add, list, login, hostCert, caKey, del)
	return cmd
}
