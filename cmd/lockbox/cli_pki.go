package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lockbox-dev/lockbox/internal/client"
	"github.com/lockbox-dev/lockbox/internal/pki"
)

func (c *cli) newPKICmd() *cobra.Command {
	cmd := &cobra.Command{Use: "pki", Short: "Run private certificate authorities: issue, sign and revoke certificates"}
	cmd.AddCommand(c.newPKICACmd(), c.newPKIIssueCmd(false), c.newPKIIssueCmd(true), c.newPKICertsCmd(),
		c.newPKITemplatesCmd(), c.newPKICRLCmd(), c.newPKIExpiringCmd(), c.newPKICollectionsCmd(), c.newPKIAlertsCmd())
	return cmd
}

// oneArg runs call with the client and the single argument.
func (c *cli) oneArg(call func(ctx context.Context, cl *client.Client, arg string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if strings.TrimSpace(args[0]) == "" {
			return errors.New("the argument is empty")
		}
		cl, err := c.client(cmd.Context())
		if err != nil {
			return err
		}
		return call(cmd.Context(), cl, args[0])
	}
}

var pkiCAHeader = []string{"ID", "TYPE", "STATUS", "DN", "KEY", "NOT AFTER", "PARENT"}

func pkiCARow(ca client.PKICA) []string {
	deref := func(p *string) string {
		if p == nil {
			return "-"
		}
		return *p
	}
	return []string{ca.ID, ca.Type, ca.Status, ca.DN, ca.KeyAlgorithm, deref(ca.NotAfter), deref(ca.ParentCAID)}
}

func (c *cli) printCA(ca client.PKICA, err error) error {
	if err != nil {
		return err
	}
	return c.print(ca, pkiCAHeader, [][]string{pkiCARow(ca)})
}

// readPEMFile reads a PEM file of at most max bytes ("-" is standard input).
func (c *cli) readPEMFile(name string, max int) (string, error) {
	b, err := c.readInput(nil, name, max)
	return string(b), err
}

