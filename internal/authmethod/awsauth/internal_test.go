package awsauth

import "testing"

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"arn:aws:iam::123456789012:role/app", "arn:aws:iam::123456789012:role/app", true},
		{"arn:aws:iam::123456789012:role/app", "arn:aws:iam::123456789012:role/app2", false},
		{"arn:aws:iam::123456789012:*", "arn:aws:iam::123456789012:role/a/b", true},
		{"arn:aws:iam::123456789012:role/app-*", "arn:aws:iam::123456789012:role/app-web", true},
		{"arn:aws:iam::123456789012:role/app-*", "arn:aws:iam::123456789013:role/app-web", false},
		{"*a*b*", "xxaxxbxx", true},
		{"*a*b", "xxaxxbxxc", false},
		{"arn:aws:iam::123456789012:role/app.*", "arn:aws:iam::123456789012:role/appX", false}, // . is literal
	} {
		if got := glob(c.p, c.s); got != c.want {
			t.Errorf("glob(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

// Assumed roles match both their sts form (session dropped) and the IAM role
// they assume, as Infisical's identity-aws-auth-fns.ts formats them.
func TestPrincipalFormats(t *testing.T) {
	for _, c := range []struct{ arn, asIs, asRole string }{
		{"arn:aws:sts::123456789012:assumed-role/app/i-0abc", "arn:aws:sts::123456789012:assumed-role/app", "arn:aws:iam::123456789012:role/app"},
		{"arn:aws:iam::123456789012:user/team/alice", "arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/alice"},
		{"arn:aws-us-gov:iam::123456789012:role/app", "arn:aws-us-gov:iam::123456789012:role/app", "arn:aws-us-gov:iam::123456789012:role/app"},
	} {
		p, err := parseARN(c.arn)
		if err != nil {
			t.Fatal(err)
		}
		if p.format(false) != c.asIs || p.format(true) != c.asRole {
			t.Errorf("%s: %s, %s", c.arn, p.format(false), p.format(true))
		}
	}
	for _, bad := range []string{"arn:aws:s3:::bucket/x", "arn:aws:sts::123456789012:assumed-role/app", "arn:aws:iam::123456789012:group/g", "nope"} {
		if _, err := parseARN(bad); err == nil {
			t.Errorf("%s parsed", bad)
		}
	}
}

func TestRequestChecks(t *testing.T) {
	for body, want := range map[string]bool{
		"Action=GetCallerIdentity&Version=2011-06-15":                   true,
		"Version=2011-06-15&Action=GetCallerIdentity":                   true,
		"Action=GetCallerIdentity&Version=2011-06-15&Action=AssumeRole": false,
		"Action=AssumeRole&Version=2011-11-15":                          false,
		"Action=GetCallerIdentity&Version=2011-06-15&RoleArn=x":         false,
		"": false,
	} {
		if isGetCallerIdentity([]byte(body)) != want {
			t.Errorf("%q: want %v", body, want)
		}
	}
	ok := "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/sts/aws4_request, SignedHeaders=content-length;host;x-amz-date, Signature=abc"
	if s, err := parseAuthorization(ok); err != nil || s.region != "us-east-1" || s.date != "20250101" {
		t.Fatalf("%+v %v", s, err)
	}
	for _, bad := range []string{
		"",
		"AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc",
		"AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/sts/aws4_request, SignedHeaders=x-amz-date, Signature=abc",
		"AWS4-HMAC-SHA256 Credential=AKID/20250101/evil.com#/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc",
		"AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date",
		"Bearer x",
	} {
		if _, err := parseAuthorization(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// TestUnboundedConfigurationLetsNobodyIn: a configuration stored before a
// bound was required (no account, no ARN) refuses every caller, where it
// used to take any AWS account's.
func TestUnboundedConfigurationLetsNobodyIn(t *testing.T) {
	caller := identity{Arn: "arn:aws:sts::123456789012:assumed-role/app/i-0abc", Account: "123456789012"}
	if err := (&Method{}).checkPrincipal(caller); err == nil {
		t.Fatal("a configuration with no bound let a caller in")
	}
	if err := (&Method{accounts: []string{"123456789012"}}).checkPrincipal(caller); err != nil {
		t.Fatalf("the caller's own account: %v", err)
	}
}
