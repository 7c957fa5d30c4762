package rabbitmq_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider/rabbitmq"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

func inputs(perms map[string]any) map[string]any {
	return map[string]any{"host": "http://127.0.0.1", "port": 15672, "username": "guest", "password": "guest",
		"tags": []string{"monitoring"}, "virtualHost": map[string]any{"name": "/", "permissions": perms}}
}

func newProvider(t *testing.T, in map[string]any) provider.Provider {
	t.Helper()
	b, _ := json.Marshal(in)
	p, err := rabbitmq.New(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func dial(amqpAddr, user, pass string) (*amqp.Connection, error) {
	u := url.URL{Scheme: "amqp", User: url.UserPassword(user, pass), Host: amqpAddr, Path: "/"}
	return amqp.DialConfig(u.String(), amqp.Config{Dial: amqp.DefaultDial(3 * time.Second)})
}

// userTags reads a user back through the management API (nil if it does not exist).
func userTags(t *testing.T, mgmt, user string) []string {
	t.Helper()
	req, _ := http.NewRequest("GET", mgmt+"/api/users/"+url.PathEscape(user), nil)
	req.SetBasicAuth("guest", "guest")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode == 404 {
		return nil
	}
	var u struct{ Tags any }
	json.NewDecoder(res.Body).Decode(&u)
	switch v := u.Tags.(type) {
	case string: // RabbitMQ before 3.9
		return strings.Split(v, ",")
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, x.(string))
		}
		return out
	}
	return []string{}
}

