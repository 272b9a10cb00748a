package client

// DashboardPath is where the server serves its dashboard.
const DashboardPath = "/ui/"

// DashboardURL returns the address of a scope's page on the server's
// dashboard, or of its list of scopes when scope is "". The path goes as
// typed, as the API's do.
func (c *Client) DashboardURL(scope string) string {
	if scope == "" {
		return c.addr + DashboardPath + "scopes"
	}
	return c.addr + DashboardPath + "scopes/" + scope
}
