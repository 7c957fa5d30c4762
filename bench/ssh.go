package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"

	"golang.org/x/crypto/ssh"

	"github.com/lockbox-dev/lockbox/internal/client"
)

// prepareSSHSign makes a project, a CA of algorithm alg and a template, and
// returns one sign request over HTTP: an ed25519 user key signed for the
// principal deploy, the certificate recorded and audited.
func prepareSSHSign(ctx context.Context, c *client.Client, url, alg string) (func(*http.Client) error, error) {
	var p struct {
		Project struct{ ID string } `json:"project"`
	}
	if err := c.Do(ctx, "POST", "/api/v1/projects", map[string]any{"projectName": "bench-ssh"}, &p); err != nil {
		return nil, err
	}
	ca, err := c.SSHCreateCA(ctx, p.Project.ID, "bench", alg)
	if err != nil {
		return nil, err
	}
	tpl, err := c.SSHCreateTemplate(ctx, client.SSHTemplate{SshCaID: ca.ID, Name: "bench", AllowedUsers: []string{"deploy"},
		AllowedHosts: []string{}, AllowUserCertificates: true})
	if err != nil {
		return nil, err
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(map[string]any{"certificateTemplateId": tpl.ID, "publicKey": string(ssh.MarshalAuthorizedKey(key)),
		"principals": []string{"deploy"}})
	token := c.Token
	return func(hc *http.Client) error {
		return send(hc, "POST", url+"/api/v1/ssh/certificates/sign", token, string(b))
	}, nil
}
