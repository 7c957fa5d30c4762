package api_test

import (
	"strings"
	"testing"

	infisical "github.com/infisical/go-sdk"
	sdkssh "github.com/infisical/go-sdk/packages/api/ssh"
	"github.com/infisical/go-sdk/packages/util"
	"golang.org/x/crypto/ssh"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// The real Go SDK v0.8.0 drives every SSH call it has against lockbox.
func TestGoSDKSSH(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "sdk-ssh"})
		userCA, hostCA := createSSHCA(t, e, e.Token, p.ID, "ED25519"), createSSHCA(t, e, e.Token, p.ID, "EC_prime256v1")
		tpl := createSSHTemplate(t, e, e.Token, map[string]any{"sshCaId": userCA.ID, "name": "sdk", "allowedUsers": []string{"deploy", "ci-*"},
			"allowedHosts": []string{"*.internal"}, "allowCustomKeyIds": true, "maxTTL": "4h"})
		clientID := uaSetup(t, e, map[string]any{})
		secret, _ := newSecret(t, e, map[string]any{})
		sdk := newSDK(t, e)
		if _, err := sdk.Auth().UniversalAuthLogin(clientID, secret); err != nil {
			t.Fatal(err)
		}
		s := sdk.Ssh()

		pubText, pub := newSSHKey(t)
		signed, err := s.SignKey(infisical.SignSshPublicKeyOptions{CertificateTemplateID: tpl.ID, PublicKey: pubText,
			CertType: util.UserCert, Principals: []string{"deploy"}, TTL: "2h", KeyID: "sdk-key"})
		if err != nil {
			t.Fatalf("SDK SignKey: %v", err)
		}
		c := parseSSHCert(t, signed.SignedKey, userCA.PublicKey)
		if c.KeyId != "sdk-key" || itoa(c.Serial) != signed.SerialNumber || string(c.Key.Marshal()) != string(pub.Marshal()) {
			t.Fatalf("SDK SignKey certificate %+v", c)
		}
		if _, err := s.SignKey(infisical.SignSshPublicKeyOptions{CertificateTemplateID: tpl.ID, PublicKey: pubText,
			Principals: []string{"root"}}); err == nil || !strings.Contains(err.Error(), "400") {
			t.Fatalf("SDK SignKey for a principal the template refuses: %v", err)
		}
		creds, err := s.IssueCredentials(infisical.IssueSshCredsOptions{CertificateTemplateID: tpl.ID, KeyAlgorithm: util.ECDSAP256,
			CertType: util.HostCert, Principals: []string{"db.internal"}})
		if err != nil || creds.KeyAlgorithm != util.ECDSAP256 {
			t.Fatalf("SDK IssueCredentials: %+v %v", creds, err)
		}
		hc := parseSSHCert(t, creds.SignedKey, userCA.PublicKey)
		priv, err := ssh.ParsePrivateKey([]byte(creds.PrivateKey))
		if err != nil || hc.CertType != ssh.HostCert || string(priv.PublicKey().Marshal()) != string(hc.Key.Marshal()) {
			t.Fatalf("SDK IssueCredentials key pair: %v %+v", err, hc)
		}

		host, err := s.AddSshHost(infisical.AddSshHostOptions{ProjectID: p.ID, Hostname: "bastion.internal", Alias: "bastion",
			UserSshCaId: userCA.ID, HostSshCaId: hostCA.ID, UserCertTtl: "30m",
			LoginMappings: []sdkssh.SshHostLoginMapping{{LoginUser: "ubuntu", AllowedPrincipals: sdkssh.AllowedPrincipals{Usernames: []string{e.IdentityID}}}}})
		if err != nil || host.ID == "" || host.Hostname != "bastion.internal" || host.Alias != "bastion" || host.UserCertTtl != "30m" ||
			host.HostCertTtl != "1y" || host.UserSshCaId != userCA.ID || host.HostSshCaId != hostCA.ID || len(host.LoginMappings) != 1 {
			t.Fatalf("SDK AddSshHost: %+v %v", host, err)
		}
		hosts, err := s.GetSshHosts(infisical.GetSshHostsOptions{})
		if err != nil || len(hosts) != 1 || hosts[0].ID != host.ID || hosts[0].LoginMappings[0].LoginUser != "ubuntu" {
			t.Fatalf("SDK GetSshHosts: %+v %v", hosts, err)
		}
		userPK, err := s.GetSshHostUserCaPublicKey(host.ID)
		if err != nil || strings.TrimSpace(userPK) != userCA.PublicKey {
			t.Fatalf("SDK GetSshHostUserCaPublicKey: %q %v", userPK, err)
		}
		hostPK, err := s.GetSshHostHostCaPublicKey(host.ID)
		if err != nil || strings.TrimSpace(hostPK) != hostCA.PublicKey {
			t.Fatalf("SDK GetSshHostHostCaPublicKey: %q %v", hostPK, err)
		}
		uc, err := s.IssueSshHostUserCert(host.ID, infisical.IssueSshHostUserCertOptions{LoginUser: "ubuntu"})
		if err != nil || uc.KeyAlgorithm != "ED25519" || uc.PrivateKey == "" {
			t.Fatalf("SDK IssueSshHostUserCert: %+v %v", uc, err)
		}
		if c := parseSSHCert(t, uc.SignedKey, userCA.PublicKey); strings.Join(c.ValidPrincipals, ",") != "ubuntu" || c.CertType != ssh.UserCert {
			t.Fatalf("SDK host user certificate %+v", c)
		}
		if _, err := s.IssueSshHostUserCert(host.ID, infisical.IssueSshHostUserCertOptions{LoginUser: "root"}); err == nil || !strings.Contains(err.Error(), "403") {
			t.Fatalf("SDK IssueSshHostUserCert for an unmapped login user: %v", err)
		}
		hcert, err := s.IssueSshHostHostCert(host.ID, infisical.IssueSshHostHostCertOptions{PublicKey: pubText})
		if err != nil {
			t.Fatalf("SDK IssueSshHostHostCert: %v", err)
		}
		if c := parseSSHCert(t, hcert.SignedKey, hostCA.PublicKey); c.CertType != ssh.HostCert || strings.Join(c.ValidPrincipals, ",") != "bastion.internal" ||
			itoa(c.Serial) != hcert.SerialNumber {
			t.Fatalf("SDK host certificate %+v", c)
		}
	})
}

