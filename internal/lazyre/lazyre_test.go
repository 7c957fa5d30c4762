package lazyre

import (
	"strings"
	"testing"
)

func TestCompilesOnceOnFirstUse(t *testing.T) {
	re := New(`^[a-z]{1,3}$`)
	first := re()
	if !first.MatchString("abc") || first.MatchString("abcd") {
		t.Fatalf("pattern %s matches wrongly", first)
	}
	if re() != first {
		t.Fatal("a second call compiled the pattern again")
	}
}

func TestBadPatternPanicsOnUseAndFailsCheck(t *testing.T) {
	if err := Check(); err != nil {
		t.Fatalf("before a bad pattern: %v", err)
	}
	re := New(`(`) // not compiled yet: no panic here
	defer func() {
		mu.Lock()
		patterns = patterns[:len(patterns)-1]
		mu.Unlock()
	}()
	if err := Check(); err == nil || !strings.Contains(err.Error(), "missing closing )") {
		t.Fatalf("Check with a bad pattern: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a pattern that does not compile did not panic on use")
		}
	}()
	re()
}
