// Package api is a small client of BigBlueButton's server API
// (/bigbluebutton/api): calls are signed with the server's shared secret,
// checksum = hex(hash(callName + queryString + secret)), the hash being
// SHA-1 on every server and SHA-256/384/512 on servers that allow them
// (BBB ≥ 2.6; the accepted list is the server's supportedChecksumAlgorithms).
// Only what roomcast needs is here: getMeetingInfo, to turn the meeting id
// people know into the internal meeting id that names the meeting's media
// room (BBB 3 with LiveKit: the LiveKit room name).
package api

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Sentinel errors; BBB's own messageKey and message are in the text.
var (
	// ErrChecksum: the server rejected the checksum (wrong secret or a hash
	// it does not accept).
	ErrChecksum = errors.New("bbb api: checksum rejected (wrong shared secret or checksum algorithm)")
	// ErrNotFound: no running meeting has that id.
	ErrNotFound = errors.New("bbb api: meeting not found")
	// ErrFailed: any other FAILED answer.
	ErrFailed = errors.New("bbb api: request failed")
	// ErrUnreachable: no answer, an HTTP error or not a BBB API response.
	ErrUnreachable = errors.New("bbb api: server unreachable or not a BigBlueButton API")
	// ErrConfig: the client is missing its base URL or secret, or asks for
	// an unknown checksum algorithm.
	ErrConfig = errors.New("bbb api: invalid configuration")
)

// Client calls one BBB server.
type Client struct {
	// Base is the API endpoint, e.g. https://bbb.example.org/bigbluebutton/api.
	Base string
	// Secret is the server's shared secret (bbb-conf --secret). Never logged.
	Secret string
	// Checksum is sha1, sha256, sha384 or sha512. It defaults to sha256.
	Checksum string
	// HTTP defaults to a client with a 10 s timeout.
	HTTP *http.Client
}

// Attendee is a user in the meeting.
type Attendee struct {
	UserID          string `xml:"userID"`
	FullName        string `xml:"fullName"`
	Role            string `xml:"role"`
	ClientType      string `xml:"clientType"`
	HasVideo        bool   `xml:"hasVideo"`
	HasJoinedVoice  bool   `xml:"hasJoinedVoice"`
	IsListeningOnly bool   `xml:"isListeningOnly"`
}

// MeetingInfo is the part of getMeetingInfo's answer roomcast uses.
type MeetingInfo struct {
	MeetingName       string     `xml:"meetingName"`
	MeetingID         string     `xml:"meetingID"`
	InternalMeetingID string     `xml:"internalMeetingID"`
	VoiceBridge       string     `xml:"voiceBridge"`
	Running           bool       `xml:"running"`
	Recording         bool       `xml:"recording"`
	ParticipantCount  int        `xml:"participantCount"`
	Attendees         []Attendee `xml:"attendees>attendee"`
}

type response struct {
	XMLName    xml.Name `xml:"response"`
	ReturnCode string   `xml:"returncode"`
	MessageKey string   `xml:"messageKey"`
	Message    string   `xml:"message"`
	MeetingInfo
}

func newHash(name string) (func() hash.Hash, error) {
	switch strings.ToLower(name) {
	case "", "sha256":
		return sha256.New, nil
	case "sha1":
		return sha1.New, nil
	case "sha384":
		return sha512.New384, nil
	case "sha512":
		return sha512.New, nil
	}
	return nil, fmt.Errorf("%w: checksum algorithm %q (want sha1, sha256, sha384 or sha512)", ErrConfig, name)
}

// Checksum signs a call: hex(hash(call + query + secret)). query is the
// encoded query string without the checksum parameter, exactly as sent.
func Checksum(algo, call, query, secret string) (string, error) {
	h, err := newHash(algo)
	if err != nil {
		return "", err
	}
	m := h()
	io.WriteString(m, call+query+secret)
	return hex.EncodeToString(m.Sum(nil)), nil
}

// URL returns the signed URL of a call.
func (c *Client) URL(call string, params url.Values) (string, error) {
	if c.Base == "" || c.Secret == "" {
		return "", fmt.Errorf("%w: need the API URL and the shared secret", ErrConfig)
	}
	q := params.Encode()
	sum, err := Checksum(c.Checksum, call, q, c.Secret)
	if err != nil {
		return "", err
	}
	if q != "" {
		q += "&"
	}
	return strings.TrimSuffix(c.Base, "/") + "/" + call + "?" + q + "checksum=" + sum, nil
}

// GetMeetingInfo asks for a running meeting by the meeting id its creator
// chose (the one in join links).
func (c *Client) GetMeetingInfo(ctx context.Context, meetingID string) (*MeetingInfo, error) {
	u, err := c.URL("getMeetingInfo", url.Values{"meetingID": {meetingID}})
	if err != nil {
		return nil, err
	}
	r, err := c.get(ctx, u)
	if err != nil {
		return nil, err
	}
	if r.InternalMeetingID == "" {
		return nil, fmt.Errorf("%w: getMeetingInfo answered without an internalMeetingID", ErrUnreachable)
	}
	mi := r.MeetingInfo
	return &mi, nil
}

func (c *Client) get(ctx context.Context, u string) (*response, error) {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		// The URL carries the checksum (not the secret); keep it out anyway.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	var r response
	if xerr := xml.Unmarshal(body, &r); xerr != nil || r.ReturnCode == "" {
		return nil, fmt.Errorf("%w: HTTP %d, not an API response", ErrUnreachable, resp.StatusCode)
	}
	if r.ReturnCode != "SUCCESS" {
		detail := fmt.Sprintf("%s: %s", r.MessageKey, r.Message)
		switch r.MessageKey {
		case "checksumError":
			return nil, fmt.Errorf("%w (%s)", ErrChecksum, detail)
		case "notFound", "invalidMeetingIdentifier":
			return nil, fmt.Errorf("%w (%s)", ErrNotFound, detail)
		}
		return nil, fmt.Errorf("%w (%s)", ErrFailed, detail)
	}
	return &r, nil
}