// The real Go SDK's AddSshHost without CA ids: the host gets the project's
// default CAs (made on this first host), its host certificate is signed by
// the default host CA and its logins by the default user CA, as in Infisical.
func TestGoSDKSSHDefaultCAs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "sdk-ssh-defaults"})
		clientID := uaSetup(t, e, map[string]any{})
		secret, _ := newSecret(t, e, map[string]any{})
		sdk := newSDK(t, e)
		if _, err := sdk.Auth().UniversalAuthLogin(clientID, secret); err != nil {
			t.Fatal(err)
		}
		s := sdk.Ssh()
		host, err := s.AddSshHost(infisical.AddSshHostOptions{ProjectID: p.ID, Hostname: "edge.internal",
			LoginMappings: []sdkssh.SshHostLoginMapping{{LoginUser: "ops", AllowedPrincipals: sdkssh.AllowedPrincipals{Usernames: []string{e.IdentityID}}}}})
		if err != nil || host.UserSshCaId == "" || host.HostSshCaId == "" || host.UserSshCaId == host.HostSshCaId {
			t.Fatalf("SDK AddSshHost without CA ids: %+v %v", host, err)
		}
		var cfg sshConfigOut
		e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID+"/ssh-config", e.Token, nil).Decode(t, &cfg)
		if *cfg.DefaultUserSshCaID != host.UserSshCaId || *cfg.DefaultHostSshCaID != host.HostSshCaId {
			t.Fatalf("host CAs %s/%s, defaults %+v", host.UserSshCaId, host.HostSshCaId, cfg)
		}
		caKey := func(id string) string {
			var out struct{ CA sshCAOut }
			e.Must(t, 200, "GET", "/api/v1/ssh/ca/"+id, e.Token, nil).Decode(t, &out)
			return out.CA.PublicKey
		}
		userCAKey, hostCAKey := caKey(host.UserSshCaId), caKey(host.HostSshCaId)
		if pk, err := s.GetSshHostHostCaPublicKey(host.ID); err != nil || strings.TrimSpace(pk) != hostCAKey {
			t.Fatalf("SDK GetSshHostHostCaPublicKey: %q %v", pk, err)
		}
		if pk, err := s.GetSshHostUserCaPublicKey(host.ID); err != nil || strings.TrimSpace(pk) != userCAKey {
			t.Fatalf("SDK GetSshHostUserCaPublicKey: %q %v", pk, err)
		}
		pubText, _ := newSSHKey(t)
		hc, err := s.IssueSshHostHostCert(host.ID, infisical.IssueSshHostHostCertOptions{PublicKey: pubText})
		if err != nil {
			t.Fatalf("SDK IssueSshHostHostCert: %v", err)
		}
		if c := parseSSHCert(t, hc.SignedKey, hostCAKey); c.CertType != ssh.HostCert || strings.Join(c.ValidPrincipals, ",") != "edge.internal" {
			t.Fatalf("host certificate %+v", c)
		}
		uc, err := s.IssueSshHostUserCert(host.ID, infisical.IssueSshHostUserCertOptions{LoginUser: "ops"})
		if err != nil {
			t.Fatalf("SDK IssueSshHostUserCert: %v", err)
		}
		if c := parseSSHCert(t, uc.SignedKey, userCAKey); c.CertType != ssh.UserCert || strings.Join(c.ValidPrincipals, ",") != "ops" {
			t.Fatalf("user certificate %+v", c)
		}
		// A second host shares the defaults; no new CAs.
		h2, err := s.AddSshHost(infisical.AddSshHostOptions{ProjectID: p.ID, Hostname: "edge2.internal"})
		if err != nil || h2.UserSshCaId != host.UserSshCaId || h2.HostSshCaId != host.HostSshCaId {
			t.Fatalf("SDK second AddSshHost: %+v %v", h2, err)
		}
	})
}
