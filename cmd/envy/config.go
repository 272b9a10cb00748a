package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// config is what `envy login` stores: the server and the token, in the
// user's config directory, readable by the user alone.
type config struct {
	Addr  string `json:"addr"`
	Token string `json:"token"`
}

// configPath is ENVY_CONFIG, or <user config dir>/envy/config.json.
func (a *app) configPath() string {
	if p := a.getenv("ENVY_CONFIG"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "" // no home: nothing to read, and login will say so
	}
	return filepath.Join(dir, "envy", "config.json")
}

// loadConfig reads the config file; a missing one is an empty config.
func loadConfig(path string) (config, error) {
	var cfg config
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("reading the config: %w", err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		// The file holds a token: don't quote it back.
		return cfg, fmt.Errorf("config file %s is not valid JSON; run `envy login` again", path)
	}
	return cfg, nil
}

// saveConfig writes the config file with mode 0600 in a directory with
// mode 0700, atomically: a crash leaves the old file or the new one.
func saveConfig(path string, cfg config) error {
	if path == "" {
		return errors.New("no config directory: set ENVY_CONFIG to a file path")
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the config directory: %w", err)
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".config-*.json")
	if err != nil {
		return fmt.Errorf("writing the config: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("writing the config: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("writing the config: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing the config: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing the config: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing the config: %w", err)
	}
	return nil
}
