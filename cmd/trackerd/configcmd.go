package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/trackerd/trackerd/config"
)

const configUsage = "config check [FILE] | config init [-force] [FILE] | config print [FILE]"

func cmdConfig(_ context.Context, a *app, args []string) error {
	fs := a.newFlags("config")
	force := fs.Bool("force", false, "init: overwrite an existing file")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || len(pos) > 2 {
		return usageErrorf("usage: trackerd %s", configUsage)
	}
	if len(pos) == 2 {
		a.configPath = pos[1]
	}
	switch pos[0] {
	case "check":
		cfg, err := a.loadConfig()
		if err != nil {
			return err
		}
		src := a.configFile()
		if src == "" {
			src = "built-in defaults"
		}
		fmt.Fprintf(a.stdout, "%s: ok (store %s, tracker %s)\n", src, cfg.Store.Driver, cfg.Tracker.Address)
		return nil
	case "init":
		path := a.configPath
		if path == "" {
			path = "trackerd.toml"
		}
		flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
		if *force {
			flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		}
		f, err := os.OpenFile(path, flags, 0o640)
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("config init: %s exists (use -force to overwrite)", path)
		}
		if err != nil {
			return fmt.Errorf("config init: %w", err)
		}
		if _, err := f.Write(config.Starter()); err != nil {
			f.Close()
			return fmt.Errorf("config init: write %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("config init: write %s: %w", path, err)
		}
		fmt.Fprintf(a.stdout, "wrote %s; check it with: trackerd config check %s\n", path, path)
		return nil
	case "print":
		cfg, err := a.loadConfig()
		if err != nil {
			return err
		}
		return cfg.WriteTOML(a.stdout)
	default:
		return usageErrorf("usage: trackerd %s", configUsage)
	}
}
