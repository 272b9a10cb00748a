package envy

import (
	"time"
)

// AuditListQuery selects audit entries, newest first.
type AuditListQuery struct {
	Scope  string
	Actor  string
	Since  time.Time
	Cursor string
	Limit  int
}
