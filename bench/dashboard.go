package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/client"
)

var benchCSRF = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// prepareDashboard seeds a project with n secrets in each of its three
// environments (dev, staging, prod), logs the bootstrap user in to the
// dashboard (the login form, its CSRF cookie and token) and returns one GET
// of the project's secrets overview (an n × 3 grid: session check,
// permissions, three audited listings, template) with the session cookie.
func prepareDashboard(ctx context.Context, c *client.Client, base, email, password string, n int) (func(*http.Client) error, error) {
	var p struct {
		Project struct{ ID string } `json:"project"`
	}
	if err := c.Do(ctx, "POST", "/api/v1/projects", map[string]any{"projectName": "bench-dashboard"}, &p); err != nil {
		return nil, err
	}
	for _, env := range []string{"dev", "staging", "prod"} {
		for start := 0; start < n; start += 100 {
			var items []map[string]any
			for i := start; i < min(start+100, n); i++ {
				items = append(items, map[string]any{"secretKey": fmt.Sprintf("KEY_%04d", i), "secretValue": fmt.Sprintf("%s-value-%d", env, i)})
			}
			if err := c.Do(ctx, "POST", "/api/v3/secrets/batch/raw", map[string]any{"workspaceId": p.Project.ID, "environment": env,
				"secretPath": "/", "secrets": items}, nil); err != nil {
				return nil, err
			}
		}
	}
	cookie, err := dashboardLogin(base, email, password)
	if err != nil {
		return nil, err
	}
	page := base + "/projects/" + p.Project.ID + "/secrets"
	// get requests the page; with count, it reads the body and counts cells.
	get := func(hc *http.Client, count bool) (int, error) {
		req, err := http.NewRequest("GET", page, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Cookie", cookie)
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("status %d", resp.StatusCode)
		}
		if !count {
			_, err = io.Copy(io.Discard, resp.Body)
			return 0, err
		}
		body, err := io.ReadAll(resp.Body)
		return strings.Count(string(body), `class="present"`), err
	}
	// The grid is whole once, before the run: every cell present.
	if got, err := get(http.DefaultClient, true); err != nil || got != n*3 {
		return nil, fmt.Errorf("the overview holds %d cells (want %d): %v", got, n*3, err)
	}
	return func(hc *http.Client) error {
		_, err := get(hc, false)
		return err
	}, nil
}

// dashboardLogin logs in through the login form and returns the Cookie
// header of the session.
func dashboardLogin(base, email, password string) (string, error) {
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(base + "/login")
	if err != nil {
		return "", err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := benchCSRF.FindSubmatch(body)
	if m == nil {
		return "", errors.New("the login page has no CSRF token")
	}
	form := url.Values{"email": {email}, "password": {password}, "csrf_token": {string(m[1])}}
	req, err := http.NewRequest("POST", base+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	for _, ck := range resp.Cookies() {
		req.AddCookie(ck)
	}
	resp, err = noRedirect.Do(req)
	if err != nil {
		return "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "lockbox_session" && ck.Value != "" {
			return ck.Name + "=" + ck.Value, nil
		}
	}
	return "", fmt.Errorf("dashboard login: status %d, no session cookie", resp.StatusCode)
}
