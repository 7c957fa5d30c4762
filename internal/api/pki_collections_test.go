package api_test

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/mail"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

type collectionOut struct{ ID, ProjectID, Name, Description, CreatedAt, UpdatedAt string }

type itemOut struct {
	ID, PkiCollectionID, Type, ItemID, FriendlyName, SerialNumber string
	NotBefore, NotAfter                                           *string
}

type alertOut struct {
	ID, ProjectID, PkiCollectionID, Name, RecipientEmails string
	AlertBeforeDays                                       int
	LastSentAt                                            *string
}

func certID(t *testing.T, e *apptest.Env, serial string) string {
	t.Helper()
	var c struct{ Certificate certOut }
	e.Must(t, 200, "GET", "/api/v1/pki/certificates/"+serial, e.Token, nil).Decode(t, &c)
	return c.Certificate.ID
}

func auditHas(t *testing.T, e *apptest.Env, types ...string) {
	t.Helper()
	body := string(e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?limit=1000", e.Token, nil).Body)
	for _, typ := range types {
		if !strings.Contains(body, `"`+typ+`"`) {
			t.Fatalf("audit log lacks %q", typ)
		}
	}
}

func TestPKICollectionsAndAlertsCRUD(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		a := createProject(t, e, e.Token, map[string]any{"projectName": "coll-a"})
		b := createProject(t, e, e.Token, map[string]any{"projectName": "coll-b"})
		caA := rootCA(t, e, a.ID, "Coll Root A", "ec-prime256v1")
		caB := rootCA(t, e, b.ID, "Coll Root B", "ec-prime256v1")
		certA := issue(t, e, e.Token, caA.ID, map[string]any{"commonName": "a.example.com", "ttl": "1h", "keyAlgorithm": "ec-prime256v1"})
		certB := issue(t, e, e.Token, caB.ID, map[string]any{"commonName": "b.example.com", "ttl": "1h", "keyAlgorithm": "ec-prime256v1"})

		var col collectionOut
		e.Must(t, 200, "POST", "/api/v1/pki/collections", e.Token, map[string]any{"projectId": a.ID, "name": " web ", "description": "front"}).Decode(t, &col)
		if col.Name != "web" || col.ProjectID != a.ID || col.Description != "front" {
			t.Fatalf("collection %+v", col)
		}
		e.Must(t, 200, "PATCH", "/api/v1/pki/collections/"+col.ID, e.Token, map[string]any{"name": "web-tier"}).Decode(t, &col)
		if col.Name != "web-tier" || col.Description != "front" {
			t.Fatalf("updated collection %+v", col)
		}
		var ca, cert itemOut
		e.Must(t, 200, "POST", "/api/v1/pki/collections/"+col.ID+"/items", e.Token, map[string]any{"type": "ca", "itemId": caA.ID}).Decode(t, &ca)
		e.Must(t, 200, "POST", "/api/v1/pki/collections/"+col.ID+"/items", e.Token,
			map[string]any{"type": "certificate", "itemId": certID(t, e, certA.SerialNumber)}).Decode(t, &cert)
		if ca.Type != "ca" || ca.ItemID != caA.ID || ca.NotAfter == nil || cert.SerialNumber != certA.SerialNumber || cert.FriendlyName != "a.example.com" {
			t.Fatalf("items %+v %+v", ca, cert)
		}
		// The same one twice, a bad type, another project's certificate or CA.
		assertError(t, e.Do(t, "POST", "/api/v1/pki/collections/"+col.ID+"/items", e.Token, map[string]any{"type": "ca", "itemId": caA.ID}), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v1/pki/collections/"+col.ID+"/items", e.Token, map[string]any{"type": "key", "itemId": caA.ID}), 422, "ValidationFailure")
		assertError(t, e.Do(t, "POST", "/api/v1/pki/collections/"+col.ID+"/items", e.Token, map[string]any{"type": "ca", "itemId": caB.ID}), 404, "NotFound")
		assertError(t, e.Do(t, "POST", "/api/v1/pki/collections/"+col.ID+"/items", e.Token,
			map[string]any{"type": "certificate", "itemId": certID(t, e, certB.SerialNumber)}), 404, "NotFound")

		var items struct {
			CollectionItems []itemOut
			TotalCount      int
		}
		e.Must(t, 200, "GET", "/api/v1/pki/collections/"+col.ID+"/items", e.Token, nil).Decode(t, &items)
		// Both were added in the same second: their order is by id then.
		if items.TotalCount != 2 || len(items.CollectionItems) != 2 || items.CollectionItems[0].ID == items.CollectionItems[1].ID ||
			(items.CollectionItems[0].ID != ca.ID && items.CollectionItems[1].ID != ca.ID) {
			t.Fatalf("items %+v", items)
		}
		e.Must(t, 200, "GET", "/api/v1/pki/collections/"+col.ID+"/items?type=certificate&limit=1", e.Token, nil).Decode(t, &items)
		if items.TotalCount != 1 || items.CollectionItems[0].ID != cert.ID {
			t.Fatalf("certificate items %+v", items)
		}

		var al alertOut
		e.Must(t, 200, "POST", "/api/v1/pki/alerts", e.Token, map[string]any{"projectId": a.ID, "pkiCollectionId": col.ID, "name": "expiry",
			"alertBeforeDays": 30, "emails": []string{"ops@example.com", "sec@example.com"}}).Decode(t, &al)
		if al.RecipientEmails != "ops@example.com,sec@example.com" || al.AlertBeforeDays != 30 || al.PkiCollectionID != col.ID || al.LastSentAt != nil {
			t.Fatalf("alert %+v", al)
		}
		for _, body := range []map[string]any{
			{"projectId": a.ID, "pkiCollectionId": col.ID, "name": "x", "alertBeforeDays": 30, "emails": []string{}},
			{"projectId": a.ID, "pkiCollectionId": col.ID, "name": "x", "alertBeforeDays": 30, "emails": []string{"a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io", "f@x.io"}},
			{"projectId": a.ID, "pkiCollectionId": col.ID, "name": "x", "alertBeforeDays": 30, "emails": []string{"not an address"}},
			{"projectId": a.ID, "pkiCollectionId": col.ID, "name": "x", "alertBeforeDays": 0, "emails": []string{"a@x.io"}},
			{"projectId": a.ID, "pkiCollectionId": col.ID, "name": "", "alertBeforeDays": 3, "emails": []string{"a@x.io"}},
			{"projectId": a.ID, "name": "x", "alertBeforeDays": 3, "emails": []string{"a@x.io"}},
		} {
			assertError(t, e.Do(t, "POST", "/api/v1/pki/alerts", e.Token, body), 422, "ValidationFailure")
		}
		assertError(t, e.Do(t, "POST", "/api/v1/pki/alerts", e.Token, map[string]any{"projectId": a.ID, "pkiCollectionId": col.ID,
			"name": "expiry", "alertBeforeDays": 3, "emails": []string{"a@x.io"}}), 400, "BadRequest")
		e.Must(t, 200, "PATCH", "/api/v1/pki/alerts/"+al.ID, e.Token, map[string]any{"alertBeforeDays": 7, "emails": []string{"ops@example.com"}}).Decode(t, &al)
		if al.AlertBeforeDays != 7 || al.RecipientEmails != "ops@example.com" || al.Name != "expiry" {
			t.Fatalf("updated alert %+v", al)
		}
		var alerts struct{ Alerts []alertOut }
		for _, path := range []string{"/api/v1/pki/alerts?projectId=" + a.ID, "/api/v2/workspace/" + a.Slug + "/pki-alerts"} {
			e.Must(t, 200, "GET", path, e.Token, nil).Decode(t, &alerts)
			if len(alerts.Alerts) != 1 || alerts.Alerts[0].ID != al.ID {
				t.Fatalf("%s: %+v", path, alerts)
			}
		}
		var cols struct{ Collections []collectionOut }
		e.Must(t, 200, "GET", "/api/v2/workspace/"+a.ID+"/pki-collections", e.Token, nil).Decode(t, &cols)
		if len(cols.Collections) != 1 || cols.Collections[0].ID != col.ID {
			t.Fatalf("collections %+v", cols)
		}

		// Authorization: a viewer reads but creates nothing; project B's
		// member finds none of A's; A's member cannot list B's.
		_, viewer := projectMember(t, e, a.ID, "coll-viewer", "viewer")
		e.Must(t, 200, "GET", "/api/v1/pki/collections/"+col.ID, viewer, nil)
		e.Must(t, 200, "GET", "/api/v1/pki/alerts/"+al.ID, viewer, nil)
		e.Must(t, 200, "GET", "/api/v1/pki/collections/"+col.ID+"/items", viewer, nil)
		for _, r := range []apptest.Response{
			e.Do(t, "POST", "/api/v1/pki/collections", viewer, map[string]any{"projectId": a.ID, "name": "v"}),
			e.Do(t, "PATCH", "/api/v1/pki/collections/"+col.ID, viewer, map[string]any{"name": "v"}),
			e.Do(t, "DELETE", "/api/v1/pki/collections/"+col.ID, viewer, nil),
			e.Do(t, "POST", "/api/v1/pki/collections/"+col.ID+"/items", viewer, map[string]any{"type": "ca", "itemId": caA.ID}),
			e.Do(t, "DELETE", "/api/v1/pki/collections/"+col.ID+"/items/"+ca.ID, viewer, nil),
			e.Do(t, "POST", "/api/v1/pki/alerts", viewer, map[string]any{"projectId": a.ID, "pkiCollectionId": col.ID, "name": "v",
				"alertBeforeDays": 3, "emails": []string{"v@example.com"}}),
			e.Do(t, "PATCH", "/api/v1/pki/alerts/"+al.ID, viewer, map[string]any{"alertBeforeDays": 3}),
			e.Do(t, "DELETE", "/api/v1/pki/alerts/"+al.ID, viewer, nil),
			e.Do(t, "POST", "/api/v1/pki/ca/"+caA.ID+"/renew", viewer, map[string]any{"type": "existing", "notAfter": time.Now().AddDate(20, 0, 0).Format(time.RFC3339)}),
		} {
			assertError(t, r, 403, "PermissionDenied")
		}
		_, memberB := projectMember(t, e, b.ID, "coll-member-b", "member")
		for _, r := range []apptest.Response{
			e.Do(t, "GET", "/api/v1/pki/collections/"+col.ID, memberB, nil),
			e.Do(t, "GET", "/api/v1/pki/collections/"+col.ID+"/items", memberB, nil),
			e.Do(t, "PATCH", "/api/v1/pki/collections/"+col.ID, memberB, map[string]any{"name": "mine"}),
			e.Do(t, "POST", "/api/v1/pki/collections/"+col.ID+"/items", memberB, map[string]any{"type": "ca", "itemId": caB.ID}),
			e.Do(t, "GET", "/api/v1/pki/alerts/"+al.ID, memberB, nil),
			e.Do(t, "DELETE", "/api/v1/pki/alerts/"+al.ID, memberB, nil),
		} {
			assertError(t, r, 404, "NotFound")
			if strings.Contains(string(r.Body), a.ID) {
				t.Fatalf("the answer names project A: %s", r.Body)
			}
		}
		for _, path := range []string{"/api/v1/pki/collections?projectId=" + a.ID, "/api/v1/pki/alerts?projectId=" + a.ID} {
			assertError(t, e.Do(t, "GET", path, memberB, nil), 403, "PermissionDenied")
		}
		// B's member cannot hang an alert in B on A's collection.
		var colB collectionOut
		e.Must(t, 200, "POST", "/api/v1/pki/collections", memberB, map[string]any{"projectId": b.ID, "name": "b"}).Decode(t, &colB)
		assertError(t, e.Do(t, "POST", "/api/v1/pki/alerts", e.Token, map[string]any{"projectId": b.ID, "pkiCollectionId": col.ID,
			"name": "cross", "alertBeforeDays": 3, "emails": []string{"x@example.com"}}), 404, "NotFound")
		assertError(t, e.Do(t, "PATCH", "/api/v1/pki/alerts/"+al.ID, e.Token, map[string]any{"pkiCollectionId": colB.ID}), 404, "NotFound")
		assertError(t, e.Do(t, "DELETE", "/api/v1/pki/collections/"+colB.ID+"/items/"+ca.ID, e.Token, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", "/api/v1/pki/collections/"+col.ID, "", nil), 401, "UnauthorizedError")

		// Removing an item; deleting the certificate's CA takes its items; deleting the collection takes its alert.
		e.Must(t, 200, "DELETE", "/api/v1/pki/collections/"+col.ID+"/items/"+cert.ID, e.Token, nil)
		assertError(t, e.Do(t, "DELETE", "/api/v1/pki/collections/"+col.ID+"/items/"+cert.ID, e.Token, nil), 404, "NotFound")
		e.Must(t, 200, "DELETE", "/api/v1/pki/ca/"+caA.ID, e.Token, nil)
		e.Must(t, 200, "GET", "/api/v1/pki/collections/"+col.ID+"/items", e.Token, nil).Decode(t, &items)
		if items.TotalCount != 0 {
			t.Fatalf("items after the CA went: %+v", items)
		}
		e.Must(t, 200, "DELETE", "/api/v1/pki/collections/"+col.ID, e.Token, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/pki/alerts/"+al.ID, e.Token, nil), 404, "NotFound")
		auditHas(t, e, "create-pki-collection", "update-pki-collection", "add-pki-collection-item", "delete-pki-collection-item",
			"delete-pki-collection", "create-pki-alert", "update-pki-alert")
	})
}

// TestPKIAlertMailedOncePerDay: the alert worker mails the collection's
// certificates that expire within alertBeforeDays through a real SMTP
// server, once per day however often it runs and on however many nodes.
func TestPKIAlertMailedOncePerDay(t *testing.T) {
	sink := testsvc.SMTP(t)
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		m, err := mail.Parse("smtp://" + sink.Addr + "?from=lockbox@example.com")
		if err != nil {
			t.Fatal(err)
		}
		var skew atomic.Int64
		clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
		e := apptest.Bootstrapped(t, d, apptest.Options{Mailer: m, Clock: clock})
		node2 := apptest.Start(t, d, apptest.Options{Share: e, Mailer: m, Clock: clock})
		p := createProject(t, e, e.Token, map[string]any{"projectName": "alerting"})
		root := rootCA(t, e, p.ID, "Alert Mail Root", "ec-prime256v1")
		soon := issue(t, e, e.Token, root.ID, map[string]any{"commonName": "soon.example.com", "ttl": "3d", "keyAlgorithm": "ec-prime256v1"})
		later := issue(t, e, e.Token, root.ID, map[string]any{"commonName": "later.example.com", "ttl": "60d", "keyAlgorithm": "ec-prime256v1"})
		gone := issue(t, e, e.Token, root.ID, map[string]any{"commonName": "gone.example.com", "ttl": "1d", "keyAlgorithm": "ec-prime256v1"})
		outside := issue(t, e, e.Token, root.ID, map[string]any{"commonName": "outside.example.com", "ttl": "1d", "keyAlgorithm": "ec-prime256v1"})
		e.Must(t, 200, "POST", "/api/v1/pki/certificates/"+gone.SerialNumber+"/revoke", e.Token, nil)
		var col collectionOut
		e.Must(t, 200, "POST", "/api/v1/pki/collections", e.Token, map[string]any{"projectId": p.ID, "name": "mail"}).Decode(t, &col)
		for _, c := range []issuedOut{soon, later, gone} {
			e.Must(t, 200, "POST", "/api/v1/pki/collections/"+col.ID+"/items", e.Token, map[string]any{"type": "certificate", "itemId": certID(t, e, c.SerialNumber)})
		}
		e.Must(t, 200, "POST", "/api/v1/pki/collections/"+col.ID+"/items", e.Token, map[string]any{"type": "ca", "itemId": root.ID})
		name := "expiry-" + string(d)
		rcpt := "pki-" + string(d) + "@example.com"
		var al alertOut
		e.Must(t, 200, "POST", "/api/v1/pki/alerts", e.Token, map[string]any{"projectId": p.ID, "pkiCollectionId": col.ID, "name": name,
			"alertBeforeDays": 7, "emails": []string{rcpt}}).Decode(t, &al)

		subject := "(alert " + name + ")"
		mails := func() int { return strings.Count(sink.Received(), subject) }
		// Two nodes tick at once: one claims the alert and mails it.
		tickBoth := func() int {
			var n1, n2 int
			var wg sync.WaitGroup
			wg.Go(func() {
				var err error
				if n1, err = e.App.PKIAlerts.Tick(t.Context()); err != nil {
					t.Error(err)
				}
			})
			wg.Go(func() {
				var err error
				if n2, err = node2.App.PKIAlerts.Tick(t.Context()); err != nil {
					t.Error(err)
				}
			})
			wg.Wait()
			return n1 + n2
		}
		// A new alert is first looked at a day on (as Infisical's daily
		// run), so deleting and making it again mails no one.
		if n := tickBoth(); n != 0 {
			t.Fatalf("claimed %d alerts at once, want none before a day", n)
		}
		e.Must(t, 200, "DELETE", "/api/v1/pki/alerts/"+al.ID, e.Token, nil)
		e.Must(t, 200, "POST", "/api/v1/pki/alerts", e.Token, map[string]any{"projectId": p.ID, "pkiCollectionId": col.ID, "name": name,
			"alertBeforeDays": 7, "emails": []string{rcpt}}).Decode(t, &al)
		if n := tickBoth(); n != 0 || mails() != 0 {
			t.Fatalf("made again: claimed %d alerts, %d mails, want none", n, mails())
		}
		skew.Store(int64(24*time.Hour + time.Minute))
		if n := tickBoth(); n != 1 {
			t.Fatalf("claimed %d alerts, want 1", n)
		}
		got := sink.WaitFor(t, subject, 10*time.Second)
		msg := got[strings.LastIndex(got, "To: "+rcpt):]
		if !strings.Contains(msg, "1 certificate(s) expiring within 7 days") || !strings.Contains(msg, soon.SerialNumber) ||
			strings.Contains(msg, later.SerialNumber) || strings.Contains(msg, gone.SerialNumber) || strings.Contains(msg, outside.SerialNumber) ||
			strings.Contains(msg, "BEGIN") {
			t.Fatalf("the mail:\n%s", msg)
		}
		// The same day: nothing is due, nothing is written.
		due := countRows(t, e, `SELECT COUNT(*) FROM pki_alerts WHERE id = '`+al.ID+`' AND last_sent_at IS NOT NULL`)
		audits := countRows(t, e, `SELECT COUNT(*) FROM audit_logs WHERE event_type = 'send-pki-alert'`)
		if due != 1 || audits != 1 {
			t.Fatalf("after sending: last_sent_at set %d, audit events %d", due, audits)
		}
		dueAt := int64(countRows(t, e, `SELECT COUNT(*) FROM pki_alerts WHERE due_at > `+strconv.FormatInt(time.Now().Add(23*time.Hour).UnixMicro(), 10)))
		if dueAt != 1 {
			t.Fatalf("the claim did not move the alert a day on")
		}
		skew.Store(int64(36 * time.Hour))
		for range 3 {
			if n := tickBoth(); n != 0 {
				t.Fatalf("claimed %d alerts the same day", n)
			}
		}
		if n := countRows(t, e, `SELECT COUNT(*) FROM audit_logs WHERE event_type = 'send-pki-alert'`); n != 1 || mails() != 1 {
			t.Fatalf("same day: %d audit events, %d mails", n, mails())
		}
		// A day on: mailed again, once.
		skew.Store(int64(49 * time.Hour))
		if n := tickBoth(); n != 1 {
			t.Fatalf("next day claimed %d", n)
		}
		deadline := time.Now().Add(10 * time.Second)
		for mails() < 2 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if mails() != 2 {
			t.Fatalf("mails after a day: %d", mails())
		}
		var out alertOut
		e.Must(t, 200, "GET", "/api/v1/pki/alerts/"+al.ID, e.Token, nil).Decode(t, &out)
		if out.LastSentAt == nil {
			t.Fatalf("lastSentAt not set: %+v", out)
		}
		// Nothing expiring in the window: claimed, nothing mailed.
		e.Must(t, 200, "POST", "/api/v1/pki/certificates/"+soon.SerialNumber+"/revoke", e.Token, nil)
		skew.Store(int64(74 * time.Hour))
		if n := tickBoth(); n != 1 {
			t.Fatalf("third day claimed %d", n)
		}
		time.Sleep(200 * time.Millisecond)
		if mails() != 2 {
			t.Fatalf("mailed with nothing expiring: %d", mails())
		}
		auditHas(t, e, "send-pki-alert")
	})
}

// TestPKIAlertRetriedWhenNoMailGoesOut: an SMTP server that is not there
// leaves the alert due again an hour later, not a day.
func TestPKIAlertRetriedWhenNoMailGoesOut(t *testing.T) {
	m, err := mail.Parse("smtp://127.0.0.1:1?from=lockbox@example.com")
	if err != nil {
		t.Fatal(err)
	}
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		var skew atomic.Int64
		clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
		e := apptest.Bootstrapped(t, d, apptest.Options{Mailer: m, Clock: clock})
		p := createProject(t, e, e.Token, map[string]any{"projectName": "retry"})
		root := rootCA(t, e, p.ID, "Retry Root", "ec-prime256v1")
		c := issue(t, e, e.Token, root.ID, map[string]any{"commonName": "soon.example.com", "ttl": "3d", "keyAlgorithm": "ec-prime256v1"})
		var col collectionOut
		e.Must(t, 200, "POST", "/api/v1/pki/collections", e.Token, map[string]any{"projectId": p.ID, "name": "r"}).Decode(t, &col)
		e.Must(t, 200, "POST", "/api/v1/pki/collections/"+col.ID+"/items", e.Token, map[string]any{"type": "certificate", "itemId": certID(t, e, c.SerialNumber)})
		e.Must(t, 200, "POST", "/api/v1/pki/alerts", e.Token, map[string]any{"projectId": p.ID, "pkiCollectionId": col.ID, "name": "r",
			"alertBeforeDays": 7, "emails": []string{"r@example.com"}})
		skew.Store(int64(24*time.Hour + time.Minute))
		if n, err := e.App.PKIAlerts.Tick(t.Context()); n != 1 || err != nil {
			t.Fatalf("tick %d %v", n, err)
		}
		skew.Store(int64(24*time.Hour + 62*time.Minute))
		if n, err := e.App.PKIAlerts.Tick(t.Context()); n != 1 || err != nil {
			t.Fatalf("retry tick %d %v", n, err)
		}
		if n := countRows(t, e, `SELECT COUNT(*) FROM pki_alerts WHERE last_sent_at IS NULL`); n != 1 {
			t.Fatalf("an alert that reached nobody is marked sent")
		}
	})
}