func (c *cli) newPKICACmd() *cobra.Command {
	cmd := &cobra.Command{Use: "ca", Short: "Create, list and manage certificate authorities"}

	var n client.PKINewCA
	var pathLen int
	create := &cobra.Command{
		Use:   "create --project ID --type root|intermediate --common-name CN [--parent CA_ID] [--key-algorithm A]",
		Short: "Create a CA (its key generated on the server, never shown)",
		Long: "A root CA signs its own certificate. An intermediate CA with --parent is signed at once by that lockbox CA;\n" +
			"without it, it waits for a certificate: take its CSR (pki ca csr), have it signed, then pki ca import.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if n.ProjectID == "" || n.Type == "" {
				return errors.New("--project and --type are required")
			}
			if cmd.Flags().Changed("max-path-length") {
				n.MaxPathLength = &pathLen
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			return c.printCA(cl.PKICreateCA(cmd.Context(), n))
		},
	}
	projectFlag(create, &n.ProjectID)
	create.Flags().StringVar(&n.Type, "type", "", "root or intermediate")
	create.Flags().StringVar(&n.CommonName, "common-name", "", "subject common name")
	create.Flags().StringVar(&n.Organization, "organization", "", "subject organization")
	create.Flags().StringVar(&n.OU, "ou", "", "subject organizational unit")
	create.Flags().StringVar(&n.Country, "country", "", "subject country (two letters)")
	create.Flags().StringVar(&n.Province, "province", "", "subject province")
	create.Flags().StringVar(&n.Locality, "locality", "", "subject locality")
	create.Flags().StringVar(&n.FriendlyName, "friendly-name", "", "a name to show")
	create.Flags().StringVar(&n.NotAfter, "not-after", "", "end of validity (2036-01-31 or RFC 3339; default 10 years, or the parent's)")
	create.Flags().IntVar(&pathLen, "max-path-length", -1, "how many CAs may stand below this one (-1: no limit)")
	create.Flags().StringVar(&n.KeyAlgorithm, "key-algorithm", "", "rsa-2048 (default), rsa-4096, ec-prime256v1 or ec-secp384r1")
	create.Flags().StringVar(&n.ParentCAID, "parent", "", "for an intermediate: the lockbox CA that signs it now")

	var project string
	list := &cobra.Command{
		Use:   "list --project ID",
		Short: "List a project's CAs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if project == "" {
				return errors.New("--project is required")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			cas, err := cl.PKICAs(cmd.Context(), project)
			if err != nil {
				return err
			}
			rows := make([][]string, len(cas))
			for i, ca := range cas {
				rows[i] = pkiCARow(ca)
			}
			if cas == nil {
				cas = []client.PKICA{}
			}
			return c.print(struct {
				CAs []client.PKICA `json:"cas"`
			}{cas}, pkiCAHeader, rows)
		},
	}
	projectFlag(list, &project)

	get := &cobra.Command{Use: "get CA_ID", Short: "Show a CA", Args: cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, id string) error { return c.printCA(cl.PKICA(ctx, id)) })}
	enable := &cobra.Command{Use: "enable CA_ID", Short: "Let a disabled CA issue again", Args: cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, id string) error {
			return c.printCA(cl.PKISetCAStatus(ctx, id, "active"))
		})}
	disable := &cobra.Command{Use: "disable CA_ID", Short: "Stop a CA from issuing (its CRL is still served)", Args: cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, id string) error {
			return c.printCA(cl.PKISetCAStatus(ctx, id, "disabled"))
		})}
	del := &cobra.Command{Use: "delete CA_ID", Short: "Delete a CA, its key, certificates and templates", Args: cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, id string) error {
			return c.printCA(cl.PKIDeleteCA(ctx, id))
		})}
	csr := &cobra.Command{Use: "csr CA_ID", Short: "Print an intermediate CA's certificate signing request (PEM)", Args: cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, id string) error {
			s, err := cl.PKICACSR(ctx, id)
			if err != nil {
				return err
			}
			return c.printLine(strings.TrimSpace(s), map[string]string{"csr": s})
		})}
	cert := &cobra.Command{Use: "certificate CA_ID", Short: "Print a CA's certificate and the chain above it (PEM)", Args: cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, id string) error {
			out, err := cl.PKICACertificate(ctx, id)
			if err != nil {
				return err
			}
			return c.printLine(strings.TrimSpace(out.Certificate+"\n"+out.CertificateChain), out)
		})}

	var certFile, chainFile string
	imp := &cobra.Command{
		Use:   "import CA_ID --certificate FILE --chain FILE",
		Short: "Install the certificate another CA signed for a pending intermediate CA",
		Args:  cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, id string) error {
			if certFile == "" || chainFile == "" {
				return errors.New("--certificate and --chain are required")
			}
			if certFile == "-" && chainFile == "-" {
				return errors.New("only one of --certificate and --chain can be standard input")
			}
			crt, err := c.readPEMFile(certFile, 64<<10)
			if err != nil {
				return err
			}
			chain, err := c.readPEMFile(chainFile, 256<<10)
			if err != nil {
				return err
			}
			if err := cl.PKIImportCACertificate(ctx, id, crt, chain); err != nil {
				return err
			}
			return c.printCA(cl.PKICA(ctx, id))
		}),
	}
	imp.Flags().StringVar(&certFile, "certificate", "", "the CA's certificate (PEM file, - for standard input)")
	imp.Flags().StringVar(&chainFile, "chain", "", "the issuing CA's certificate and those above it, up to the root (PEM file)")

	var csrFile, notAfter string
	var signPathLen int
	signInter := &cobra.Command{
		Use:   "sign-intermediate CA_ID --csr FILE --not-after DATE",
		Short: "Sign another CA's CSR as an intermediate CA below CA_ID",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if csrFile == "" || notAfter == "" {
				return errors.New("--csr and --not-after are required")
			}
			s, err := c.readPEMFile(csrFile, pki.MaxCSRBytes)
			if err != nil {
				return err
			}
			var pl *int
			if cmd.Flags().Changed("max-path-length") {
				pl = &signPathLen
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			out, err := cl.PKISignIntermediate(cmd.Context(), args[0], s, notAfter, pl)
			if err != nil {
				return err
			}
			return c.printLine(strings.TrimSpace(out.Certificate), out)
		},
	}
	signInter.Flags().StringVar(&csrFile, "csr", "", "the CSR (PEM file, - for standard input)")
	signInter.Flags().StringVar(&notAfter, "not-after", "", "end of validity (2030-01-31 or RFC 3339)")
	signInter.Flags().IntVar(&signPathLen, "max-path-length", -1, "how many CAs may stand below the new one (-1: no limit)")

	cmd.AddCommand(create, list, get, enable, disable, del, csr, cert, imp, signInter)
	cmd.AddCommand(c.newPKICARenewCmds()...)
	return cmd
}

