package identity

// SetDummyPassword makes the dummy hash one of password, for a test that
// must know it; restore puts the random one back.
func SetDummyPassword(password string) (restore func()) {
	was := dummyHash
	h := HashPassword(password)
	dummyHash = func() string { return h }
	return func() { dummyHash = was }
}
