package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/envy-dev/envy/client"
)

func (a *app) newKeysCmd() *cobra.Command {
	return group("keys", "Manage the encryption keys (admin)", a.newKeysRotateCmd())
}

func (a *app) newKeysRotateCmd() *cobra.Command {
	var (
		keyFile, keyURL string
		newDataKey      bool
		reseal          bool
	)
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Move every data key to a new master key while the server serves",
		Long: "Rewraps every data key of the server's store with a new master key, in one transaction, while\n" +
			"the server serves; values stay as they are and readable throughout. With --new-data-key it also\n" +
			"adds a data key, wrapped by the new master key, that seals every value written from then on; with\n" +
			"--reseal the server then seals every stored value (and history entry) again under the newest data\n" +
			"key, in the background, and deletes the older data keys. Afterwards start the server with the new\n" +
			"key (--master-key-file or --master-key-url): the old one no longer opens anything. Servers sharing\n" +
			"a PostgreSQL database pick the change up at once; give each of them the new key where its flags\n" +
			"point before you add a data key.",
		Example: "  envy keys rotate --new-master-key-file /etc/envy/master.key.new\n" +
			"  envy keys rotate --new-master-key-url awskms://alias/envy-2?region=eu-west-1 --new-data-key --reseal",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			in := client.RotateKeysInput{NewDataKey: newDataKey, Reseal: reseal}
			switch {
			case (keyFile == "") == (keyURL == ""):
				return usageErrorf("give --new-master-key-file or --new-master-key-url (one of them)")
			case keyFile != "":
				raw, err := readNewKeyFile(keyFile)
				if err != nil {
					return err
				}
				in.NewMasterKeyFile = raw
			default:
				in.NewMasterKeyURL = keyURL
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if plainRemote(c.Addr()) {
				return fmt.Errorf("refusing to send a master key over plain HTTP to %s: use https://, or run the command on the server's machine", c.Addr())
			}
			ctx, raw := capture(cmd.Context())
			res, err := c.RotateKeys(ctx, in)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, res)
			}
			ids := make([]string, len(res.Rewrapped))
			for i, id := range res.Rewrapped {
				ids[i] = strconv.FormatUint(uint64(id), 10)
			}
			added := "-"
			if res.AddedDataKey != 0 {
				added = strconv.FormatUint(uint64(res.AddedDataKey), 10)
			}
			resealing := "no"
			if res.Resealing {
				resealing = "in the background (the server logs when it is done)"
			}
			if err := kvTable(a.stdout, "rewrapped data keys", strings.Join(ids, ","), "new data key", added, "resealing", resealing); err != nil {
				return err
			}
			a.notef("\nThe data keys are now wrapped by the new master key. Start the server with it from now on; the old master key opens nothing.\n")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyFile, "new-master-key-file", "", "file holding the new master key (32 raw bytes, mode 0600)")
	f.StringVar(&keyURL, "new-master-key-url", "", "gocloud.dev/secrets URL of the new master key (awskms://, gcpkms://, base64key://, …)")
	f.BoolVar(&newDataKey, "new-data-key", false, "also add a data key, wrapped by the new master key, for the values written from now on")
	f.BoolVar(&reseal, "reseal", false, "then seal every stored value (and history entry) again under the newest data key, in the background, and delete the older data keys")
	return cmd
}

// readNewKeyFile reads a master key file as the server would: 32 raw
// bytes that only its owner may read.
func readNewKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("--new-master-key-file %s: %v", path, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("--new-master-key-file %s: mode %04o lets group or others read it; run chmod 600 on it", path, fi.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--new-master-key-file %s: %v", path, err)
	}
	if len(raw) != 32 {
		clear(raw)
		return nil, fmt.Errorf("--new-master-key-file %s: holds %d bytes, want exactly 32 raw bytes (e.g. head -c 32 /dev/urandom > FILE)", path, len(raw))
	}
	return raw, nil
}
