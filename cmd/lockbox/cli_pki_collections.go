package main

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lockbox-dev/lockbox/internal/client"
)

var pkiCollectionHeader = []string{"ID", "NAME", "DESCRIPTION"}

func (c *cli) printCollection(x client.PKICollection, err error) error {
	if err != nil {
		return err
	}
	return c.print(x, pkiCollectionHeader, [][]string{{x.ID, x.Name, x.Description}})
}

var pkiItemHeader = []string{"ID", "TYPE", "ITEM ID", "NAME", "SERIAL", "NOT AFTER"}

func pkiItemRow(it client.PKICollectionItem) []string {
	na := "-"
	if it.NotAfter != nil {
		na = *it.NotAfter
	}
	return []string{it.ID, it.Type, it.ItemID, it.FriendlyName, it.SerialNumber, na}
}

func (c *cli) printItem(it client.PKICollectionItem, err error) error {
	if err != nil {
		return err
	}
	return c.print(it, pkiItemHeader, [][]string{pkiItemRow(it)})
}

// newPKICollectionsCmd is lockbox pki collections: named sets of CAs and
// certificates that alerts watch.
func (c *cli) newPKICollectionsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "collections", Short: "PKI collections: named sets of CAs and certificates that alerts watch"}
	var project, name, description string
	create := &cobra.Command{
		Use: "create --project ID --name NAME [--description TEXT]", Short: "Create a collection", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if project == "" || name == "" {
				return errors.New("--project and --name are required")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			return c.printCollection(cl.PKICreateCollection(cmd.Context(), project, name, description))
		},
	}
	projectFlag(create, &project)
	create.Flags().StringVar(&name, "name", "", "the collection's name")
	create.Flags().StringVar(&description, "description", "", "what it holds")

	var listProject string
	list := &cobra.Command{
		Use: "list --project ID", Short: "List a project's collections", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if listProject == "" {
				return errors.New("--project is required")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			cs, err := cl.PKICollections(cmd.Context(), listProject)
			if err != nil {
				return err
			}
			rows := make([][]string, len(cs))
			for i, x := range cs {
				rows[i] = []string{x.ID, x.Name, x.Description}
			}
			if cs == nil {
				cs = []client.PKICollection{}
			}
			return c.print(struct {
				Collections []client.PKICollection `json:"collections"`
			}{cs}, pkiCollectionHeader, rows)
		},
	}
	projectFlag(list, &listProject)

	get := &cobra.Command{Use: "get COLLECTION_ID", Short: "Show a collection", Args: cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, id string) error {
			return c.printCollection(cl.PKICollection(ctx, id))
		})}
	del := &cobra.Command{Use: "delete COLLECTION_ID", Short: "Delete a collection, its items and its alerts", Args: cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, id string) error {
			return c.printCollection(cl.PKIDeleteCollection(ctx, id))
		})}

	var itemType string
	var offset, limit int
	items := &cobra.Command{
		Use: "items COLLECTION_ID [--type ca|certificate]", Short: "List a collection's CAs and certificates", Args: cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, id string) error {
			its, total, err := cl.PKICollectionItems(ctx, id, itemType, offset, limit)
			if err != nil {
				return err
			}
			rows := make([][]string, len(its))
			for i, it := range its {
				rows[i] = pkiItemRow(it)
			}
			if its == nil {
				its = []client.PKICollectionItem{}
			}
			return c.print(struct {
				Items      []client.PKICollectionItem `json:"collectionItems"`
				TotalCount int                        `json:"totalCount"`
			}{its, total}, pkiItemHeader, rows)
		}),
	}
	items.Flags().StringVar(&itemType, "type", "", "only CAs (ca) or only certificates (certificate)")
	items.Flags().IntVar(&offset, "offset", 0, "items to skip")
	items.Flags().IntVar(&limit, "limit", 100, "items to list (1-100)")

	var addCA, addCert string
	add := &cobra.Command{
		Use: "add COLLECTION_ID (--ca CA_ID | --certificate CERT_ID)", Short: "Put a CA or a certificate into a collection", Args: cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, id string) error {
			if (addCA == "") == (addCert == "") {
				return errors.New("give one of --ca and --certificate")
			}
			if addCA != "" {
				return c.printItem(cl.PKIAddCollectionItem(ctx, id, "ca", addCA))
			}
			return c.printItem(cl.PKIAddCollectionItem(ctx, id, "certificate", addCert))
		}),
	}
	add.Flags().StringVar(&addCA, "ca", "", "a CA's id")
	add.Flags().StringVar(&addCert, "certificate", "", "a certificate's id (lockbox pki certs get SERIAL shows it)")
	remove := &cobra.Command{
		Use: "remove COLLECTION_ID ITEM_ID", Short: "Take an item (the ID column of items) out of a collection", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			return c.printItem(cl.PKIRemoveCollectionItem(cmd.Context(), args[0], args[1]))
		},
	}
	cmd.AddCommand(create, list, get, del, items, add, remove)
	return cmd
}

var pkiAlertHeader = []string{"ID", "NAME", "COLLECTION", "DAYS", "EMAILS", "LAST SENT"}

func pkiAlertRow(a client.PKIAlert) []string {
	last := "-"
	if a.LastSentAt != nil {
		last = *a.LastSentAt
	}
	return []string{a.ID, a.Name, a.PkiCollectionID, strconv.Itoa(a.AlertBeforeDays), a.RecipientEmails, last}
}

