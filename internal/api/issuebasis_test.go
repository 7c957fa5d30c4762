package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/cache"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/pki"
	"github.com/lockbox-dev/lockbox/internal/sshca"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// meanwhile is the store with a change made between an issuance's check
// and the storing of its certificate (where the key generation and the
// signature lie): the next store of a certificate first runs the change.
type meanwhile struct {
	*store.DB
	change func()
}

func (m *meanwhile) run() {
	if f := m.change; f != nil {
		m.change = nil
		f()
	}
}

func (m *meanwhile) CreateCertificate(ctx context.Context, c pki.Certificate, b pki.Basis, ev audit.Event) error {
	m.run()
	return m.DB.CreateCertificate(ctx, c, b, ev)
}

func (m *meanwhile) RecordSSHCert(ctx context.Context, c sshca.Cert, b sshca.Basis, ev audit.Event) error {
	m.run()
	return m.DB.RecordSSHCert(ctx, c, b, ev)
}

// TestAnIssuanceFollowsRulesChangedWhileItRan: an admin's change to a CA,
// a template or a host that lands after an issuance was checked and before
// its certificate is stored is not side-stepped: the issuance is checked
// again as things now are and refused if they no longer allow it (a CA
// that now requires a template, a narrowed or disabled template, a login
// mapping taken away), or issued if they still do. Before, each was
// issued and stored as first checked.
func TestAnIssuanceFollowsRulesChangedWhileItRan(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		ctx := context.Background()
		p := createProject(t, e, e.Token, map[string]any{"projectName": "issue-basis"})
		admin := authz.Actor{Kind: authz.ActorIdentity, ID: e.IdentityID, OrgID: e.OrgID, Name: "admin"}
		st := &meanwhile{DB: e.DB}
		az := authz.NewResolver(e.DB, nil)
		pkis, sshs := pki.NewService(st, az, e.Keyring, nil), sshca.NewService(st, az, e.Keyring, nil)
		// The SSH service caches templates in a generation of its own, as on
		// another node: the server's writes reach it only when a context is
		// synchronised again (cache.Gen.Begin).
		gen := cache.New(e.DB)
		sshs.SetCache(gen)
		synced := func() context.Context {
			ctx, err := gen.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return ctx
		}
		refused := func(err error, kind errs.Kind, text string) {
			t.Helper()
			if !errs.Is(err, kind) || !strings.Contains(err.Error(), text) {
				t.Fatalf("got %v, want a %v saying %q", err, kind, text)
			}
			if st.change != nil {
				t.Fatal("the change did not run")
			}
		}
		certs := func(want int) {
			t.Helper()
			if _, n, err := e.DB.Certificates(ctx, p.ID, 0, 100); err != nil || n != want {
				t.Fatalf("%d certificates stored, want %d (%v)", n, want, err)
			}
		}

		// PKI: a CA that began to require a template.
		ca := rootCA(t, e, p.ID, "Basis Root", "ec-prime256v1")
		st.change = func() {
			e.Must(t, 200, "PATCH", "/api/v1/pki/ca/"+ca.ID, e.Token, map[string]any{"requireTemplateForIssuance": true})
		}
		_, err := pkis.Issue(ctx, admin, pki.IssueRequest{CAID: ca.ID, CommonName: "a.example.com", TTL: "1h", KeyAlgorithm: "ec-prime256v1"})
		refused(err, errs.Invalid, "Certificate template is required")
		certs(0)

		// A template narrowed, then one changed in a way that still allows it.
		var tm struct{ CertificateTemplate struct{ ID string } }
		e.Must(t, 200, "POST", "/api/v1/pki/certificate-templates", e.Token, map[string]any{"caId": ca.ID, "name": "web",
			"commonName": "*.example.com", "subjectAlternativeName": "*.example.com", "ttl": "1d",
			"keyUsages": []string{"digital_signature"}, "extendedKeyUsages": []string{"server_auth"}}).Decode(t, &tm)
		tid := tm.CertificateTemplate.ID
		st.change = func() {
			e.Must(t, 200, "PATCH", "/api/v1/pki/certificate-templates/"+tid, e.Token, map[string]any{"commonName": "*.other.com"})
		}
		_, err = pkis.Issue(ctx, admin, pki.IssueRequest{TemplateID: tid, CommonName: "a.example.com", KeyAlgorithm: "ec-prime256v1"})
		refused(err, errs.Invalid, "not allowed by the certificate template's policy")
		certs(0)
		st.change = func() {
			e.Must(t, 200, "PATCH", "/api/v1/pki/certificate-templates/"+tid, e.Token, map[string]any{"ttl": "2d"})
		}
		out, err := pkis.Issue(ctx, admin, pki.IssueRequest{TemplateID: tid, CommonName: "b.other.com", KeyAlgorithm: "ec-prime256v1"})
		if err != nil || st.change != nil || out.Cert.TemplateID != tid {
			t.Fatalf("an issuance a change still allows: %+v, %v", out.Cert, err)
		}
		certs(1)

		// A CSR signed through a template narrowed meanwhile (Sign checks
		// as Issue does, with the client's key).
		csrKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "c.other.com"}}, csrKey)
		if err != nil {
			t.Fatal(err)
		}
		csrPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}))
		st.change = func() {
			e.Must(t, 200, "PATCH", "/api/v1/pki/certificate-templates/"+tid, e.Token, map[string]any{"commonName": "*.third.com"})
		}
		_, err = pkis.Sign(ctx, admin, pki.IssueRequest{TemplateID: tid, CSR: csrPEM})
		refused(err, errs.Invalid, "not allowed by the certificate template's policy")
		certs(1)

		// SSH: a template disabled.
		sca := createSSHCA(t, e, e.Token, p.ID, "ED25519")
		stpl := createSSHTemplate(t, e, e.Token, map[string]any{"sshCaId": sca.ID, "name": "basis", "allowedUsers": []string{"*"}})
		st.change = func() {
			e.Must(t, 200, "PATCH", "/api/v1/ssh/certificate-templates/"+stpl.ID, e.Token, map[string]any{"status": "disabled"})
		}
		_, err = sshs.Issue(synced(), admin, sshca.CertRequest{TemplateID: stpl.ID, Principals: []string{"deploy"}})
		refused(err, errs.Invalid, "is disabled")
		// One that still allows it is seen on the retry though the template
		// was cached when the request began (the retry's reads are
		// synchronised again): issued, not refused as changing.
		stpl2 := createSSHTemplate(t, e, e.Token, map[string]any{"sshCaId": sca.ID, "name": "basis2", "allowedUsers": []string{"*"}})
		st.change = func() {
			e.Must(t, 200, "PATCH", "/api/v1/ssh/certificate-templates/"+stpl2.ID, e.Token, map[string]any{"maxTTL": "2h"})
		}
		if out, err := sshs.Issue(synced(), admin, sshca.CertRequest{TemplateID: stpl2.ID, Principals: []string{"deploy"}}); err != nil ||
			st.change != nil || out.Cert.TemplateID != stpl2.ID {
			t.Fatalf("an SSH certificate a change still allows, the template cached: %+v, %v", out.Cert, err)
		}

		// A host whose login mapping for the caller is taken away, then one
		// changed in a way that still lets the caller in.
		var host struct{ ID string }
		e.Must(t, 200, "POST", "/api/v1/ssh/hosts", e.Token, map[string]any{"projectId": p.ID, "hostname": "basis.example.com",
			"userSshCaId": sca.ID, "hostSshCaId": sca.ID, "loginMappings": []map[string]any{
				{"loginUser": "deploy", "allowedPrincipals": map[string]any{"usernames": []string{e.IdentityID}}}}}).Decode(t, &host)
		st.change = func() {
			e.Must(t, 200, "PATCH", "/api/v1/ssh/hosts/"+host.ID, e.Token, map[string]any{"loginMappings": []map[string]any{
				{"loginUser": "deploy", "allowedPrincipals": map[string]any{"usernames": []string{"someone-else"}}}}})
		}
		_, _, err = sshs.IssueHostUserCert(ctx, admin, host.ID, "deploy")
		refused(err, errs.Forbidden, "not allowed to login as deploy")
		if _, n, err := e.DB.SSHCerts(ctx, p.ID, 0, 100); err != nil || n != 1 {
			t.Fatalf("%d SSH certificates stored after the refusals, want 1 (%v)", n, err)
		}
		e.Must(t, 200, "PATCH", "/api/v1/ssh/hosts/"+host.ID, e.Token, map[string]any{"loginMappings": []map[string]any{
			{"loginUser": "deploy", "allowedPrincipals": map[string]any{"usernames": []string{e.IdentityID}}}}})
		st.change = func() {
			e.Must(t, 200, "PATCH", "/api/v1/ssh/hosts/"+host.ID, e.Token, map[string]any{"alias": "renamed"})
		}
		if _, issued, err := sshs.IssueHostUserCert(ctx, admin, host.ID, "deploy"); err != nil || st.change != nil || issued.Cert.HostID != host.ID {
			t.Fatalf("a host user certificate a change still allows: %+v, %v", issued.Cert, err)
		}
		if _, n, err := e.DB.SSHCerts(ctx, p.ID, 0, 100); err != nil || n != 2 {
			t.Fatalf("%d SSH certificates stored, want 2 (%v)", n, err)
		}

		// A host renamed while its host certificate was signed: the
		// certificate names the host as it now is, not as first read.
		hostPub, _, _ := ed25519.GenerateKey(rand.Reader)
		sshPub, err := ssh.NewPublicKey(hostPub)
		if err != nil {
			t.Fatal(err)
		}
		st.change = func() {
			e.Must(t, 200, "PATCH", "/api/v1/ssh/hosts/"+host.ID, e.Token, map[string]any{"hostname": "moved.example.com"})
		}
		_, issued, err := sshs.IssueHostHostCert(ctx, admin, host.ID, string(ssh.MarshalAuthorizedKey(sshPub)))
		if err != nil || st.change != nil {
			t.Fatalf("a host certificate across a rename: %v", err)
		}
		if !slices.Equal(issued.Cert.Principals, []string{"moved.example.com"}) {
			t.Fatalf("the host certificate names %v, want the host's new name", issued.Cert.Principals)
		}
		parsed, _, _, _, err := ssh.ParseAuthorizedKey([]byte(issued.SignedKey))
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := parsed.(*ssh.Certificate); !ok || !slices.Equal(c.ValidPrincipals, []string{"moved.example.com"}) {
			t.Fatalf("the signed host certificate: %#v", parsed)
		}
	})
}
