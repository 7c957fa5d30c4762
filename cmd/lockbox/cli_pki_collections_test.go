package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/client"
)

// TestCLIPKICollectionsAlertsRenew drives lockbox pki collections, alerts
// and ca renew|versions against a real server process.
func TestCLIPKICollectionsAlertsRenew(t *testing.T) {
	addr, _, _, _ := startServer(t, t.TempDir(), nil)
	c := newCLI(t, addr)
	admin, project := adminSetup(t, c)
	decode := func(out string, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	var root client.PKICA
	decode(c.must(admin, "pki", "ca", "create", "-o", "json", "--project", project, "--type", "root", "--common-name", "CLI Coll Root",
		"--key-algorithm", "ec-prime256v1", "--not-after", time.Now().AddDate(1, 0, 0).Format("2006-01-02")), &root)

	var col client.PKICollection
	decode(c.must(admin, "pki", "collections", "create", "-o", "json", "--project", project, "--name", "edge"), &col)
	if col.ID == "" || col.Name != "edge" {
		t.Fatalf("collection %+v", col)
	}
	var it client.PKICollectionItem
	decode(c.must(admin, "pki", "collections", "add", col.ID, "--ca", root.ID, "-o", "json"), &it)
	if it.Type != "ca" || it.ItemID != root.ID {
		t.Fatalf("item %+v", it)
	}
	if out := c.must(admin, "pki", "collections", "items", col.ID); !strings.Contains(out, root.ID) || !strings.Contains(out, "ca") {
		t.Fatalf("items:\n%s", out)
	}
	if r := c.run(admin, "pki", "collections", "add", col.ID); r.code == 0 {
		t.Fatal("add with neither --ca nor --certificate succeeded")
	}

	var al client.PKIAlert
	decode(c.must(admin, "pki", "alerts", "create", "-o", "json", "--project", project, "--collection", col.ID, "--name", "soon",
		"--days", "30", "--emails", "ops@example.com, sec@example.com"), &al)
	if al.RecipientEmails != "ops@example.com,sec@example.com" || al.AlertBeforeDays != 30 {
		t.Fatalf("alert %+v", al)
	}
	decode(c.must(admin, "pki", "alerts", "update", al.ID, "--days", "7", "-o", "json"), &al)
	if al.AlertBeforeDays != 7 {
		t.Fatalf("updated alert %+v", al)
	}
	if out := c.must(admin, "pki", "alerts", "list", "--project", project); !strings.Contains(out, al.ID) || !strings.Contains(out, "ops@example.com") {
		t.Fatalf("alerts list:\n%s", out)
	}
	c.must(admin, "pki", "alerts", "delete", al.ID)

	renewed := c.must(admin, "pki", "ca", "renew", root.ID, "--not-after", time.Now().AddDate(3, 0, 0).Format("2006-01-02"))
	if !strings.Contains(renewed, "BEGIN CERTIFICATE") {
		t.Fatalf("renew:\n%s", renewed)
	}
	var versions []client.PKICACertificate
	decode(c.must(admin, "pki", "ca", "versions", root.ID, "-o", "json"), &versions)
	if len(versions) != 2 || versions[1].Version != 2 || versions[0].SerialNumber == versions[1].SerialNumber {
		t.Fatalf("versions %+v", versions)
	}
	c.must(admin, "pki", "collections", "delete", col.ID)
}
