package main

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/lockbox-dev/lockbox/internal/client"
)

// preparePKIIssue makes a project and an ECDSA P-256 root CA and returns
// one issue-certificate request: a P-256 key generated and certified by
// the CA, sealed and committed with its audit event, returned once.
func preparePKIIssue(ctx context.Context, c *client.Client, url string) (func(*http.Client) error, error) {
	var p struct {
		Project struct{ ID string } `json:"project"`
	}
	if err := c.Do(ctx, "POST", "/api/v1/projects", map[string]any{"projectName": "bench-pki"}, &p); err != nil {
		return nil, err
	}
	ca, err := c.PKICreateCA(ctx, client.PKINewCA{ProjectID: p.Project.ID, Type: "root", CommonName: "Bench Root", KeyAlgorithm: "ec-prime256v1"})
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(map[string]any{"commonName": "svc.example.com", "altNames": "svc.example.com", "ttl": "1h", "keyAlgorithm": "ec-prime256v1"})
	issueURL := url + "/api/v1/pki/ca/" + ca.ID + "/issue-certificate"
	token := c.Token
	return func(hc *http.Client) error { return send(hc, "POST", issueURL, token, string(b)) }, nil
}
