//go:build !envy_nokms

package crypto

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestKMSDriversRegistered(t *testing.T) {
	have := keeperSchemes()
	for _, s := range []string{"awskms", "azurekeyvault", "base64key", "gcpkms", "hashivault"} {
		if !slices.Contains(have, s) {
			t.Errorf("scheme %s not registered (have %v)", s, have)
		}
	}
}

func TestKMSURLErrorsRedacted(t *testing.T) {
	// Bad query parameters fail before any network call; the drivers'
	// own errors quote the URL, which must not come through.
	for _, u := range []string{
		"awskms://alias/s3cr3t-key-name?bogus=1",
		"hashivault://s3cr3t-key-name?bogus=1",
	} {
		_, err := OpenMasterKeyURL(context.Background(), u)
		if err == nil {
			t.Errorf("%s accepted", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error %q holds part of the URL", err)
		}
		if scheme, _, _ := strings.Cut(u, ":"); !strings.Contains(err.Error(), `"`+scheme+`"`) {
			t.Errorf("error %q does not name the scheme", err)
		}
		t.Log(err)
	}
}
