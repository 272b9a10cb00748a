package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
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
	return writePrivateFile(path, append(data, '\n'))
}

// projectFileName is the file `envy setup` writes in a project directory:
// the default scope of every command run there or below.
const projectFileName = ".envy.json"

// project is the content of a project file.
type project struct {
	Scope string `json:"scope"`
}

// findProject looks for a project file in dir and its parents; "" when
// there is none.
func findProject(dir string) (path string, p project, err error) {
	for {
		path = filepath.Join(dir, projectFileName)
		data, err := os.ReadFile(path)
		if err == nil {
			if err := json.Unmarshal(data, &p); err != nil || p.Scope == "" {
				return path, p, fmt.Errorf("%s is not a project file of envy (want {\"scope\": \"…\"}); fix it or run `envy setup` again", path)
			}
			return path, p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return path, p, fmt.Errorf("reading %s: %w", path, err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", project{}, nil
		}
		dir = parent
	}
}

// defaultScope returns the scope commands use when none is given:
// ENVY_SCOPE, else the project file of the working directory or a parent.
// It says where it came from, for messages.
func (a *app) defaultScope() (scope, from string, err error) {
	if s := a.getenv("ENVY_SCOPE"); s != "" {
		return s, "ENVY_SCOPE", nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", "", nil
	}
	path, p, err := findProject(wd)
	if err != nil || path == "" {
		return "", "", err
	}
	return p.Scope, path, nil
}

// addScopeFlags gives every command under root whose first argument is
// a SCOPE (its Use says SCOPE or [SCOPE…] first) the flag --scope/-s,
// Doppler's -c habit: `envy vars get -s acme/web PORT` is `envy vars get
// acme/web PORT`. The flag's scope is put in front of the arguments before
// they are checked, so that each command sees SCOPE as if it was typed
// there. A command with a --scope of its own (envy run, envy audit) keeps
// it.
func (a *app) addScopeFlags(root *cobra.Command) {
	for _, c := range root.Commands() {
		a.addScopeFlags(c)
	}
	words := strings.Fields(root.Use)
	if len(words) < 2 || root.Flags().Lookup("scope") != nil {
		return
	}
	if first := strings.Trim(words[1], "[]."); first != "SCOPE" {
		return
	}
	root.Flags().StringVarP(&a.scopeFlag, "scope", "s", "", "the SCOPE, given as a flag rather than as the first argument")
	withScope := func(c *cobra.Command, args []string) []string {
		if !c.Flags().Changed("scope") {
			return args
		}
		return append([]string{a.scopeFlag}, args...)
	}
	check, run := root.Args, root.RunE
	root.Args = func(c *cobra.Command, args []string) error {
		if check == nil {
			return nil
		}
		err := check(c, withScope(c, args))
		if err != nil && c.Flags().Changed("scope") {
			return usageErrorf("%v; --scope %s is the SCOPE argument, so leave SCOPE out", err, a.scopeFlag)
		}
		return err
	}
	root.RunE = func(c *cobra.Command, args []string) error { return run(c, withScope(c, args)) }
}

// scopeFirst returns args with the default scope put in front when the
// command was given one argument fewer than it takes with SCOPE (short).
func (a *app) scopeFirst(cmd *cobra.Command, args []string, short bool) (out []string, err error) {
	defer func() {
		if err == nil {
			a.noteSubject(cmd, out)
		}
	}()
	if !short {
		return args, nil
	}
	scope, _, err := a.defaultScope()
	if err != nil {
		return nil, err
	}
	if scope == "" {
		return nil, usageErrorf("%s: no SCOPE given and no default scope (set ENVY_SCOPE, or run `envy setup SCOPE` in the project directory)", cmd.CommandPath())
	}
	return append([]string{scope}, args...), nil
}

// writeProject writes the project file of dir.
func writeProject(dir string, p project) (string, error) {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, projectFileName)
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}
