package verify

import "time"

// time0 is the zero time: a key without a validity window.
var time0 time.Time
