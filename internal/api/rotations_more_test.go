package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	goredis "github.com/redis/go-redis/v9"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

func createConn(t *testing.T, e *apptest.Env, token, app, name string, creds map[string]any) string {
	t.Helper()
	var out struct{ AppConnection struct{ ID string } }
	e.Must(t, 200, "POST", "/api/v1/app-connections/"+app, token, map[string]any{"name": name, "credentials": creds}).Decode(t, &out)
	return out.AppConnection.ID
}

// TestRedisRotationDualPhase: two ACL users alternate; the previous password
// keeps working until the rotation after.
func TestRedisRotationDualPhase(t *testing.T) {
	host, port := testsvc.Redis(t)
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "cache"})
		sfx := testsvc.Suffix()
		users := []string{"rot-" + sfx + "-1", "rot-" + sfx + "-2"}
		admin := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
		t.Cleanup(func() { admin.Do(context.Background(), "ACL", "DELUSER", users[0], users[1]); admin.Close() })
		login := func(u, pw string) error {
			c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", Username: u, Password: pw, DisableIdentity: true, MaxRetries: 0})
			defer c.Close()
			return c.Ping(context.Background()).Err()
		}
		connID := createConn(t, e, e.Token, "redis", "cache", map[string]any{"host": host, "port": port})
		// ACL rules that would touch passwords are refused.
		assertError(t, e.Do(t, "POST", "/api/v2/secret-rotations/redis-credentials", e.Token, map[string]any{"name": "bad", "projectId": p.ID,
			"connectionId": connID, "environment": "dev", "secretPath": "/", "rotationInterval": 1,
			"parameters": map[string]string{"permissionScope": "~* +@all nopass"}, "secretsMapping": map[string]string{"username": "U", "password": "P"}}), 422, "ValidationFailure")
		// Nor is the default user rotated: a connection that names no user
		// logs in as it, as does every client that names none.
		assertError(t, e.Do(t, "POST", "/api/v2/secret-rotations/redis-credentials", e.Token, map[string]any{"name": "default", "projectId": p.ID,
			"connectionId": connID, "environment": "dev", "secretPath": "/", "rotationInterval": 1,
			"parameters":     map[string]string{"permissionScope": "~* +get", "username1": "default", "username2": users[1]},
			"secretsMapping": map[string]string{"username": "U", "password": "P"}}), 422, "ValidationFailure")
		var rot struct{ SecretRotation rotOut }
		e.Must(t, 200, "POST", "/api/v2/secret-rotations/redis-credentials", e.Token, map[string]any{"name": "cache", "projectId": p.ID,
			"connectionId": connID, "environment": "dev", "secretPath": "/", "rotationInterval": 1,
			"parameters":     map[string]string{"permissionScope": "~app:* +get +set +ping", "username1": users[0], "username2": users[1]},
			"secretsMapping": map[string]string{"username": "REDIS_USER", "password": "REDIS_PASS"}}).Decode(t, &rot)
		read := func() (string, string) {
			u, _ := secretValue(t, e, p.ID, "REDIS_USER")
			pw, _ := secretValue(t, e, p.ID, "REDIS_PASS")
			return u, pw
		}
		u1, p1 := read()
		if u1 != users[0] || login(u1, p1) != nil {
			t.Fatalf("first credentials %q do not work", u1)
		}
		e.Must(t, 200, "POST", "/api/v2/secret-rotations/redis-credentials/"+rot.SecretRotation.ID+"/rotate-secrets", e.Token, nil)
		u2, p2 := read()
		if u2 != users[1] || login(u2, p2) != nil || login(u1, p1) != nil {
			t.Fatalf("after one rotation both %q and %q must log in", u1, u2)
		}
		e.Must(t, 200, "POST", "/api/v2/secret-rotations/redis-credentials/"+rot.SecretRotation.ID+"/rotate-secrets", e.Token, nil)
		u3, p3 := read()
		if u3 != users[0] || login(u3, p3) != nil || login(u2, p2) != nil {
			t.Fatal("after two rotations the newest two must log in")
		}
		if login(u1, p1) == nil {
			t.Fatal("the oldest password still logs in")
		}
		// The ACL rules were applied: a key outside the scope is refused.
		c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", Username: u3, Password: p3, DisableIdentity: true})
		defer c.Close()
		if err := c.Get(context.Background(), "other:key").Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Fatalf("GET outside the scope: %v", err)
		}
		// A scope stored before the rules refused it is not applied: the run
		// fails, and the users keep their rules and passwords.
		rawExec(t, e, `UPDATE secret_rotations SET parameters = '{"username1":"`+users[0]+`","username2":"`+users[1]+
			`","permissionScope":"~* +@all"}' WHERE id = '`+rot.SecretRotation.ID+`'`)
		if r := e.Do(t, "POST", "/api/v2/secret-rotations/redis-credentials/"+rot.SecretRotation.ID+"/rotate-secrets", e.Token, nil); r.Status == 200 ||
			!strings.Contains(string(r.Body), "permission scope is refused") {
			t.Fatalf("a run with a stored superuser scope: %d %s", r.Status, r.Body)
		}
		if login(u3, p3) != nil || c.Get(context.Background(), "other:key").Err() == nil {
			t.Fatal("the refused run changed the users")
		}
		// Deleting with revokeGeneratedCredentials turns both ACL users off
		// with no password, and ends their connections: neither issued
		// password logs in, an open connection is gone, and the users are
		// kept (one may be a user lockbox did not create; Infisical deletes them).
		open := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", Username: u3, Password: p3, DisableIdentity: true, MaxRetries: -1})
		defer open.Close()
		if err := open.Ping(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		e.Must(t, 200, "DELETE", "/api/v2/secret-rotations/redis-credentials/"+rot.SecretRotation.ID+"?revokeGeneratedCredentials=true", e.Token, nil)
		if login(u3, p3) == nil || login(u2, p2) == nil {
			t.Fatal("revoked Redis users still log in")
		}
		if err := open.Ping(context.Background()).Err(); err == nil {
			t.Fatal("a revoked user's open connection still answers")
		}
		for _, u := range users {
			got, err := admin.Do(context.Background(), "ACL", "GETUSER", u).Result()
			if err != nil || got == nil || !strings.Contains(fmt.Sprint(got), "off") || strings.Contains(fmt.Sprint(got), " on ") {
				t.Fatalf("ACL user %s after the revocation: %v (%v), want kept, off", u, got, err)
			}
		}
	})
}