// checkOutDir refuses, before anything is issued, an --out-dir whose files
// exist (the key, shown once, would be lost), unless force.
func checkOutDir(dir string, force bool) error {
	if dir == "" || force {
		return nil
	}
	for _, name := range []string{"cert.pem", "chain.pem", "key.pem"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return fmt.Errorf("%s exists; use --force to replace it", filepath.Join(dir, name))
		}
	}
	return nil
}

// writeIssued writes cert.pem, chain.pem and key.pem (0600, when there is a
// key) into dir, replacing none unless force, or prints them (JSON with
// --output json).
func (c *cli) writeIssued(out client.PKIIssued, dir string, force bool) error {
	if dir == "" {
		if c.output == "json" {
			return c.print(out, nil, nil)
		}
		text := strings.TrimSpace(out.Certificate) + "\n" + strings.TrimSpace(out.CertificateChain)
		if out.PrivateKey != nil {
			text += "\n" + strings.TrimSpace(*out.PrivateKey)
		}
		_, err := fmt.Fprintln(c.stdout, text)
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	files := map[string]string{"cert.pem": out.Certificate, "chain.pem": out.CertificateChain}
	if out.PrivateKey != nil {
		files["key.pem"] = *out.PrivateKey
	}
	for name, body := range files {
		if err := writeNewFile(filepath.Join(dir, name), []byte(strings.TrimSpace(body)+"\n"), 0o600, force); err != nil {
			return err
		}
	}
	return c.printLine(out.SerialNumber, map[string]string{"serialNumber": out.SerialNumber, "dir": dir})
}

func (c *cli) newPKIIssueCmd(sign bool) *cobra.Command {
	var r client.PKIIssue
	var altNames []string
	var dir, csrFile string
	var force bool
	use, short := "issue (--ca ID | --template ID) --common-name CN --ttl 24h [--alt-name N]... [--out-dir DIR]",
		"Issue a certificate with a new key (the key is shown once, here)"
	if sign {
		use, short = "sign (--ca ID | --template ID) --csr FILE --ttl 24h [--common-name CN] [--alt-name N]... [--out-dir DIR]",
			"Sign a certificate for a CSR's key"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if r.CAID == "" && r.CertificateTemplateID == "" {
				return errors.New("--ca or --template is required")
			}
			if err := checkOutDir(dir, force); err != nil {
				return err
			}
			if sign {
				if csrFile == "" {
					return errors.New("--csr is required")
				}
				s, err := c.readPEMFile(csrFile, pki.MaxCSRBytes)
				if err != nil {
					return err
				}
				r.CSR = s
			}
			r.AltNames = strings.Join(altNames, ",")
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			out, err := cl.PKIIssue(cmd.Context(), r)
			if err != nil {
				return err
			}
			return c.writeIssued(out, dir, force)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&force, "force", false, "replace files that exist in --out-dir")
	f.StringVar(&r.CAID, "ca", "", "the issuing CA's ID")
	f.StringVar(&r.CertificateTemplateID, "template", "", "a certificate template's ID (it names the CA and bounds the request)")
	f.StringVar(&r.CommonName, "common-name", "", "subject common name")
	f.StringSliceVar(&altNames, "alt-name", nil, "subject alternative name: host name, IP, e-mail or URI (repeat, or comma-separate)")
	f.StringVar(&r.TTL, "ttl", "", "lifetime such as 3600, 90m, 24h, 30d (default: the template's)")
	f.StringVar(&r.NotAfter, "not-after", "", "end of validity, instead of --ttl")
	f.StringSliceVar(&r.KeyUsages, "key-usage", nil, "key usages, e.g. digital_signature,key_encipherment")
	f.StringSliceVar(&r.ExtendedKeyUsages, "ext-key-usage", nil, "extended key usages, e.g. server_auth,client_auth")
	f.StringVar(&r.FriendlyName, "friendly-name", "", "a name to show")
	f.StringVar(&dir, "out-dir", "", "write cert.pem, chain.pem and key.pem (mode 0600) here instead of printing them")
	if sign {
		f.StringVar(&csrFile, "csr", "", "the CSR (PEM file, - for standard input)")
	} else {
		f.StringVar(&r.KeyAlgorithm, "key-algorithm", "", "rsa-2048 (default), rsa-4096, ec-prime256v1 or ec-secp384r1")
	}
	return cmd
}

var pkiCertHeader = []string{"SERIAL", "STATUS", "COMMON NAME", "ALT NAMES", "NOT AFTER", "CA"}

func pkiCertRow(x client.PKICertificate) []string {
	return []string{x.SerialNumber, x.Status, x.CommonName, x.AltNames, x.NotAfter, x.CAID}
}

func (c *cli) printCerts(certs []client.PKICertificate, total int) error {
	rows := make([][]string, len(certs))
	for i, x := range certs {
		rows[i] = pkiCertRow(x)
	}
	if certs == nil {
		certs = []client.PKICertificate{}
	}
	return c.print(struct {
		Certificates []client.PKICertificate `json:"certificates"`
		TotalCount   int                     `json:"totalCount"`
	}{certs, total}, pkiCertHeader, rows)
}

func (c *cli) newPKICertsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "certs", Short: "List, show, bundle, revoke and delete issued certificates"}
	var project string
	var offset, limit int
	list := &cobra.Command{
		Use:   "list --project ID [--offset N] [--limit N]",
		Short: "List a project's certificates, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if project == "" {
				return errors.New("--project is required")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			certs, total, err := cl.PKICertificates(cmd.Context(), project, offset, limit)
			if err != nil {
				return err
			}
			return c.printCerts(certs, total)
		},
	}
	projectFlag(list, &project)
	list.Flags().IntVar(&offset, "offset", 0, "skip this many")
	list.Flags().IntVar(&limit, "limit", 0, "at most this many (1-100; default 25)")

	get := &cobra.Command{Use: "get SERIAL", Short: "Show a certificate's record", Args: cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, serial string) error {
			x, err := cl.PKICertificate(ctx, serial)
			if err != nil {
				return err
			}
			return c.print(x, pkiCertHeader, [][]string{pkiCertRow(x)})
		})}
	var dir string
	var bundleForce bool
	bundle := &cobra.Command{Use: "bundle SERIAL [--out-dir DIR]", Short: "Print or write a certificate, its chain and its key (if the server made it)",
		Args: cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, serial string) error {
			if err := checkOutDir(dir, bundleForce); err != nil {
				return err
			}
			out, err := cl.PKIBundle(ctx, serial)
			if err != nil {
				return err
			}
			return c.writeIssued(out, dir, bundleForce)
		})}
	bundle.Flags().StringVar(&dir, "out-dir", "", "write cert.pem, chain.pem and key.pem (mode 0600) here")
	bundle.Flags().BoolVar(&bundleForce, "force", false, "replace files that exist in --out-dir")
	var reason string
	revoke := &cobra.Command{Use: "revoke SERIAL [--reason R]", Short: "Revoke a certificate (it appears on its CA's CRL)", Args: cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, serial string) error {
			at, err := cl.PKIRevoke(ctx, serial, reason)
			if err != nil {
				return err
			}
			return c.printLine("revoked "+serial+" at "+at, map[string]string{"serialNumber": serial, "revokedAt": at})
		})}
	revoke.Flags().StringVar(&reason, "reason", "", "UNSPECIFIED, KEY_COMPROMISE, CA_COMPROMISE, AFFILIATION_CHANGED, SUPERSEDED, CESSATION_OF_OPERATION, ...")
	del := &cobra.Command{Use: "delete SERIAL", Short: "Delete a certificate's record (revoke it to stop it working; a revoked one can go once expired)", Args: cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, serial string) error {
			x, err := cl.PKIDeleteCertificate(ctx, serial)
			if err != nil {
				return err
			}
			return c.print(x, pkiCertHeader, [][]string{pkiCertRow(x)})
		})}
	cmd.AddCommand(list, get, bundle, revoke, del)
	return cmd
}

