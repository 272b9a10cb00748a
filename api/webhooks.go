package api

import "time"

// Webhook is a receiver of the events of the scopes a glob matches. Its
// signing secret is never shown but on creation and rotation
// (WebhookSecret).
type Webhook struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	Scopes      string   `json:"scopes"`
	Events      []string `json:"events"`
	Description string   `json:"description"`
	// State is "active", "paused" or "disabled" (for Failures failed
	// deliveries in a row; resuming enables it again).
	State      string     `json:"state"`
	Failures   int        `json:"failures"`
	DisabledAt *time.Time `json:"disabled_at,omitempty"`
	// RotationUntil is when the previous secret stops signing, during a
	// rotation's overlap.
	RotationUntil *time.Time `json:"rotation_until,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	CreatedBy     string     `json:"created_by"`
}

// WebhookSecret is a webhook with its signing secret ("whsec_…"): the
// reply to a creation or a rotation, the only ones that show it.
type WebhookSecret struct {
	Webhook
	Secret string `json:"secret"`
}

// Delivery is one message to a webhook and how its attempts went.
type Delivery struct {
	ID           int64      `json:"id"`
	MessageID    string     `json:"message_id"`
	Type         string     `json:"type"`
	Scope        string     `json:"scope"`
	Revision     int64      `json:"revision,omitempty"`
	Status       string     `json:"status"`
	Attempts     int        `json:"attempts"`
	NextAt       *time.Time `json:"next_at,omitempty"`
	LastError    string     `json:"last_error,omitempty"`
	ResponseCode int        `json:"response_code,omitempty"`
	LatencyMS    float64    `json:"latency_ms"`
	CreatedAt    time.Time  `json:"created_at"`
	DoneAt       *time.Time `json:"done_at,omitempty"`
}
