package secret

import (
	"strconv"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/keyring"
)

// sealAD spells keyring.AD by hand; every stored ciphertext depends on the
// two agreeing byte for byte.
func TestSealADIsKeyringAD(t *testing.T) {
	for _, c := range []struct {
		id      string
		version int
		column  string
	}{
		{"0190c3e4-7a1b-7c3d-9e2f-123456789abc", 1, "value"},
		{"x", 1234567, "reminderNote"},
		{strings.Repeat("long-", 40), 0, "metadata"},
	} {
		if got, want := sealAD(c.id, c.version, c.column), keyring.AD("secrets", c.column, c.id+"@"+strconv.Itoa(c.version)); got != want {
			t.Errorf("sealAD = %q, keyring.AD = %q", got, want)
		}
	}
}
