//go:build !envy_nokms

package crypto

// The cloud KMS drivers of OpenMasterKeyURL. Together they add about 17 MB
// to the envy binary (awskms ≈ 9 MB, gcpkms ≈ 9 MB, azurekeyvault ≈ 7 MB,
// hashivault ≈ 4 MB alone; they share much). Build with -tags envy_nokms
// to leave them out: base64key:// and master key files still work.
import (
	_ "gocloud.dev/secrets/awskms"        // awskms://
	_ "gocloud.dev/secrets/azurekeyvault" // azurekeyvault://
	_ "gocloud.dev/secrets/gcpkms"        // gcpkms://
	_ "gocloud.dev/secrets/hashivault"    // hashivault://
)
