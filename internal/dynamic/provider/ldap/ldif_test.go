package ldap

import (
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

func TestParseLDIF(t *testing.T) {
	recs, err := parseLDIF("version: 1\n# a comment\ndn: uid=a,dc=x\nobjectClass: top\nobjectClass: person\ncn: long\n  name\ndescription:: aGVsbG8=\n\n" +
		"dn: cn=g,dc=x\r\nchangetype: modify\r\nadd: member\r\nmember: uid=a,dc=x\r\n-\r\nreplace: description\r\ndescription: d\r\n\r\n" +
		"dn: uid=b,dc=x\nchangetype: delete\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records", len(recs))
	}
	a := recs[0]
	if a.Type != "add" || a.DN != "uid=a,dc=x" || len(a.Attrs) != 3 || len(a.Attrs[0].Vals) != 2 || a.Attrs[1].Vals[0] != "long name" ||
		a.Attrs[2].Vals[0] != "hello" {
		t.Fatalf("add record %+v", a)
	}
	m := recs[1]
	if m.Type != "modify" || len(m.Change) != 2 || m.Change[0].Operation != goldap.AddAttribute || m.Change[0].Modification.Vals[0] != "uid=a,dc=x" ||
		m.Change[1].Operation != goldap.ReplaceAttribute {
		t.Fatalf("modify record %+v", m)
	}
	if recs[2].Type != "delete" || recs[2].DN != "uid=b,dc=x" {
		t.Fatalf("delete record %+v", recs[2])
	}
}

func TestParseLDIFRejects(t *testing.T) {
	for _, in := range []string{
		"",
		"# only a comment\n",
		"objectClass: top\n",
		"dn: not a dn\nobjectClass: top\n",
		"dn: uid=a,dc=x\n",
		"dn: uid=a,dc=x\nchangetype: delete\ncn: x\n",
		"dn: uid=a,dc=x\nchangetype: modify\n",
		"dn: uid=a,dc=x\nchangetype: modify\nincrement: n\nn: 1\n-\n",
		"dn: uid=a,dc=x\nchangetype: modify\nadd: member\ncn: x\n-\n",
		"dn: uid=a,dc=x\nchangetype: moddn\n",
		"dn: uid=a,dc=x\nphoto:< file:///etc/shadow\n",
		"dn: uid=a,dc=x\ncn:: !!!\n",
		"dn: uid=a,dc=x\nno colon here\n",
		"dn: uid=a,dc=x\ncn: " + strings.Repeat("x", maxLDIF) + "\n",
	} {
		if _, err := parseLDIF(in); err == nil {
			t.Errorf("accepted %q", truncate(in))
		}
	}
}

func FuzzParseLDIF(f *testing.F) {
	f.Add(creation)
	f.Add(revocation)
	f.Add("dn:: dWlkPWEsZGM9eA==\nchangetype: modify\nreplace: userPassword\nuserPassword: x\n-\n")
	f.Add("dn: uid=a,dc=x\n continued\ncn: a\n\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		recs, err := parseLDIF(s)
		if err != nil {
			return
		}
		for _, r := range recs {
			if r.DN == "" {
				t.Fatal("record without a DN")
			}
			switch r.Type {
			case "add":
				if len(r.Attrs) == 0 {
					t.Fatal("add without attributes")
				}
			case "modify":
				if len(r.Change) == 0 {
					t.Fatal("modify without changes")
				}
			case "delete":
			default:
				t.Fatalf("type %q", r.Type)
			}
		}
	})
}