func TestCreateConnectRevoke(t *testing.T) {
	amqpAddr, mgmt := testsvc.RabbitMQ(t)
	ctx := context.Background()
	// Read and write anything, configure (declare) only queues named lbx.*.
	p := newProvider(t, inputs(map[string]any{"configure": "^lbx\\.", "write": ".*", "read": ".*"}))
	if err := p.Validate(ctx); err != nil {
		t.Fatal(err)
	}
	user, pass := "lbx"+testsvc.Suffix(), "Pw"+testsvc.Suffix()+testsvc.Suffix()
	t.Cleanup(func() { p.Revoke(ctx, provider.RevokeRequest{Username: user}) })
	res, err := p.Create(ctx, provider.CreateRequest{Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	if res.Data["DB_USERNAME"] != user || res.Data["DB_PASSWORD"] != pass {
		t.Fatalf("data %v", res.Data)
	}
	if tags := strings.Join(userTags(t, mgmt, user), ","); tags != "monitoring,"+rabbitmq.Tag {
		t.Fatalf("tags %q", tags)
	}
	conn, err := dial(amqpAddr, user, pass)
	if err != nil {
		t.Fatalf("lease credentials do not open an AMQP connection: %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q := "lbx." + testsvc.Suffix()
	if _, err := ch.QueueDeclare(q, false, true, true, false, nil); err != nil {
		t.Fatalf("declare within the configure pattern: %v", err)
	}
	if _, err := ch.QueueDeclare("other."+testsvc.Suffix(), false, true, true, false, nil); err == nil ||
		!strings.Contains(err.Error(), "ACCESS_REFUSED") {
		t.Fatalf("declare outside the configure pattern: %v", err)
	}
	if _, err := dial(amqpAddr, user, "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}

	if err := p.Revoke(ctx, provider.RevokeRequest{Username: user}); err != nil {
		t.Fatal(err)
	}
	if userTags(t, mgmt, user) != nil {
		t.Fatal("user still exists")
	}
	if _, err := dial(amqpAddr, user, pass); err == nil {
		t.Fatal("revoked credentials still open a connection")
	}
	select {
	case <-conn.NotifyClose(make(chan *amqp.Error, 1)):
	case <-time.After(5 * time.Second):
		t.Fatal("the revoked user's open connection was not closed")
	}
	if err := p.Revoke(ctx, provider.RevokeRequest{Username: user}); err != nil {
		t.Fatalf("revoking a missing user: %v", err)
	}
}

func TestRevokeSeveral(t *testing.T) {
	_, mgmt := testsvc.RabbitMQ(t)
	ctx := context.Background()
	p := newProvider(t, inputs(map[string]any{"configure": ".*", "write": ".*", "read": ".*"}))
	var users []string
	for range 3 {
		u := "lbx" + testsvc.Suffix()
		users = append(users, u)
		if _, err := p.Create(ctx, provider.CreateRequest{Username: u, Password: "pw" + testsvc.Suffix()}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range append(users, "lbxmissing"+testsvc.Suffix()) {
		if err := p.Revoke(ctx, provider.RevokeRequest{Username: u}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range users {
		if userTags(t, mgmt, u) != nil {
			t.Fatalf("%s still exists", u)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	testsvc.RabbitMQ(t)
	ctx := context.Background()
	bad := inputs(map[string]any{"configure": ".*", "write": ".*", "read": ".*"})
	bad["password"] = "not-the-password"
	if err := newProvider(t, bad).Validate(ctx); err == nil || strings.Contains(err.Error(), "not-the-password") {
		t.Fatalf("wrong admin password: %v", err)
	}
	novhost := inputs(map[string]any{"configure": ".*", "write": ".*", "read": ".*"})
	novhost["virtualHost"].(map[string]any)["name"] = "no-such-vhost-" + testsvc.Suffix()
	if err := newProvider(t, novhost).Validate(ctx); err == nil || !strings.Contains(err.Error(), "virtual host") {
		t.Fatalf("missing vhost: %v", err)
	}
	down := inputs(map[string]any{"configure": ".*", "write": ".*", "read": ".*"})
	down["port"] = testsvc.FreePort(t)
	if err := newProvider(t, down).Validate(ctx); err == nil {
		t.Fatal("nothing listening, yet valid")
	}
}

func TestInvalidInputs(t *testing.T) {
	perms := map[string]any{"configure": ".*", "write": ".*", "read": ".*"}
	for name, mutate := range map[string]func(m map[string]any){
		"host without scheme": func(m map[string]any) { m["host"] = "127.0.0.1" },
		"host with port":      func(m map[string]any) { m["host"] = "http://127.0.0.1:15672" },
		"host with path":      func(m map[string]any) { m["host"] = "http://127.0.0.1/api" },
		"host with userinfo":  func(m map[string]any) { m["host"] = "http://a:b@127.0.0.1" },
		"ftp host":            func(m map[string]any) { m["host"] = "ftp://127.0.0.1" },
		"port":                func(m map[string]any) { m["port"] = 70000 },
		"no username":         func(m map[string]any) { m["username"] = "" },
		"tag with comma":      func(m map[string]any) { m["tags"] = []string{"a,administrator"} },
		"no vhost":            func(m map[string]any) { delete(m, "virtualHost") },
		"no permissions":      func(m map[string]any) { m["virtualHost"] = map[string]any{"name": "/"} },
		"empty read": func(m map[string]any) {
			m["virtualHost"] = map[string]any{"name": "/", "permissions": map[string]any{"configure": ".*", "write": ".*"}}
		},
		"ca over http":  func(m map[string]any) { m["ca"] = "-----BEGIN CERTIFICATE-----" },
		"unknown field": func(m map[string]any) { m["vhost"] = "/" },
	} {
		in := inputs(perms)
		mutate(in)
		b, _ := json.Marshal(in)
		if _, err := rabbitmq.New(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestNeverTakesOverAUser: Create refuses a user that exists (a PUT would
// overwrite it) and Revoke refuses one without lockbox's tag.
func TestNeverTakesOverAUser(t *testing.T) {
	_, mgmt := testsvc.RabbitMQ(t)
	ctx := context.Background()
	p := newProvider(t, inputs(map[string]any{"configure": "^$", "write": "^$", "read": "^$"}))
	user := "someone" + testsvc.Suffix()
	call := func(method, body string) int { return testsvc.RabbitAPI(t, method, "/users/"+user, body) }
	if st := call("PUT", `{"password":"theirs","tags":"monitoring"}`); st != 201 && st != 204 {
		t.Fatalf("PUT: %d", st)
	}
	t.Cleanup(func() { call("DELETE", "") })
	if _, err := p.Create(ctx, provider.CreateRequest{Username: user, Password: "mine" + testsvc.Suffix()}); !errors.Is(err, provider.ErrExists) {
		t.Fatalf("create over an existing user: %v", err)
	}
	if err := p.Revoke(ctx, provider.RevokeRequest{Username: user}); !errors.Is(err, provider.ErrNotOwned) {
		t.Fatalf("revoke of a user lockbox did not create: %v", err)
	}
	if got := userTags(t, mgmt, user); len(got) != 1 || got[0] != "monitoring" {
		t.Fatalf("the user's tags after the attempts: %v", got)
	}
}