// TestPKICARenewal renews a root and an intermediate with their existing
// keys: certificates issued before verify with openssl against the chain
// they were given, new ones chain to the new CA certificates, both
// versions are listed, and the CRL covers both.
func TestPKICARenewal(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "renew"})
		notAfter := time.Now().AddDate(2, 0, 0).UTC().Format(time.RFC3339)
		root := createCA(t, e, e.Token, map[string]any{"projectId": p.ID, "type": "root", "commonName": "Renew Root", "keyAlgorithm": "ec-prime256v1", "notAfter": notAfter})
		inter := createCA(t, e, e.Token, map[string]any{"projectId": p.ID, "type": "intermediate", "commonName": "Renew Issuing",
			"parentCaId": root.ID, "keyAlgorithm": "ec-prime256v1", "notAfter": time.Now().AddDate(1, 0, 0).UTC().Format(time.RFC3339)})
		leaf := map[string]any{"commonName": "svc.example.com", "ttl": "24h", "keyAlgorithm": "ec-prime256v1"}
		before := issue(t, e, e.Token, inter.ID, leaf)
		var oldRoot struct{ Certificate string }
		e.Must(t, 200, "GET", "/api/v1/pki/ca/"+root.ID+"/certificate", e.Token, nil).Decode(t, &oldRoot)

		// Refusals: a new key, a notAfter not later than now's, past the parent's.
		assertError(t, e.Do(t, "POST", "/api/v1/pki/ca/"+inter.ID+"/renew", e.Token, map[string]any{"type": "new", "notAfter": notAfter}), 422, "ValidationFailure")
		assertError(t, e.Do(t, "POST", "/api/v1/pki/ca/"+inter.ID+"/renew", e.Token, map[string]any{"type": "existing"}), 422, "ValidationFailure")
		assertError(t, e.Do(t, "POST", "/api/v1/pki/ca/"+inter.ID+"/renew", e.Token, map[string]any{"type": "existing",
			"notAfter": time.Now().AddDate(0, 1, 0).UTC().Format(time.RFC3339)}), 422, "ValidationFailure")
		assertError(t, e.Do(t, "POST", "/api/v1/pki/ca/"+inter.ID+"/renew", e.Token, map[string]any{"type": "existing",
			"notAfter": time.Now().AddDate(3, 0, 0).UTC().Format(time.RFC3339)}), 422, "ValidationFailure")
		pending := createCA(t, e, e.Token, map[string]any{"projectId": p.ID, "type": "intermediate", "commonName": "Pending", "keyAlgorithm": "ec-prime256v1"})
		assertError(t, e.Do(t, "POST", "/api/v1/pki/ca/"+pending.ID+"/renew", e.Token, map[string]any{"type": "existing", "notAfter": notAfter}), 400, "BadRequest")

		// The root first (to live longer), then the intermediate.
		newRootAfter := time.Now().AddDate(5, 0, 0).UTC().Truncate(time.Second)
		var rr wireCertPEMOut
		e.Must(t, 200, "POST", "/api/v1/pki/ca/"+root.ID+"/renew", e.Token, map[string]any{"type": "existing", "notAfter": newRootAfter.Format(time.RFC3339)}).Decode(t, &rr)
		if rr.SerialNumber == *root.SerialNumber || !parsePEMCert(t, rr.Certificate).NotAfter.Equal(newRootAfter) {
			t.Fatalf("renewed root %+v", rr)
		}
		newInterAfter := time.Now().AddDate(4, 0, 0).UTC().Truncate(time.Second)
		var ir wireCertPEMOut
		e.Must(t, 200, "POST", "/api/v1/pki/ca/"+inter.ID+"/renew", e.Token, map[string]any{"type": "existing", "notAfter": newInterAfter.Format(time.RFC3339)}).Decode(t, &ir)
		if ir.SerialNumber == *inter.SerialNumber || !strings.Contains(ir.CertificateChain, strings.TrimSpace(rr.Certificate)) {
			t.Fatalf("renewed intermediate %+v", ir)
		}
		var got struct{ CA caOut }
		e.Must(t, 200, "GET", "/api/v1/pki/ca/"+inter.ID, e.Token, nil).Decode(t, &got)
		if na, err := time.Parse(time.RFC3339, *got.CA.NotAfter); err != nil || *got.CA.SerialNumber != ir.SerialNumber || !na.Equal(newInterAfter) {
			t.Fatalf("CA after renewal %+v", got.CA)
		}
		var versions []struct {
			Certificate, CertificateChain, SerialNumber string
			Version                                     int
		}
		e.Must(t, 200, "GET", "/api/v1/pki/ca/"+inter.ID+"/ca-certificates", e.Token, nil).Decode(t, &versions)
		if len(versions) != 2 || versions[0].Version != 1 || versions[0].SerialNumber != *inter.SerialNumber ||
			versions[1].Version != 2 || versions[1].SerialNumber != ir.SerialNumber {
			t.Fatalf("versions %+v", versions)
		}
		after := issue(t, e, e.Token, inter.ID, leaf)
		if after.CertificateChain != strings.TrimSpace(ir.Certificate+"\n"+ir.CertificateChain) {
			t.Fatalf("the new leaf's chain is not the renewed one:\n%s", after.CertificateChain)
		}
		if leafNA := parsePEMCert(t, after.Certificate); leafNA.Issuer.String() != parsePEMCert(t, ir.Certificate).Subject.String() {
			t.Fatalf("issuer %s", leafNA.Issuer)
		}

		dir := t.TempDir()
		oldRootPEM := writeFile(t, dir, "old-root.pem", oldRoot.Certificate)
		newRootPEM := writeFile(t, dir, "new-root.pem", rr.Certificate)
		// Before: against the chain and root it was given.
		if out, ok := openssl(t, "verify", "-CAfile", oldRootPEM, "-untrusted", writeFile(t, dir, "before-chain.pem", before.CertificateChain),
			writeFile(t, dir, "before.pem", before.Certificate)); !ok {
			t.Fatalf("openssl: a certificate issued before renewal no longer verifies: %s", out)
		}
		// After: against the new chain and new root.
		if out, ok := openssl(t, "verify", "-CAfile", newRootPEM, "-untrusted", writeFile(t, dir, "after-chain.pem", after.CertificateChain),
			writeFile(t, dir, "after.pem", after.Certificate)); !ok {
			t.Fatalf("openssl: a certificate issued after renewal does not verify: %s", out)
		}
		// A revoked pre-renewal certificate is on the CRL, which verifies under the old chain.
		e.Must(t, 200, "POST", "/api/v1/pki/certificates/"+before.SerialNumber+"/revoke", e.Token, nil)
		crl := e.Must(t, 200, "GET", "/api/v1/pki/crl/"+inter.ID+"/der", "", nil).Body
		crlPEM := writeFile(t, dir, "crl.pem", string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl})))
		out, ok := openssl(t, "verify", "-crl_check", "-CRLfile", crlPEM, "-CAfile", oldRootPEM, "-untrusted", dir+"/before-chain.pem", dir+"/before.pem")
		if ok || !strings.Contains(out, "revoked") {
			t.Fatalf("openssl -crl_check accepts the revoked pre-renewal certificate: %s", out)
		}
		if out, ok := openssl(t, "verify", "-crl_check", "-CRLfile", crlPEM, "-CAfile", newRootPEM, "-untrusted", dir+"/after-chain.pem", dir+"/after.pem"); !ok {
			t.Fatalf("openssl -crl_check rejects the new certificate: %s", out)
		}
		auditHas(t, e, "renew-certificate-authority")
	})
}

