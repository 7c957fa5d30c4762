package secret

import (
	"reflect"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/authz"
)

// TestReadKeyCoversEveryOption: a cached read is keyed by every option that
// shapes it. A new ReadOptions or GetOptions field must join listKey (and
// this count), or reads that differ in it would share an answer.
func TestReadKeyCoversEveryOption(t *testing.T) {
	if n := reflect.TypeFor[ReadOptions]().NumField(); n != reflect.TypeFor[readFlags]().NumField()+1 {
		t.Fatalf("ReadOptions has %d fields; readKey knows %d flags and the tag slugs", n, reflect.TypeFor[readFlags]().NumField())
	}
	if n := reflect.TypeFor[GetOptions]().NumField(); n != 3 {
		t.Fatalf("GetOptions has %d fields; Get's key knows ReadOptions, Type and Version", n)
	}
	if n := reflect.TypeFor[Scope]().NumField(); n != 4 {
		t.Fatalf("Scope has %d fields; listKey holds the whole Scope, check it still names a read exactly", n)
	}
}

// TestReadKeyNamesTheSessionOrg: the same user in a session of another
// organization sees other projects (and slugs resolve in its own org), so
// its reads must not share cached answers.
func TestReadKeyNamesTheSessionOrg(t *testing.T) {
	a := authz.Actor{Kind: authz.ActorUser, ID: "u", OrgID: "A"}
	b := a
	b.OrgID = "B"
	if readKey(a, Scope{ProjectID: "P"}, ReadOptions{}) == readKey(b, Scope{ProjectID: "P"}, ReadOptions{}) {
		t.Fatal("one key for the same user's sessions in two organizations")
	}
}

// TestReadKeyIsThePathNotItsSpelling: "/a", "//a/" and "/a//" are one
// folder and one cached read (each spelling was one more entry and one more
// full read); different folders keep different keys.
func TestReadKeyIsThePathNotItsSpelling(t *testing.T) {
	a := authz.Actor{Kind: authz.ActorUser, ID: "u", OrgID: "A"}
	key := func(p string) listKey { return readKey(a, Scope{ProjectID: "P", Env: "dev", Path: p}, ReadOptions{}) }
	for _, p := range []string{"//a/", "/a//", "///a"} {
		if key(p) != key("/a") {
			t.Fatalf("%q and /a are two cached reads", p)
		}
	}
	if key("/a") == key("/b") || key("/") == key("/a") || key("/a/b") == key("/a") {
		t.Fatal("two folders share a cached read")
	}
}