var pkiTemplateHeader = []string{"ID", "NAME", "CA", "COMMON NAME", "ALT NAMES", "TTL"}

func pkiTemplateRow(t client.PKITemplate) []string {
	return []string{t.ID, t.Name, t.CAID, t.CommonName, t.SubjectAlternativeName, t.TTL}
}

func (c *cli) printTemplate(t client.PKITemplate, err error) error {
	if err != nil {
		return err
	}
	return c.print(t, pkiTemplateHeader, [][]string{pkiTemplateRow(t)})
}

func (c *cli) newPKITemplatesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "templates", Short: "Certificate templates: what a CA may issue (names, lifetime, usages)"}
	var t client.PKITemplate
	create := &cobra.Command{
		Use:   "create --ca ID --name NAME --common-name GLOBS --alt-names GLOBS --ttl 30d",
		Short: "Create a template; * matches within one DNS label, ** across labels",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if t.CAID == "" || t.Name == "" || t.CommonName == "" || t.SubjectAlternativeName == "" || t.TTL == "" {
				return errors.New("--ca, --name, --common-name, --alt-names and --ttl are required")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			return c.printTemplate(cl.PKICreateTemplate(cmd.Context(), t))
		},
	}
	f := create.Flags()
	f.StringVar(&t.CAID, "ca", "", "the CA it issues from")
	f.StringVar(&t.Name, "name", "", "template name (a slug)")
	f.StringVar(&t.CommonName, "common-name", "", "allowed common names: comma-separated globs, e.g. *.example.com")
	f.StringVar(&t.SubjectAlternativeName, "alt-names", "", "allowed alternative names: comma-separated globs")
	f.StringVar(&t.TTL, "ttl", "", "the longest lifetime, and the default one (e.g. 30d)")
	f.StringSliceVar(&t.KeyUsages, "key-usage", nil, "allowed key usages (default digital_signature,key_encipherment)")
	f.StringSliceVar(&t.ExtendedKeyUsages, "ext-key-usage", nil, "allowed extended key usages")

	var project string
	list := &cobra.Command{
		Use: "list --project ID", Short: "List a project's templates", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if project == "" {
				return errors.New("--project is required")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			ts, err := cl.PKITemplates(cmd.Context(), project)
			if err != nil {
				return err
			}
			rows := make([][]string, len(ts))
			for i, x := range ts {
				rows[i] = pkiTemplateRow(x)
			}
			if ts == nil {
				ts = []client.PKITemplate{}
			}
			return c.print(struct {
				Templates []client.PKITemplate `json:"certificateTemplates"`
			}{ts}, pkiTemplateHeader, rows)
		},
	}
	projectFlag(list, &project)
	get := &cobra.Command{Use: "get TEMPLATE_ID", Short: "Show a template", Args: cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, id string) error {
			return c.printTemplate(cl.PKITemplate(ctx, id))
		})}
	del := &cobra.Command{Use: "delete TEMPLATE_ID", Short: "Delete a template", Args: cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, id string) error {
			return c.printTemplate(cl.PKIDeleteTemplate(ctx, id))
		})}
	cmd.AddCommand(create, list, get, del)
	return cmd
}

