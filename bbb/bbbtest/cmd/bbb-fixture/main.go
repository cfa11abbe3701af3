// Command bbb-fixture writes a BigBlueButton raw folder for benchmarks and
// manual tries: the standard test meeting, or a long webinar.
//
//	bbb-fixture -o DIR [-minutes 60]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/roomcast/roomcast/bbb/bbbtest"
)

func main() {
	out := flag.String("o", "", "folder to write the raw folder into")
	minutes := flag.Int("minutes", 0, "a long webinar of this many minutes (3 webcams + audio) instead of the standard meeting")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "bbb-fixture: -o DIR is required")
		os.Exit(2)
	}
	m := bbbtest.Standard("")
	if *minutes > 0 {
		m = bbbtest.Webinar(*minutes)
	}
	dir, err := m.Write(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bbb-fixture:", err)
		os.Exit(1)
	}
	fmt.Println(dir)
}
