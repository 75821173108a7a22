package store

// SetSearchSetMax changes the word frequency at which IssuePage switches
// from a word's match set to checking issue by issue, so that tests reach
// both plans on a small database. It returns a function restoring it.
func SetSearchSetMax(n int) (restore func()) {
	old := searchSetMax
	searchSetMax = n
	return func() { searchSetMax = old }
}
