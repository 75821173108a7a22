package store

// SetSearchPlan changes the thresholds of IssuePage's search plan (see
// searchDriveMax) so that tests reach every plan on a small database. It
// returns a function restoring them.
func SetSearchPlan(driveMax, setMax int, walkMin float64) (restore func()) {
	d, s, w := searchDriveMax, searchSetMax, searchWalkMin
	searchDriveMax, searchSetMax, searchWalkMin = driveMax, setMax, walkMin
	return func() { searchDriveMax, searchSetMax, searchWalkMin = d, s, w }
}
