package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type fullDisk struct{}

func (fullDisk) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// TestBackupTellsAWriteErrorFromTheServers: a backup that the server sends
// but that can't be written (a full disk) says so, not that the server
// can't be reached.
func TestBackupTellsAWriteErrorFromTheServers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Write([]byte(`{"format":"envy-backup","version":1}` + "\n"))
	}))
	defer srv.Close()
	err := New(srv.URL, "token").Backup(context.Background(), fullDisk{})
	if err == nil || !strings.Contains(err.Error(), "cannot write the backup: no space left on device") || strings.Contains(err.Error(), "reach") {
		t.Fatalf("Backup into a full disk = %v", err)
	}
}
