package main

// No third-party calls: roomcast contacts the room server and the
// destinations it is given, nothing else (GDPR.md, "No third parties").

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// iceURL matches a STUN/TURN URL or host (RFC 7064, RFC 7065) and the
// well-known public services, with or without a scheme.
var iceURL = regexp.MustCompile(`(?i)\b(stuns?|turns?):(//)?([a-z0-9.\-]+|\[[0-9a-f:]+\])|` +
	`(stun[0-9]?\.l\.google\.com|stun\.cloudflare\.com|global\.stun\.twilio\.com|global\.turn\.twilio\.com|openrelay\.metered\.ca|stun\.services\.mozilla\.com)`)

// localHost: addresses that stay on the machine or are documentation
// placeholders.
func localHost(h string) bool {
	h = strings.Trim(strings.ToLower(h), "[]")
	return h == "localhost" || strings.HasPrefix(h, "127.") || h == "::1" ||
		strings.HasSuffix(h, ".example.org") || strings.HasSuffix(h, ".example.com") || h == "example.org"
}

// publicICEHosts lists every STUN/TURN host that is not local in the Go files
// under dir (tests included, except this file).
func publicICEHosts(t *testing.T, dir string, skipTests bool) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "testdata", "examples", "example", ".git", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "thirdparty_test.go") ||
			(skipTests && strings.HasSuffix(p, "_test.go")) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, line := range bytes.Split(b, []byte("\n")) {
			for _, m := range iceURL.FindAllSubmatch(line, -1) {
				host := string(m[3])
				if len(m[4]) > 0 {
					host = string(m[4])
				}
				if !localHost(host) {
					found = append(found, fmt.Sprintf("%s:%d: %s", p, i+1, m[0]))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestNoPublicICEServers: no STUN/TURN server is hard-coded, neither in
// roomcast nor in the WebRTC libraries it links (the LiveKit SDK takes its
// ICE servers from the room server's join response; pion has no default).
func TestNoPublicICEServers(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if got := publicICEHosts(t, root, false); len(got) > 0 {
		t.Errorf("public STUN/TURN hosts in roomcast's code:\n%s", strings.Join(got, "\n"))
	}
	// The detector works: it finds what it must.
	tmp := t.TempDir()
	_ = os.WriteFile(filepath.Join(tmp, "x.go"), []byte("var s = \"st"+"un:stun.l.goo"+"gle.com:19302\"\nvar ok = \"tu"+"rn:127.0.0.1:3478\"\n"), 0o644)
	if got := publicICEHosts(t, tmp, false); len(got) != 1 {
		t.Errorf("the detector found %v in a file with one public STUN host", got)
	}
	if testing.Short() {
		return
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Path}} {{.Dir}}",
		"github.com/livekit/server-sdk-go/v2", "github.com/pion/webrtc/v4", "github.com/pion/ice/v4").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, dir, _ := strings.Cut(l, " ")
		if dir == "" {
			t.Errorf("module %s not in the module cache", path)
			continue
		}
		if got := publicICEHosts(t, dir, true); len(got) > 0 {
			t.Errorf("%s hard-codes public STUN/TURN hosts:\n%s", path, strings.Join(got, "\n"))
		}
	}
}

// netnsEnv, when set, marks the test binary as running inside the
// loopback-only namespace of TestRecordInLoopbackNamespace.
const netnsEnv = "ROOMCAST_TEST_NETNS"

// TestRecordInLoopbackNamespace runs a whole LiveKit recording (server,
// publishers, roomcast record, RTMP stream) and a whole Janus recording
// (Debian's janus, pion publishers, roomcast record with consent filters:
// TestRecordConsentJanus) inside a network namespace
// whose only way out is a veth interface that leads nowhere: nftables
// counts and drops every packet that leaves by another interface than lo.
// The recording must succeed and the counter stay at zero: nothing tried
// to reach a third party. (A namespace with lo alone is no test: pion then
// finds no interface and the SDK cannot connect; see the notes.)
func TestRecordInLoopbackNamespace(t *testing.T) {
	e2e(t)
	lktest.SkipIfShort(t)
	if os.Getenv(netnsEnv) != "" {
		t.Skip("already inside the namespace")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (make peers: iproute2, nftables): %v", tool, err)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatal("network namespaces need root")
	}
	ns := "roomcast-gdpr-" + strconv.Itoa(os.Getpid())
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run("ip", "-n", ns, "link", "set", "lo", "up")
	// A veth pair with both ends in the namespace: out0 has an address
	// and the default routes, out1 no address; what leaves by out0 lands
	// on out1 and goes nowhere. (This kernel has no dummy interfaces.)
	run("ip", "-n", ns, "link", "add", "out0", "type", "veth", "peer", "name", "out1")
	run("ip", "-n", ns, "addr", "add", "10.213.7.1/24", "dev", "out0")
	run("ip", "-n", ns, "link", "set", "out0", "up")
	run("ip", "-n", ns, "link", "set", "out1", "up")
	run("ip", "-n", ns, "route", "add", "default", "dev", "out0")
	run("ip", "-n", ns, "-6", "route", "add", "default", "dev", "out0")
	// Counted: every TCP, UDP, ICMP and ICMPv6 echo packet that would leave
	// by out0. Not counted: the kernel's own IPv6 neighbour discovery and
	// multicast listener reports on the veth (ICMPv6), which no program sends.
	rules := `table inet roomcast_guard {
  chain out {
    type filter hook output priority 0; policy accept;
    oifname != "lo" meta l4proto { tcp, udp, icmp } counter drop
    oifname != "lo" icmpv6 type echo-request counter drop
  }
}
`
	rf := filepath.Join(t.TempDir(), "guard.nft")
	if err := os.WriteFile(rf, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	run("ip", "netns", "exec", ns, "nft", "-f", rf)

	// The guard works: a UDP datagram to another address is counted (bash's
	// /dev/udp; the write fails, the packet is dropped).
	_ = exec.Command("ip", "netns", "exec", ns, "bash", "-c", "echo probe > /dev/udp/192.0.2.7/3478").Run()
	probes := guardCount(t, ns)
	if probes == 0 {
		t.Fatal("a datagram to 192.0.2.7 was not counted: the guard proves nothing")
	}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cmd := exec.Command("ip", "netns", "exec", ns, exe, "-test.run", "^(TestRecordSpeakerLayoutAndStream|TestRecordConsentJanus)$",
		"-test.count", "1", "-test.v", "-test.timeout", "5m")
	cmd.Env = append(os.Environ(), netnsEnv+"=1", "ROOMCAST_BIN="+bin)
	out, err := cmd.CombinedOutput()
	t.Logf("the recording inside %s took %.1f s", ns, time.Since(start).Seconds())
	for _, name := range []string{"TestRecordSpeakerLayoutAndStream", "TestRecordConsentJanus"} {
		if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
			t.Errorf("%s failed inside the loopback-only namespace: %v\n%s", name, err, tail(string(out), 40))
		}
	}
	if n := guardCount(t, ns) - probes; n != 0 {
		t.Errorf("%d packets tried to leave by a non-loopback interface", n)
	}
}

var counterRe = regexp.MustCompile(`counter packets (\d+)`)

func guardCount(t *testing.T, ns string) int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "chain", "inet", "roomcast_guard", "out").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list: %v\n%s", err, out)
	}
	ms := counterRe.FindAllSubmatch(out, -1)
	if len(ms) != 2 {
		t.Fatalf("want two counters in:\n%s", out)
	}
	n := 0
	for _, m := range ms {
		k, _ := strconv.Atoi(string(m[1]))
		n += k
	}
	return n
}
