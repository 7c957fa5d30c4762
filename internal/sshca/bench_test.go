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
func BenchmarkSignUserCertP384CA(b *testing.B)    { benchSign(b, ECDSAP384) }
func BenchmarkSignUserCertRSA2048CA(b *testing.B) { benchSign(b, RSA2048) }
func BenchmarkSignUserCertRSA4096CA(b *testing.B) { benchSign(b, RSA4096) }

// BenchmarkMarshalKRL10k encodes a KRL of 10,000 revoked serials, what a
// busy CA's public KRL route answers on every fetch.
func BenchmarkMarshalKRL10k(b *testing.B) {
	k, err := generateKey(ED25519)
	if err != nil {
		b.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(k.Public())
	if err != nil {
		b.Fatal(err)
	}
	serials := make([]uint64, 10_000)
	for i := range serials {
		serials[i] = newSerial()
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(MarshalKRL(pub, serials, 1, 1, "bench")) < 80_000 {
			b.Fatal("short KRL")
		}
	}
}
