package sshca

import (
	"encoding/binary"
	"slices"

	"golang.org/x/crypto/ssh"
)

// An OpenSSH key revocation list (KRL), in the binary format of OpenSSH's
// PROTOCOL.krl: what sshd reads through RevokedKeys and ssh-keygen -Q checks.
// golang.org/x/crypto/ssh reads and writes none. The Go libraries that do
// (stripe/krl, archived; its personal fork forfuncsake/krl; go-authn/krl,
// months old and not on the module proxy this project uses) were not worth a
// dependency for the one section lockbox writes: the serials a CA revoked.

// KRL section and subsection types (PROTOCOL.krl).
const (
	krlMagic             = "SSHKRL\n\x00"
	krlFormatVersion     = 1
	krlSectionCerts      = 1
	krlCertSerialList    = 0x20
	maxSerialsPerSection = 1 << 16
)

// MarshalKRL encodes an unsigned KRL revoking, under the CA key ca, the
// certificates of the given serials. version should grow each time the list
// changes; generated is the Unix time it is made at. Serial 0 cannot be
// revoked by serial (OpenSSH refuses it) and is left out; lockbox issues none.
func MarshalKRL(ca ssh.PublicKey, serials []uint64, version, generated uint64, comment string) []byte {
	b := []byte(krlMagic)
	b = binary.BigEndian.AppendUint32(b, krlFormatVersion)
	b = binary.BigEndian.AppendUint64(b, version)
	b = binary.BigEndian.AppendUint64(b, generated)
	b = binary.BigEndian.AppendUint64(b, 0) // flags
	b = appendString(b, nil)                // reserved
	b = appendString(b, []byte(comment))

	ss := slices.Clone(serials)
	slices.Sort(ss)
	ss = slices.Compact(ss)
	ss = slices.DeleteFunc(ss, func(n uint64) bool { return n == 0 })
	if len(ss) == 0 {
		return b
	}
	// One certificates section per chunk, so that no string outgrows what
	// sshbuf accepts in one piece.
	for chunk := range slices.Chunk(ss, maxSerialsPerSection) {
		list := make([]byte, 0, 8*len(chunk))
		for _, n := range chunk {
			list = binary.BigEndian.AppendUint64(list, n)
		}
		sect := appendString(nil, ca.Marshal())
		sect = appendString(sect, nil) // reserved
		sect = append(sect, krlCertSerialList)
		sect = appendString(sect, list)
		b = append(b, krlSectionCerts)
		b = appendString(b, sect)
	}
	return b
}

// appendString appends s as an SSH string: a 32-bit length and the bytes.
func appendString(b, s []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}