func (c *cli) printAlert(a client.PKIAlert, err error) error {
	if err != nil {
		return err
	}
	return c.print(a, pkiAlertHeader, [][]string{pkiAlertRow(a)})
}

func splitEmails(s string) []string {
	var out []string
	for e := range strings.SplitSeq(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// newPKIAlertsCmd is lockbox pki alerts: mail the certificates of a
// collection that are about to expire.
func (c *cli) newPKIAlertsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "alerts", Short: "PKI alerts: mail, once a day, the certificates of a collection about to expire"}
	var project, collection, name, emails string
	var days int
	create := &cobra.Command{
		Use:   "create --project ID --collection ID --name NAME --days N --emails a@x,b@y",
		Short: "Create an alert (the server needs LOCKBOX_SMTP_URL to send it)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if project == "" || collection == "" || name == "" || emails == "" || days == 0 {
				return errors.New("--project, --collection, --name, --days and --emails are required")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			return c.printAlert(cl.PKICreateAlert(cmd.Context(), project, collection, name, days, splitEmails(emails)))
		},
	}
	projectFlag(create, &project)
	create.Flags().StringVar(&collection, "collection", "", "the collection watched")
	create.Flags().StringVar(&name, "name", "", "the alert's name")
	create.Flags().IntVar(&days, "days", 0, "mail certificates expiring within this many days (1-3650)")
	create.Flags().StringVar(&emails, "emails", "", "recipients, comma-separated (1-5)")

	var uName, uCollection, uEmails string
	var uDays int
	update := &cobra.Command{
		Use: "update ALERT_ID [--name N] [--collection ID] [--days N] [--emails a@x,b@y]", Short: "Change an alert", Args: cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, id string) error {
			body := map[string]any{}
			if uName != "" {
				body["name"] = uName
			}
			if uCollection != "" {
				body["pkiCollectionId"] = uCollection
			}
			if uDays != 0 {
				body["alertBeforeDays"] = uDays
			}
			if uEmails != "" {
				body["emails"] = splitEmails(uEmails)
			}
			return c.printAlert(cl.PKIUpdateAlert(ctx, id, body))
		}),
	}
	update.Flags().StringVar(&uName, "name", "", "a new name")
	update.Flags().StringVar(&uCollection, "collection", "", "another collection of the project")
	update.Flags().IntVar(&uDays, "days", 0, "a new window in days")
	update.Flags().StringVar(&uEmails, "emails", "", "new recipients, comma-separated")

	var listProject string
	list := &cobra.Command{
		Use: "list --project ID", Short: "List a project's alerts", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if listProject == "" {
				return errors.New("--project is required")
			}
			cl, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			as, err := cl.PKIAlerts(cmd.Context(), listProject)
			if err != nil {
				return err
			}
			rows := make([][]string, len(as))
			for i, a := range as {
				rows[i] = pkiAlertRow(a)
			}
			if as == nil {
				as = []client.PKIAlert{}
			}
			return c.print(struct {
				Alerts []client.PKIAlert `json:"alerts"`
			}{as}, pkiAlertHeader, rows)
		},
	}
	projectFlag(list, &listProject)
	get := &cobra.Command{Use: "get ALERT_ID", Short: "Show an alert", Args: cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, id string) error {
			return c.printAlert(cl.PKIAlert(ctx, id))
		})}
	del := &cobra.Command{Use: "delete ALERT_ID", Short: "Delete an alert", Args: cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, id string) error {
			return c.printAlert(cl.PKIDeleteAlert(ctx, id))
		})}
	cmd.AddCommand(create, update, list, get, del)
	return cmd
}

// newPKICARenewCmds are lockbox pki ca renew and ca versions.
func (c *cli) newPKICARenewCmds() []*cobra.Command {
	var notAfter string
	renew := &cobra.Command{
		Use:   "renew CA_ID --not-after DATE",
		Short: "Give a root or lockbox-signed intermediate CA a new certificate for its existing key",
		Args:  cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, id string) error {
			if notAfter == "" {
				return errors.New("--not-after is required")
			}
			out, err := cl.PKIRenewCA(ctx, id, notAfter)
			if err != nil {
				return err
			}
			return c.printLine(strings.TrimSpace(out.Certificate+"\n"+out.CertificateChain), out)
		}),
	}
	renew.Flags().StringVar(&notAfter, "not-after", "", "the new certificate's end, e.g. 2035-01-31 (later than the current one)")
	versions := &cobra.Command{
		Use: "versions CA_ID", Short: "List the certificates a CA has had, oldest first", Args: cobra.ExactArgs(1),
		RunE: c.oneArg(func(ctx context.Context, cl *client.Client, id string) error {
			certs, err := cl.PKICACertificates(ctx, id)
			if err != nil {
				return err
			}
			rows := make([][]string, len(certs))
			for i, x := range certs {
				rows[i] = []string{strconv.Itoa(x.Version), x.SerialNumber}
			}
			if certs == nil {
				certs = []client.PKICACertificate{}
			}
			return c.print(certs, []string{"VERSION", "SERIAL"}, rows)
		}),
	}
	return []*cobra.Command{renew, versions}
}
