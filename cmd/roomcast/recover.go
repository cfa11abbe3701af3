package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/roomcast/roomcast/mp4"
)

func recoverCommand() *cli.Command {
	return &cli.Command{
		Name:      "recover",
		Usage:     "turn a recording left fragmented by a crash (kill -9, power cut) into a regular MP4",
		ArgsUsage: "FILE",
		Description: "Cuts a torn last fragment away, finalises the file in place (index in front) and reports\n" +
			"what was kept. A file that is already a regular MP4 is left alone (exit 0).\n" +
			"Exit 3 when FILE is not an MP4 recording, 4 when it cannot be rewritten.",
		Action: runRecover,
	}
}

func runRecover(c *cli.Context) error {
	log, err := logger(c)
	if err != nil {
		return err
	}
	if c.NArg() != 1 {
		return fmt.Errorf("%w: recover takes one FILE", errUsage)
	}
	path := c.Args().First()
	if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
		return &exitError{code: exitInput, err: fmt.Errorf("%s: not a recording file", path)}
	}
	rep, err := mp4.RecoverFile(path, log)
	if err != nil {
		return err
	}
	if rep.AlreadyFinal {
		fmt.Fprintf(c.App.Writer, "%s: already a finalised MP4 (%.2fs, %d bytes); left alone\n", path, rep.Duration.Seconds(), rep.Bytes)
		return nil
	}
	fmt.Fprintf(c.App.Writer, "%s: recovered %.2fs in %d fragments (%d bytes); dropped a torn tail of %d bytes\n",
		path, rep.Duration.Seconds(), rep.Fragments, rep.Bytes, rep.Dropped)
	return nil
}