type wireCertPEMOut struct{ Certificate, CertificateChain, SerialNumber string }

// TestPKICRLDistributionPoint: with a public URL, issued certificates name
// the CRL route; the CRL fetched from that exact URL, without a token,
// makes openssl reject a revoked certificate. The CA issuers URL serves
// the CA's certificate. Without a public URL neither extension is there.
func TestPKICRLDistributionPoint(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d, apptest.Options{SelfSiteURL: true})
		p := createProject(t, e, e.Token, map[string]any{"projectName": "cdp"})
		root := rootCA(t, e, p.ID, "CDP Root", "ec-prime256v1")
		inter := createCA(t, e, e.Token, map[string]any{"projectId": p.ID, "type": "intermediate", "commonName": "CDP Issuing",
			"parentCaId": root.ID, "keyAlgorithm": "ec-prime256v1"})
		c := issue(t, e, e.Token, inter.ID, map[string]any{"commonName": "cdp.example.com", "ttl": "1h", "keyAlgorithm": "ec-prime256v1"})
		cert := parsePEMCert(t, c.Certificate)
		wantCRL := e.URL + "/api/v1/pki/crl/" + inter.ID + "/der"
		if len(cert.CRLDistributionPoints) != 1 || cert.CRLDistributionPoints[0] != wantCRL {
			t.Fatalf("CRL distribution points %v, want %s", cert.CRLDistributionPoints, wantCRL)
		}
		if ic := parsePEMCert(t, strings.SplitAfter(c.CertificateChain, "-----END CERTIFICATE-----")[0]); len(ic.CRLDistributionPoints) != 1 ||
			ic.CRLDistributionPoints[0] != e.URL+"/api/v1/pki/crl/"+root.ID+"/der" {
			t.Fatalf("the intermediate's CRL distribution points %v", ic.CRLDistributionPoints)
		}
		if len(cert.IssuingCertificateURL) != 1 {
			t.Fatalf("AIA %v", cert.IssuingCertificateURL)
		}
		get := func(url string) []byte {
			res, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != 200 {
				t.Fatalf("GET %s: %d %s", url, res.StatusCode, b)
			}
			return b
		}
		issuer, err := x509.ParseCertificate(get(cert.IssuingCertificateURL[0]))
		if err != nil || cert.CheckSignatureFrom(issuer) != nil {
			t.Fatalf("the CA issuers URL does not serve the issuer: %v", err)
		}
		e.Must(t, 200, "POST", "/api/v1/pki/certificates/"+c.SerialNumber+"/revoke", e.Token, map[string]any{"revocationReason": "KEY_COMPROMISE"})
		dir := t.TempDir()
		crlPEM := writeFile(t, dir, "crl.pem", string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: get(cert.CRLDistributionPoints[0])})))
		var rc struct{ Certificate string }
		e.Must(t, 200, "GET", "/api/v1/pki/ca/"+root.ID+"/certificate", e.Token, nil).Decode(t, &rc)
		out, ok := openssl(t, "verify", "-crl_check", "-CRLfile", crlPEM, "-CAfile", writeFile(t, dir, "root.pem", rc.Certificate),
			"-untrusted", writeFile(t, dir, "chain.pem", c.CertificateChain), writeFile(t, dir, "leaf.pem", c.Certificate))
		if ok || !strings.Contains(out, "revoked") {
			t.Fatalf("openssl -crl_check with the CRL from the distribution point accepts the revoked certificate: %s", out)
		}
		assertError(t, e.Do(t, "GET", "/api/v1/pki/ca/00000000-0000-0000-0000-000000000000/certificate/der", "", nil), 404, "NotFound")

		plain := apptest.Bootstrapped(t, d)
		q := createProject(t, plain, plain.Token, map[string]any{"projectName": "no-cdp"})
		r2 := rootCA(t, plain, q.ID, "No CDP", "ec-prime256v1")
		c2 := parsePEMCert(t, issue(t, plain, plain.Token, r2.ID, map[string]any{"commonName": "x.example.com", "ttl": "1h", "keyAlgorithm": "ec-prime256v1"}).Certificate)
		if len(c2.CRLDistributionPoints) != 0 || len(c2.IssuingCertificateURL) != 0 {
			t.Fatalf("extensions without a public URL: %v %v", c2.CRLDistributionPoints, c2.IssuingCertificateURL)
		}
	})
}
