package store

import (
	"database/sql/driver"
	"fmt"
	"time"
)

// Times are stored on both engines as BIGINT microseconds since the Unix epoch
// (UTC). One encoding means range comparisons and ordering behave the same on
// SQLite and PostgreSQL.

// ts encodes t for a query argument; the zero time is NULL.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// tsp encodes an optional time.
func tsp(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}

// timeCol scans a microsecond column into a time.Time; NULL is the zero time.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("time column: unexpected %T", src)
	}
	return nil
}

// optTimeCol scans a nullable microsecond column into a *time.Time.
type optTimeCol struct{ t **time.Time }

func (c optTimeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = nil
	case int64:
		t := time.UnixMicro(v).UTC()
		*c.t = &t
	default:
		return fmt.Errorf("time column: unexpected %T", src)
	}
	return nil
}

var _ driver.Value = int64(0)
