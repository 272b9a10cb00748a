package runner

import (
	"slices"
	"testing"
)

func TestComposeEnv(t *testing.T) {
	base := []string{"PATH=/bin", "PORT=1", "ENVY_TOKEN=envy_secret", "ENVY_TOKEN_FILE=/run/envy/token", "ENVY_ADDR=http://x", "DUP=a", "DUP=b"}
	vars := map[string]string{"PORT": "8080", "NEW": "n"}
	tests := []struct {
		name     string
		preserve bool
		want     []string
	}{
		{"scope values override the inherited env and the token is not passed on", false,
			[]string{"PATH=/bin", "PORT=8080", "ENVY_ADDR=http://x", "DUP=b", "NEW=n"}},
		{"with preserve the inherited env wins", true,
			[]string{"PATH=/bin", "PORT=1", "ENVY_ADDR=http://x", "DUP=b", "NEW=n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := composeEnv(base, vars, tt.preserve); !slices.Equal(got, tt.want) {
				t.Fatalf("composeEnv = %q, want %q", got, tt.want)
			}
		})
	}
}