// TestLDAPPasswordRotation: the bound entry's password changes in slapd.
func TestLDAPPasswordRotation(t *testing.T) {
	l := testsvc.StartLDAP(t)
	c, err := l.Bind(l.BindDN, l.BindPass)
	if err != nil {
		t.Fatal(err)
	}
	dn := "uid=app," + l.People
	add := ldap.NewAddRequest(dn, nil)
	add.Attribute("objectClass", []string{"inetOrgPerson"})
	add.Attribute("uid", []string{"app"})
	add.Attribute("cn", []string{"app"})
	add.Attribute("sn", []string{"app"})
	add.Attribute("userPassword", []string{"initial"})
	if err := c.Add(add); err != nil {
		t.Fatal(err)
	}
	c.Close()
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "dir"})
		connID := createConn(t, e, e.Token, "ldap", "dir", map[string]any{"provider": "openldap", "url": l.URL, "dn": l.BindDN, "password": l.BindPass})
		// The connection's own DN, however spelled, is not rotated by it.
		for _, own := range []string{"CN=admin, DC=lockbox, DC=test", `cn=\61dmin,dc=lockbox,dc=test`} {
			assertError(t, e.Do(t, "POST", "/api/v2/secret-rotations/ldap-password", e.Token, map[string]any{"name": "self", "projectId": p.ID,
				"connectionId": connID, "environment": "dev", "secretPath": "/", "rotationInterval": 7,
				"parameters": map[string]string{"dn": own}, "secretsMapping": map[string]string{"dn": "SELF_DN", "password": "SELF_PASS"}}), 422, "ValidationFailure")
		}
		var rot struct{ SecretRotation rotOut }
		e.Must(t, 200, "POST", "/api/v2/secret-rotations/ldap-password", e.Token, map[string]any{"name": "app", "projectId": p.ID,
			"connectionId": connID, "environment": "dev", "secretPath": "/", "rotationInterval": 7,
			"parameters": map[string]string{"dn": dn}, "secretsMapping": map[string]string{"dn": "LDAP_DN", "password": "LDAP_PASS"}}).Decode(t, &rot)
		gotDN, p1 := secretValue(t, e, p.ID, "LDAP_DN")
		_ = p1
		pw1, _ := secretValue(t, e, p.ID, "LDAP_PASS")
		if gotDN != dn {
			t.Fatalf("LDAP_DN %q", gotDN)
		}
		if c, err := l.Bind(dn, pw1); err != nil {
			t.Fatalf("bind with the rotated password: %v", err)
		} else {
			c.Close()
		}
		if _, err := l.Bind(dn, "initial"); err == nil {
			t.Fatal("the initial password still binds")
		}
		e.Must(t, 200, "POST", "/api/v2/secret-rotations/ldap-password/"+rot.SecretRotation.ID+"/rotate-secrets", e.Token, nil)
		pw2, v := secretValue(t, e, p.ID, "LDAP_PASS")
		if pw2 == pw1 || v != 2 {
			t.Fatalf("LDAP_PASS version %d", v)
		}
		if c, err := l.Bind(dn, pw2); err != nil {
			t.Fatalf("bind with the new password: %v", err)
		} else {
			c.Close()
		}
		if _, err := l.Bind(dn, pw1); err == nil {
			t.Fatal("the previous password still binds")
		}
		// Deleting with revokeGeneratedCredentials gives the entry a
		// password nobody knows: the one in the secret stops binding.
		e.Must(t, 200, "DELETE", "/api/v2/secret-rotations/ldap-password/"+rot.SecretRotation.ID+"?revokeGeneratedCredentials=true", e.Token, nil)
		if _, err := l.Bind(dn, pw2); err == nil {
			t.Fatal("the revoked password still binds")
		}
		if pw, _ := secretValue(t, e, p.ID, "LDAP_PASS"); pw != pw2 {
			t.Fatal("revocation changed the secret")
		}
	})
}

