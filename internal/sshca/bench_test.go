package sshca

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// benchSign signs user certificates for an ed25519 key with a CA of algorithm a.
func benchSign(b *testing.B, a Algorithm) {
	k, err := generateKey(a)
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := marshalPrivate(k, "bench")
	ca, err := parsePrivate(raw)
	if err != nil {
		b.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	key, _ := ssh.NewPublicKey(pub)
	now := time.Now()
	spec := CertSpec{Type: UserCert, KeyID: "identity-bench", Principals: []string{"deploy"}, ValidAfter: now, ValidBefore: now.Add(time.Hour),
		Extensions: DefaultExtensions()}
	b.ReportAllocs()
	for b.Loop() {
		spec.Serial = newSerial()
		c, err := SignCert(ca, key, spec)
		if err != nil {
			b.Fatal(err)
		}
		_ = authorizedKey(c)
	}
}

func BenchmarkSignUserCertEd25519CA(b *testing.B) { benchSign(b, ED25519) }
func BenchmarkSignUserCertP256CA(b *testing.B)    { benchSign(b, ECDSAP256) }
func BenchmarkSignUserCertRSA2048CA(b *testing.B) { benchSign(b, RSA2048) }
