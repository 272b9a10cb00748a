//go:build !envy_nokms

package crypto

// The cloud KMS drivers for OpenMasterKeyURL. They add about … to the
// binary; build with -tags envy_nokms to leave them out (base64key://
// and master key files still work).
import (
	_ "gocloud.dev/secrets/awskms"        // awskms://
	_ "gocloud.dev/secrets/azurekeyvault" // azurekeyvault://
	_ "gocloud.dev/secrets/gcpkms"        // gcpkms://
	_ "gocloud.dev/secrets/hashivault"    // hashivault://
)