// TestRotationAuthorization: app connections are the org admin's; a viewer
// reads rotations but changes nothing; another project's identity sees
// nothing; a connection of another org cannot be used.
func TestRotationAuthorization(t *testing.T) {
	host, port := testsvc.Redis(t)
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		a := createProject(t, e, e.Token, map[string]any{"projectName": "a"})
		b := createProject(t, e, e.Token, map[string]any{"projectName": "b"})
		sfx := testsvc.Suffix()
		admin := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
		t.Cleanup(func() {
			admin.Do(context.Background(), "ACL", "DELUSER", "az-"+sfx+"-1", "az-"+sfx+"-2", "az-"+sfx+"-3", "az-"+sfx+"-4")
			admin.Close()
		})
		creds := map[string]any{"host": host, "port": port}
		connID := createConn(t, e, e.Token, "redis", "cache", creds)

		// An org member may not see or change connections.
		_, member := e.NewIdentity(t, "org-member", "member")
		assertError(t, e.Do(t, "POST", "/api/v1/app-connections/redis", member, map[string]any{"name": "mine", "credentials": creds}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v1/app-connections", member, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "PATCH", "/api/v1/app-connections/redis/"+connID, member, map[string]any{"name": "x"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "DELETE", "/api/v1/app-connections/redis/"+connID, member, nil), 403, "PermissionDenied")
		// Bad input is a 422, an unknown app a 422, a link-local target refused by policy.
		assertError(t, e.Do(t, "POST", "/api/v1/app-connections/oracle", e.Token, map[string]any{"name": "x", "credentials": creds}), 422, "ValidationFailure")
		assertError(t, e.Do(t, "POST", "/api/v1/app-connections/redis", e.Token, map[string]any{"name": "x", "credentials": map[string]any{"host": host, "port": 70000}}), 422, "ValidationFailure")
		r := e.Do(t, "POST", "/api/v1/app-connections/redis", e.Token, map[string]any{"name": "meta", "credentials": map[string]any{"host": "169.254.169.254", "port": 6379}})
		assertError(t, r, 400, "BadRequest")
		if !strings.Contains(string(r.Body), "policy") {
			t.Fatalf("policy refusal: %s", r.Body)
		}

		body := map[string]any{"name": "cache", "projectId": a.ID, "connectionId": connID, "environment": "dev", "secretPath": "/", "rotationInterval": 1,
			"parameters":     map[string]string{"permissionScope": "+ping", "username1": "az-" + sfx + "-1", "username2": "az-" + sfx + "-2"},
			"secretsMapping": map[string]string{"username": "U", "password": "P"}}
		_, viewer := projectMember(t, e, a.ID, "viewer-a", "viewer")
		assertError(t, e.Do(t, "POST", "/api/v2/secret-rotations/redis-credentials", viewer, body), 403, "PermissionDenied")
		var rot struct{ SecretRotation rotOut }
		e.Must(t, 200, "POST", "/api/v2/secret-rotations/redis-credentials", e.Token, body).Decode(t, &rot)
		id := rot.SecretRotation.ID
		base := "/api/v2/secret-rotations/redis-credentials/" + id
		// A second rotation cannot take over the secrets the first owns.
		second := map[string]any{"name": "cache-two", "projectId": a.ID, "connectionId": connID, "environment": "dev", "secretPath": "/",
			"rotationInterval": 1, "parameters": map[string]string{"permissionScope": "+ping", "username1": "az-" + sfx + "-5", "username2": "az-" + sfx + "-6"},
			"secretsMapping": map[string]string{"username": "OTHER_U", "password": "P"}}
		r = e.Do(t, "POST", "/api/v2/secret-rotations/redis-credentials", e.Token, second)
		assertError(t, r, 400, "BadRequest")
		if !strings.Contains(string(r.Body), "already written by another") {
			t.Fatalf("a second rotation onto P: %s", r.Body)
		}
		e.Must(t, 200, "GET", base, viewer, nil)
		e.Must(t, 200, "GET", "/api/v2/secret-rotations?projectId="+a.ID, viewer, nil)
		assertError(t, e.Do(t, "GET", base+"/generated-credentials", viewer, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", base+"/rotate-secrets", viewer, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "PATCH", base, viewer, map[string]any{"rotationInterval": 2}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "DELETE", base, viewer, nil), 403, "PermissionDenied")

		// Editing a rotation does not let one remap it onto secrets one may
		// not write (the rotation writes them as the platform).
		editor := customRole(t, e, a.ID, "rotation-editor", []map[string]any{
			{"subject": "secret-rotation", "action": []string{"read", "edit"}},
			{"subject": "secrets", "action": []string{"read", "create", "edit"}, "conditions": map[string]any{"secretName": map[string]any{"$in": []string{"U", "P"}}}},
		})
		assertError(t, e.Do(t, "PATCH", base, editor, map[string]any{"secretsMapping": map[string]string{"username": "U", "password": "PROD_PASS"}}), 403, "PermissionDenied")
		e.Must(t, 200, "PATCH", base, editor, map[string]any{"secretsMapping": map[string]string{"username": "U", "password": "P"}})

		// An admin of project B only: A's rotation does not exist for it.
		_, other := projectMember(t, e, b.ID, "admin-b", "admin")
		assertError(t, e.Do(t, "GET", base, other, nil), 404, "NotFound")
		assertError(t, e.Do(t, "POST", base+"/rotate-secrets", other, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", "/api/v2/secret-rotations?projectId="+a.ID, other, nil), 403, "PermissionDenied")
		// The wrong type in the path is not found.
		assertError(t, e.Do(t, "GET", "/api/v2/secret-rotations/postgres-credentials/"+id, e.Token, nil), 404, "NotFound")

		// A project member (org member) may use the org's connection, and
		// sees the generated credentials; the secrets were written as the
		// platform, with history.
		_, pm := projectMember(t, e, b.ID, "member-b", "member")
		body2 := map[string]any{}
		for k, v := range body {
			body2[k] = v
		}
		body2["projectId"] = b.ID
		// A member who may only use the connection rotates only the
		// principals it lists; it lists none until an admin says.
		body2["parameters"] = map[string]string{"permissionScope": "+ping", "username1": "az-" + sfx + "-3", "username2": "az-" + sfx + "-4"}
		r = e.Do(t, "POST", "/api/v2/secret-rotations/redis-credentials", pm, body2)
		assertError(t, r, 403, "PermissionDenied")
		if !strings.Contains(string(r.Body), "rotationPrincipals do not list") {
			t.Fatalf("a member rotating what the connection does not list: %s", r.Body)
		}
		assertError(t, e.Do(t, "PATCH", "/api/v1/app-connections/redis/"+connID, pm, map[string]any{"rotationPrincipals": []string{"*"}}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "PATCH", "/api/v1/app-connections/redis/"+connID, e.Token, map[string]any{"rotationPrincipals": []string{"ok", "bad\nentry"}}), 422, "ValidationFailure")
		tooMany := make([]string, 101)
		for i := range tooMany {
			tooMany[i] = fmt.Sprintf("p%d", i)
		}
		assertError(t, e.Do(t, "PATCH", "/api/v1/app-connections/redis/"+connID, e.Token, map[string]any{"rotationPrincipals": tooMany}), 422, "ValidationFailure")
		var conn struct {
			AppConnection struct{ RotationPrincipals []string }
		}
		e.Must(t, 200, "PATCH", "/api/v1/app-connections/redis/"+connID, e.Token, map[string]any{"rotationPrincipals": []string{" az-" + sfx + "-* "}}).Decode(t, &conn)
		if len(conn.AppConnection.RotationPrincipals) != 1 || conn.AppConnection.RotationPrincipals[0] != "az-"+sfx+"-*" {
			t.Fatalf("rotationPrincipals after PATCH: %v", conn.AppConnection.RotationPrincipals)
		}
		// A PATCH that does not name them keeps them.
		e.Must(t, 200, "PATCH", "/api/v1/app-connections/redis/"+connID, e.Token, map[string]any{"description": "shared cache"}).Decode(t, &conn)
		if len(conn.AppConnection.RotationPrincipals) != 1 {
			t.Fatalf("rotationPrincipals after a description change: %v", conn.AppConnection.RotationPrincipals)
		}
		// Every principal must be listed, not one of them.
		body2["parameters"] = map[string]string{"permissionScope": "+ping", "username1": "az-" + sfx + "-3", "username2": "other-" + sfx}
		r = e.Do(t, "POST", "/api/v2/secret-rotations/redis-credentials", pm, body2)
		assertError(t, r, 403, "PermissionDenied")
		if !strings.Contains(string(r.Body), "other-"+sfx) {
			t.Fatalf("the unlisted principal is not named: %s", r.Body)
		}
		// Not A's users: their new passwords would land in B's secrets and
		// A's would stop working.
		body2["parameters"] = map[string]string{"permissionScope": "+ping", "username1": "az-" + sfx + "-3", "username2": "az-" + sfx + "-1"}
		r = e.Do(t, "POST", "/api/v2/secret-rotations/redis-credentials", pm, body2)
		assertError(t, r, 400, "BadRequest")
		if !strings.Contains(string(r.Body), "already rotates") {
			t.Fatalf("a rotation of A's users from B: %s", r.Body)
		}
		// Nor through another connection to the same server: its users are
		// the server's, whichever connection reaches them.
		again := createConn(t, e, e.Token, "redis", "cache-again", creds)
		e.Must(t, 200, "PATCH", "/api/v1/app-connections/redis/"+again, e.Token, map[string]any{"rotationPrincipals": []string{"az-" + sfx + "-*"}})
		viaAgain := map[string]any{}
		for k, v := range body2 {
			viaAgain[k] = v
		}
		viaAgain["connectionId"], viaAgain["name"] = again, "via-again"
		viaAgain["secretsMapping"] = map[string]string{"username": "AGAIN_U", "password": "AGAIN_P"}
		r = e.Do(t, "POST", "/api/v2/secret-rotations/redis-credentials", pm, viaAgain)
		assertError(t, r, 400, "BadRequest")
		if !strings.Contains(string(r.Body), "already rotates") {
			t.Fatalf("a rotation of A's users through another connection to the server: %s", r.Body)
		}
		// Nor the account of another connection to the server: it would
		// break that connection and land its password in B's secrets.
		connPass := "Pw-" + sfx + sfx
		if err := admin.Do(context.Background(), "ACL", "SETUSER", "az-"+sfx+"-conn", "on", ">"+connPass, "~*", "&*", "+@all").Err(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.Do(context.Background(), "ACL", "DELUSER", "az-"+sfx+"-conn") })
		createConn(t, e, e.Token, "redis", "cache-as-conn", map[string]any{"host": host, "port": port, "username": "az-" + sfx + "-conn", "password": connPass})
		viaAgain["parameters"] = map[string]string{"permissionScope": "+ping", "username1": "az-" + sfx + "-conn", "username2": "az-" + sfx + "-7"}
		r = e.Do(t, "POST", "/api/v2/secret-rotations/redis-credentials", pm, viaAgain)
		assertError(t, r, 422, "ValidationFailure")
		if !strings.Contains(string(r.Body), "own user") {
			t.Fatalf("a rotation of another same-server connection's account: %s", r.Body)
		}
		// Nor may a connection rotations use be pointed at another server
		// (it would escape that rule, and strand their principals).
		r = e.Do(t, "PATCH", "/api/v1/app-connections/redis/"+connID, e.Token, map[string]any{"credentials": map[string]any{"host": "localhost", "port": port, "password": "any"}})
		assertError(t, r, 400, "BadRequest")
		if !strings.Contains(string(r.Body), "rotations use this connection") {
			t.Fatalf("repointing a connection in use: %s", r.Body)
		}
		// Nor a superuser of the server, made by the rotation itself.
		body2["parameters"] = map[string]string{"permissionScope": "~* +@all", "username1": "az-" + sfx + "-3", "username2": "az-" + sfx + "-4"}
		assertError(t, e.Do(t, "POST", "/api/v2/secret-rotations/redis-credentials", pm, body2), 422, "ValidationFailure")
		body2["parameters"] = map[string]string{"permissionScope": "+ping", "username1": "az-" + sfx + "-3", "username2": "az-" + sfx + "-4"}
		e.Must(t, 200, "POST", "/api/v2/secret-rotations/redis-credentials", pm, body2).Decode(t, &rot)
		var gc struct {
			GeneratedCredentials []map[string]string
			ActiveIndex          int
		}
		e.Must(t, 200, "GET", "/api/v2/secret-rotations/redis-credentials/"+rot.SecretRotation.ID+"/generated-credentials", pm, nil).Decode(t, &gc)
		if len(gc.GeneratedCredentials) != 1 || gc.GeneratedCredentials[0]["username"] != "az-"+sfx+"-3" || len(gc.GeneratedCredentials[0]["password"]) != 48 {
			t.Fatalf("generated credentials %+v", gc)
		}
		// Audit: the rotation's events are recorded.
		if b := e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?limit=100", e.Token, nil).Body; !strings.Contains(string(b), "rotate-secret-rotation") ||
			!strings.Contains(string(b), "create-app-connection") {
			t.Fatalf("audit log lacks rotation events")
		}
	})
}

// TestRotationOptionsAndAvailable: the options lists name each type with
// its connection's app and each app with its method; /{app}/available lists
// the connections the caller may use (none for an org member without
// connect, the admin's for the admin) in Infisical's short form.
func TestRotationOptionsAndAvailable(t *testing.T) {
	host, port := testsvc.Redis(t)
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		var ro struct {
			SecretRotationOptions []struct {
				Name, Type, Connection string
				Template               struct{ SecretsMapping map[string]string }
			}
		}
		e.Must(t, 200, "GET", "/api/v2/secret-rotations/options", e.Token, nil).Decode(t, &ro)
		types := map[string]string{}
		for _, o := range ro.SecretRotationOptions {
			types[o.Type] = o.Connection
			if o.Name == "" || len(o.Template.SecretsMapping) != 2 {
				t.Fatalf("option %+v", o)
			}
		}
		if len(types) != 4 || types["postgres-credentials"] != "postgres" || types["mysql-credentials"] != "mysql" ||
			types["redis-credentials"] != "redis" || types["ldap-password"] != "ldap" {
			t.Fatalf("rotation options %v", types)
		}
		var ao struct {
			AppConnectionOptions []struct {
				Name, App string
				Methods   []string
			}
		}
		e.Must(t, 200, "GET", "/api/v1/app-connections/options", e.Token, nil).Decode(t, &ao)
		if len(ao.AppConnectionOptions) != 4 || ao.AppConnectionOptions[2].App != "postgres" || ao.AppConnectionOptions[2].Methods[0] != "username-and-password" {
			t.Fatalf("app options %+v", ao)
		}
		connID := createConn(t, e, e.Token, "redis", "cache", map[string]any{"host": host, "port": port})
		var av struct{ AppConnections []map[string]any }
		e.Must(t, 200, "GET", "/api/v1/app-connections/redis/available", e.Token, nil).Decode(t, &av)
		if len(av.AppConnections) != 1 || av.AppConnections[0]["id"] != connID || av.AppConnections[0]["app"] != "redis" ||
			av.AppConnections[0]["credentials"] != nil {
			t.Fatalf("available to the admin: %v", av.AppConnections)
		}
		e.Must(t, 200, "GET", "/api/v1/app-connections/postgres/available", e.Token, nil).Decode(t, &av)
		if len(av.AppConnections) != 0 {
			t.Fatalf("a redis connection is available for postgres: %v", av.AppConnections)
		}
		_, noConnect := e.NewIdentity(t, "no-connect", "no-access")
		e.Must(t, 200, "GET", "/api/v1/app-connections/redis/available", noConnect, nil).Decode(t, &av)
		if len(av.AppConnections) != 0 {
			t.Fatalf("available to an identity without connect: %v", av.AppConnections)
		}
		assertError(t, e.Do(t, "GET", "/api/v1/app-connections/oracle/available", e.Token, nil), 422, "ValidationFailure")
	})
}

// TestARotationWritesOnlyWhatItsMakerMay: a member whose role keeps it from
// writing secrets tagged prod, or anything under /prod, cannot make a
// rotation (which writes as the platform) write over them: not by mapping a
// tagged secret, nor by spelling the path //prod. The path is stored as
// the secrets service names it.
func TestARotationWritesOnlyWhatItsMakerMay(t *testing.T) {
	host, port := testsvc.Redis(t)
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "guarded"})
		sfx := testsvc.Suffix()
		admin := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
		t.Cleanup(func() {
			for i := 1; i <= 6; i++ {
				admin.Do(context.Background(), "ACL", "DELUSER", fmt.Sprintf("tg-%s-%d", sfx, i))
			}
			admin.Close()
		})
		connID := createConn(t, e, e.Token, "redis", "cache", map[string]any{"host": host, "port": port})
		e.Must(t, 200, "PATCH", "/api/v1/app-connections/redis/"+connID, e.Token, map[string]any{"rotationPrincipals": []string{"tg-" + sfx + "-*"}})
		var tag struct{ Tag struct{ ID string } }
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/tags", e.Token, map[string]any{"slug": "prod", "color": "#f00"}).Decode(t, &tag)
		e.Must(t, 200, "POST", "/api/v3/secrets/raw/PROD_DB_PASS", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretValue": "kept", "tagIds": []string{tag.Tag.ID}})
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "prod"))
		e.Must(t, 200, "POST", "/api/v3/secrets/raw/PROD_PASS", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretPath": "/prod", "secretValue": "kept"})
		member := customRole(t, e, p.ID, "no-prod", []map[string]any{
			{"subject": "secret-rotation", "action": []string{"read", "create", "edit", "delete"}},
			{"subject": "secrets", "action": []string{"read", "create", "edit", "delete"}},
			{"subject": "secrets", "action": []string{"create", "edit", "delete"}, "inverted": true, "conditions": map[string]any{"secretTags": map[string]any{"$in": []string{"prod"}}}},
			{"subject": "secrets", "action": []string{"create", "edit", "delete"}, "inverted": true, "conditions": map[string]any{"secretPath": map[string]any{"$glob": "/prod/**"}}},
			{"subject": "secrets", "action": []string{"create", "edit", "delete"}, "inverted": true, "conditions": map[string]any{"secretPath": map[string]any{"$eq": "/prod"}}},
		})
		// The member's own writes are refused.
		assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/raw/PROD_DB_PASS", member, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": "x"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/raw/PROD_PASS", member, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretPath": "/prod", "secretValue": "x"}), 403, "PermissionDenied")

		rot := func(name, path string, n int, mapping map[string]string) map[string]any {
			return map[string]any{"name": name, "projectId": p.ID, "connectionId": connID, "environment": "dev", "secretPath": path, "rotationInterval": 1,
				"parameters":     map[string]string{"permissionScope": "+ping", "username1": fmt.Sprintf("tg-%s-%d", sfx, n), "username2": fmt.Sprintf("tg-%s-%d", sfx, n+1)},
				"secretsMapping": mapping}
		}
		const create = "/api/v2/secret-rotations/redis-credentials"
		assertError(t, e.Do(t, "POST", create, member, rot("tagged", "/", 1, map[string]string{"username": "U", "password": "PROD_DB_PASS"})), 403, "PermissionDenied")
		for _, path := range []string{"//prod", "/prod//", "///prod"} {
			assertError(t, e.Do(t, "POST", create, member, rot("slashes", path, 1, map[string]string{"username": "U", "password": "PROD_PASS"})), 403, "PermissionDenied")
		}
		if v, _ := secretValue(t, e, p.ID, "PROD_DB_PASS"); v != "kept" {
			t.Fatalf("PROD_DB_PASS = %q after the refused rotations", v)
		}
		// Untagged secrets outside /prod are the member's to rotate; then a
		// remap onto the tagged one is refused as a create is.
		var out struct{ SecretRotation rotOut }
		e.Must(t, 200, "POST", create, member, rot("mine", "/", 3, map[string]string{"username": "U", "password": "P"})).Decode(t, &out)
		base := create + "/" + out.SecretRotation.ID
		assertError(t, e.Do(t, "PATCH", base, member, map[string]any{"secretsMapping": map[string]string{"username": "U", "password": "PROD_DB_PASS"}}), 403, "PermissionDenied")
		// An admin's rotation at //prod is stored at /prod, where the
		// secrets it owns are.
		var adm struct {
			SecretRotation struct{ SecretPath string }
		}
		e.Must(t, 200, "POST", create, e.Token, rot("admins", "//prod/", 5, map[string]string{"username": "PROD_USER", "password": "PROD_PASS"})).Decode(t, &adm)
		if adm.SecretRotation.SecretPath != "/prod" {
			t.Fatalf("stored secretPath %q; want /prod", adm.SecretRotation.SecretPath)
		}
		r := e.Do(t, "PATCH", "/api/v3/secrets/raw/PROD_PASS", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretPath": "/prod", "secretValue": "by-hand"})
		assertError(t, r, 400, "BadRequest")
		assertError(t, e.Do(t, "POST", create, e.Token, rot("bad-path", "/a b", 1, map[string]string{"username": "X", "password": "Y"})), 422, "ValidationFailure")
	})
}
