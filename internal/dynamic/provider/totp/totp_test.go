package totp

import (
	"context"
	"encoding/base32"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
)

// RFC 6238 appendix B: the seeds are the ASCII digits repeated to the hash's
// size, codes are 8 digits with a 30 s period.
var rfcSeeds = map[string]string{
	"sha1":   "12345678901234567890",
	"sha256": "12345678901234567890123456789012",
	"sha512": "1234567890123456789012345678901234567890123456789012345678901234",
}

var rfcVectors = []struct {
	unix int64
	want map[string]string
}{
	{59, map[string]string{"sha1": "94287082", "sha256": "46119246", "sha512": "90693936"}},
	{1111111109, map[string]string{"sha1": "07081804", "sha256": "68084774", "sha512": "25091201"}},
	{1111111111, map[string]string{"sha1": "14050471", "sha256": "67062674", "sha512": "99943326"}},
	{1234567890, map[string]string{"sha1": "89005924", "sha256": "91819424", "sha512": "93441116"}},
	{2000000000, map[string]string{"sha1": "69279037", "sha256": "90698825", "sha512": "38618901"}},
	{20000000000, map[string]string{"sha1": "65353130", "sha256": "77737706", "sha512": "47863826"}},
}

func TestRFC6238Vectors(t *testing.T) {
	for _, v := range rfcVectors {
		for alg, want := range v.want {
			got, rem := Code([]byte(rfcSeeds[alg]), alg, 8, 30, time.Unix(v.unix, 0))
			if got != want {
				t.Errorf("%s at %d: got %s, want %s", alg, v.unix, got, want)
			}
			if wantRem := 30 - int(v.unix%30); rem != wantRem {
				t.Errorf("%s at %d: remaining %d, want %d", alg, v.unix, rem, wantRem)
			}
		}
	}
}

func b32(s string) string {
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(s))
}

// Through the provider's inputs, both configuration types give the RFC's codes.
func TestProviderFromURLAndManual(t *testing.T) {
	at := time.Unix(1111111109, 0)
	cases := []struct {
		name, inputs, want string
	}{
		{"url sha1", `{"configType":"url","url":"otpauth://totp/ACME:alice?secret=` + b32(rfcSeeds["sha1"]) + `&issuer=ACME&digits=8"}`, "07081804"},
		{"url sha512 lower-case secret", `{"configType":"url","url":"otpauth://totp/x?secret=` + strings.ToLower(b32(rfcSeeds["sha512"])) + `&algorithm=SHA512&digits=8&period=30"}`, "25091201"},
		{"manual sha256", `{"configType":"manual","secret":"` + b32(rfcSeeds["sha256"]) + `","algorithm":"sha256","digits":8,"period":30}`, "68084774"},
		{"manual defaults (6 digits, sha1)", `{"configType":"manual","secret":"` + b32(rfcSeeds["sha1"]) + `"}`, "081804"},
	}
	for _, c := range cases {
		p, err := New(json.RawMessage(c.inputs))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		p.(*TOTP).now = func() time.Time { return at }
		res, err := p.Create(context.Background(), provider.CreateRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Data["TOTP"] != c.want || res.Data["TIME_REMAINING"] != 30-int(at.Unix()%30) {
			t.Errorf("%s: %v, want %s", c.name, res.Data, c.want)
		}
	}
}

func TestInvalidInputs(t *testing.T) {
	for _, in := range []string{
		`{}`,
		`{"configType":"qr"}`,
		`{"configType":"manual"}`,
		`{"configType":"manual","secret":"not base32!"}`,
		`{"configType":"manual","secret":"GEZDGNBV","algorithm":"md5"}`,
		`{"configType":"manual","secret":"GEZDGNBV","digits":5}`,
		`{"configType":"manual","secret":"GEZDGNBV","digits":"x"}`,
		`{"configType":"manual","secret":"GEZDGNBV","period":0}`,
		`{"configType":"manual","secret":"GEZDGNBV","url":"otpauth://totp/x?secret=GEZDGNBV"}`,
		`{"configType":"url","url":"https://example.com/?secret=GEZDGNBV"}`,
		`{"configType":"url","url":"otpauth://hotp/x?secret=GEZDGNBV"}`,
		`{"configType":"url","url":"otpauth://totp/x"}`,
		`{"configType":"url","url":"otpauth://totp/x?secret=GEZDGNBV","digits":8}`,
		`{"configType":"manual","secret":"GEZDGNBV","colour":"red"}`,
	} {
		if _, err := New(json.RawMessage(in)); err == nil {
			t.Errorf("accepted %s", in)
		} else if strings.Contains(err.Error(), "GEZDGNBV") {
			t.Errorf("error repeats the secret: %v", err)
		}
	}
}

func BenchmarkCode(b *testing.B) {
	key := []byte(rfcSeeds["sha1"])
	at := time.Now()
	for b.Loop() {
		Code(key, "sha1", 6, 30, at)
	}
}