func (c *cli) newPKICRLCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "crl CA_ID --out FILE",
		Short: "Download a CA's certificate revocation list (DER; no login needed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("--out is required (the CRL is binary DER)")
			}
			sess, err := c.loadSession()
			if err != nil {
				return err
			}
			cl := client.New(c.domainFor(sess), "") // the CRL is public: no token is sent
			der, err := cl.PKICRL(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			// As every file the CLI writes: a link at out is replaced, not
			// followed (os.WriteFile wrote through one into its target).
			if err := writeFileAtomic(out, 0o644, func(w io.Writer) error { _, err := w.Write(der); return err }); err != nil {
				return err
			}
			return c.printLine("wrote "+strconv.Itoa(len(der))+" bytes to "+out, map[string]any{"bytes": len(der), "out": out})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the DER CRL to")
	return cmd
}

func (c *cli) newPKIExpiringCmd() *cobra.Command {
	var project string
	var days int
	cmd := &cobra.Command{
		Use:   "expiring --project ID [--days 30]",
		Short: "List active certificates that expire within the given number of days",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if project == "" {
				return errors.New("--project is required")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			certs, err := cl.PKIExpiring(cmd.Context(), project, days)
			if err != nil {
				return err
			}
			return c.printCerts(certs, len(certs))
		},
	}
	projectFlag(cmd, &project)
	cmd.Flags().IntVar(&days, "days", 30, "days ahead (1-3650)")
	return cmd
}
