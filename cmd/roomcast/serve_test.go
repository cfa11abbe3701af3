package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/mediatest"
)

// serveProc is a running `roomcast serve`.
type serveProc struct {
	cmd  *exec.Cmd
	url  string
	logs *bytes.Buffer
}

var servingRe = regexp.MustCompile(`"url":"(http://127\.0\.0\.1:\d+)"`)

func startServe(t *testing.T, data string) *serveProc {
	t.Helper()
	return startServeWith(t, nil, "--log-format", "json", "serve", "--listen", "127.0.0.1:0", "--data", data)
}

// startServeWith runs roomcast with args and extra environment until it
// logs the URL it serves.
func startServeWith(t *testing.T, env []string, args ...string) *serveProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "ROOMCAST_ADMIN_PASSWORD=serve-test-password-1"), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, logs: &bytes.Buffer{}}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait(); pw.Close() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := servingRe.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case p.url = <-found:
	case <-time.After(60 * time.Second):
		t.Fatal("roomcast serve did not start within 60 s")
	}
	return p
}

func apiCall(t *testing.T, method, url, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
		}
	}
	return resp.StatusCode
}

// kill -9 of the server during two recordings: after a restart both are
// listed as interrupted and both play.
func TestServeKill9Recovery(t *testing.T) {
	e2e(t)
	data := t.TempDir()
	p := startServe(t, data)
	tok := strings.TrimSpace(mustCLI(t, "token", "--data", data, "--user", "admin").stdout)
	if !strings.HasPrefix(tok, "rct_") {
		t.Fatalf("token %q", tok)
	}
	var ids []string
	for _, room := range []string{"demo:?speakers=1", "demo:?speakers=2"} {
		var v struct{ ID string }
		if code := apiCall(t, "POST", p.url+"/api/v1/broadcasts", tok, map[string]any{"room": room, "size": "320x180"}, &v); code != 201 {
			t.Fatalf("start: %d", code)
		}
		ids = append(ids, v.ID)
	}
	// Wait until both files hold a few fragments.
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok := 0
		var list struct {
			Broadcasts []struct {
				Elapsed float64 `json:"elapsed_seconds"`
			}
		}
		apiCall(t, "GET", p.url+"/api/v1/broadcasts", tok, nil, &list)
		for _, b := range list.Broadcasts {
			if b.Elapsed >= 3 {
				ok++
			}
		}
		if ok == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broadcasts did not reach 3 s: %+v", list)
		}
		time.Sleep(300 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()

	p = startServe(t, data)
	var raw struct{ Recordings []map[string]any }
	apiCall(t, "GET", p.url+"/api/v1/recordings", tok, nil, &raw)
	if len(raw.Recordings) != 2 {
		t.Fatalf("after restart: %d recordings, want 2", len(raw.Recordings))
	}
	for _, r := range raw.Recordings {
		if r["state"] != "interrupted" {
			t.Errorf("recording %v: state %v, want interrupted", r["id"], r["state"])
		}
		u, _ := r["download_url"].(string)
		if u == "" {
			t.Fatalf("recording %v has no download link", r["id"])
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "dl.mp4")
		f, _ := os.Create(out)
		_, _ = io.Copy(f, resp.Body)
		f.Close()
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("download: %d", resp.StatusCode)
		}
		// Playable: ffmpeg decodes it without an error, for at least 2 s.
		if dec := mediatest.DecodeErrors(out); dec != "" {
			t.Errorf("decoding the recovered file: %s", dec)
		}
		var d float64
		if p, err := mediatest.ProbeFile(out, "-show_format"); err == nil {
			d = mediatest.Secs(p.Format.Duration)
		}
		if !(d >= 2) {
			t.Errorf("recovered file lasts %.2f s, want ≥ 2", d)
		}
	}
	var b struct{ State string }
	apiCall(t, "GET", p.url+"/api/v1/broadcasts/"+ids[0], tok, nil, &b)
	if b.State != "interrupted" {
		t.Errorf("broadcast after kill -9: %q, want interrupted", b.State)
	}
}
