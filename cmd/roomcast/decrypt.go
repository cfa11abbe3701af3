package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"filippo.io/age"
	"github.com/urfave/cli/v2"

	"github.com/roomcast/roomcast/atrest"
	"github.com/roomcast/roomcast/mp4"
)

func decryptCommand() *cli.Command {
	return &cli.Command{
		Name:      "decrypt",
		Usage:     "turn an encrypted recording (finished, or cut short by a crash) into a playable MP4",
		ArgsUsage: "FILE",
		Description: "FILE was written with --encrypt-to. The whole recording is decrypted in one pass and\n" +
			"finalised (index in front). A recording torn by a crash or power cut is recovered up to its\n" +
			"last complete chunk (at most the last ~2 s are lost). `age -d -i KEYFILE FILE` decrypts a\n" +
			"finished recording too (to a fragmented MP4). Exit 7 when no identity matches.",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "identity", Aliases: []string{"i"}, Usage: "age identity file (AGE-SECRET-KEY-1…, as made by age-keygen; repeatable)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "MP4 file to write"},
			&cli.BoolFlag{Name: "overwrite", Aliases: []string{"y"}, Usage: "replace an existing output file (default: refuse)"},
		},
		Action: runDecrypt,
	}
}

func runDecrypt(c *cli.Context) error {
	log, err := logger(c)
	if err != nil {
		return err
	}
	if c.NArg() != 1 {
		return fmt.Errorf("%w: decrypt takes one encrypted FILE", errUsage)
	}
	if len(c.StringSlice("identity")) == 0 || c.String("output") == "" {
		return fmt.Errorf("%w: decrypt needs --identity KEYFILE and --output FILE.mp4", errUsage)
	}
	var idents []age.Identity
	for _, p := range c.StringSlice("identity") {
		ids, err := atrest.Identities(p)
		if err != nil {
			return &exitError{code: exitKey, err: err}
		}
		idents = append(idents, ids...)
	}
	out := c.String("output")
	if abs, err := filepath.Abs(out); err == nil {
		out = abs
	}
	torn, err := mp4.Decrypt(c.Args().First(), out, idents, c.Bool("overwrite"), log)
	if err != nil {
		if errors.Is(err, atrest.ErrWrongKey) || errors.Is(err, atrest.ErrIdentity) {
			return &exitError{code: exitKey, err: err}
		}
		return err
	}
	if torn {
		log.Warn().Str("output", out).Msg("recovered a recording that was cut short")
	} else {
		log.Info().Str("output", out).Msg("decrypted")
	}
	return nil
}
