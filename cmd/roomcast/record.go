package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/roomcast/roomcast/consent"
	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/room/registry"
	"github.com/roomcast/roomcast/session"
)

func recordCommand() *cli.Command {
	return &cli.Command{
		Name:    "record",
		Aliases: []string{"stream"},
		Usage:   "join a LiveKit room or a Janus VideoRoom and record (--output) and/or stream (--stream) it live",
		Description: "--room is the LiveKit server URL with the room name as its last path segment\n" +
			"(wss://livekit.example.org/weekly-webinar), or just the room name with --livekit-url;\n" +
			"or a Janus VideoRoom: janus+ws://host:8188/<room-id> (also janus+wss, janus+http(s)\n" +
			"for the REST transport: janus+https://host/janus/<room-id>), with --pin, $JANUS_API_SECRET\n" +
			"and $JANUS_TOKEN when the room or server asks for them.\n" +
			"Credentials: an access token (--token-file, or $LIVEKIT_TOKEN), or an API key and secret\n" +
			"($LIVEKIT_API_KEY, $LIVEKIT_API_SECRET or --api-secret-file) from which roomcast mints a\n" +
			"short-lived hidden recorder token. Secrets on the command line are visible to other users\n" +
			"of the machine (ps): prefer the environment or a file.\n" +
			"Stops on --duration, SIGINT/SIGTERM, when the room closes, or when it has been empty for\n" +
			"--empty-timeout; the MP4 is finalised in every case.",
		Flags: append(append(append(append(canvasFlags(), kindFlags()...), streamFlags()...), watchFlags()...),
			&cli.StringFlag{Name: "room", Required: true, Usage: "LiveKit server URL + room (wss://host/room), or a room name with --livekit-url"},
			&cli.StringFlag{Name: "livekit-url", EnvVars: []string{"LIVEKIT_URL"}, Usage: "LiveKit server URL when --room is a bare name"},
			&cli.StringFlag{Name: "token", EnvVars: []string{"LIVEKIT_TOKEN"}, Usage: "access token (prefer the environment or --token-file)"},
			&cli.StringFlag{Name: "token-file", Usage: "file holding the access token"},
			&cli.StringFlag{Name: "api-key", EnvVars: []string{"LIVEKIT_API_KEY"}, Usage: "API key to mint roomcast's own token"},
			&cli.StringFlag{Name: "api-secret", EnvVars: []string{"LIVEKIT_API_SECRET"}, Usage: "API secret (prefer the environment or --api-secret-file)"},
			&cli.StringFlag{Name: "api-secret-file", Usage: "file holding the API secret"},
			&cli.StringFlag{Name: "pin", EnvVars: []string{"JANUS_PIN"}, Usage: "Janus: the room's PIN (or pin= in the room URL; prefer the environment or --pin-file)"},
			&cli.StringFlag{Name: "pin-file", Usage: "Janus: file holding the room's PIN"},
			&cli.StringFlag{Name: "janus-api-secret", EnvVars: []string{"JANUS_API_SECRET"}, Usage: "Janus: the server's api_secret (prefer the environment or --janus-api-secret-file)"},
			&cli.StringFlag{Name: "janus-api-secret-file", Usage: "Janus: file holding the server's api_secret"},
			&cli.StringFlag{Name: "janus-token", EnvVars: []string{"JANUS_TOKEN"}, Usage: "Janus: token for a server with token_auth (prefer the environment or --janus-token-file)"},
			&cli.StringFlag{Name: "janus-token-file", Usage: "Janus: file holding the token"},
			&cli.StringFlag{Name: "bbb-secret", EnvVars: []string{"BBB_SECRET"}, Usage: "BigBlueButton: the server's shared secret for bbb+https:// rooms (prefer the environment or --bbb-secret-file)"},
			&cli.StringFlag{Name: "bbb-secret-file", Usage: "BigBlueButton: file holding the shared secret"},
			&cli.DurationFlag{Name: "duration", Usage: "stop after this much recording (0: no limit)"},
			&cli.DurationFlag{Name: "wait-first-speaker", Usage: "start recording only when the first speaker publishes; give up (exit 5) after this long (0: record at once)"},
			&cli.DurationFlag{Name: "empty-timeout", Value: 60 * time.Second, Usage: "stop when the room has been empty this long (0: never)"},
			&cli.DurationFlag{Name: "connect-timeout", Value: 10 * time.Second, Usage: "give up joining after this long"},
			&cli.BoolFlag{Name: "require-recording-flag", Usage: "refuse a supplied --token without LiveKit's recorder grant (standard clients would not show \"recording\")"},
			&cli.StringFlag{Name: "recorder-name", Value: "● Recording", Usage: "roomcast's display name where the room shows it"},
			&cli.BoolFlag{Name: "no-announce", Usage: "do not announce the start and stop of the recording in the room's chat (LiveKit) nor set roomcast's roomcast.recording attribute"},
			&cli.StringFlag{Name: "announce-start", Usage: "chat message when the recording starts (default: says whether the meeting is recorded and/or streamed)"},
			&cli.StringFlag{Name: "announce-stop", Value: session.DefaultAnnounceStop, Usage: "chat message when the recording stops"},
			&cli.StringSliceFlag{Name: "only", Usage: "record only these participant identities (repeatable; everyone else is left out)"},
			&cli.StringSliceFlag{Name: "exclude", Usage: "never record this participant identity (repeatable): no tile, label, sound or speaker switch, media not decoded"},
			&cli.StringFlag{Name: "consent-attribute", Value: consent.DefaultAttribute, Usage: "participant attribute (or JSON metadata key) whose value \"no\" opts a participant out, also mid-session (\"-\": none)"},
		),
		Action: runRecord,
	}
}

// secret returns a flag's value or the trimmed content of its file flag.
func secret(c *cli.Context, flag, fileFlag string) (string, error) {
	if p := c.String(fileFlag); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("%w: --%s: %v", errUsage, fileFlag, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return c.String(flag), nil
}

// roomURL is the room to join: --room when it is a URL (wss://host/room,
// or any scheme room/registry knows), else a bare LiveKit room name joined
// to --livekit-url.
func roomURL(c *cli.Context) (string, error) {
	r := c.String("room")
	if strings.Contains(r, "://") {
		if u, err := url.Parse(r); err != nil || u.Host == "" {
			return "", fmt.Errorf("%w: --room %q is not a URL", errUsage, r)
		}
		return r, nil
	}
	if registry.Scheme(r) == "demo" { // the synthetic room (session)
		return r, nil
	}
	if _, ok := registry.Lookup(registry.Scheme(r)); ok {
		return r, nil
	}
	server := strings.TrimSuffix(c.String("livekit-url"), "/")
	if server == "" || r == "" {
		return "", fmt.Errorf("%w: --room needs a server URL and a room name (wss://host/room, or --livekit-url with a bare name)", errUsage)
	}
	return server + "/" + r, nil
}

// credentials picks the secrets for the room's server: LiveKit's token or
// API key and secret, or Janus's PIN, api_secret and token (each from its
// flag, environment variable or file), so that no server ever receives
// another's secret.
func credentials(c *cli.Context, roomAddr string) (room.Credentials, error) {
	if strings.HasPrefix(registry.Scheme(roomAddr), "janus+") {
		pin, err := secret(c, "pin", "pin-file")
		if err != nil {
			return room.Credentials{}, err
		}
		apiSecret, err := secret(c, "janus-api-secret", "janus-api-secret-file")
		if err != nil {
			return room.Credentials{}, err
		}
		token, err := secret(c, "janus-token", "janus-token-file")
		if err != nil {
			return room.Credentials{}, err
		}
		return room.Credentials{PIN: pin, APISecret: apiSecret, Token: token}, nil
	}
	token, err := secret(c, "token", "token-file")
	if err != nil {
		return room.Credentials{}, err
	}
	apiSecret, err := secret(c, "api-secret", "api-secret-file")
	if err != nil {
		return room.Credentials{}, err
	}
	creds := room.Credentials{Token: token, APIKey: c.String("api-key"), APISecret: apiSecret}
	if strings.HasPrefix(registry.Scheme(roomAddr), "bbb+") {
		// BBB 3: the shared secret signs the API call; the LiveKit key and
		// secret above join the meeting's LiveKit room.
		if creds.Secret, err = secret(c, "bbb-secret", "bbb-secret-file"); err != nil {
			return room.Credentials{}, err
		}
	}
	return creds, nil
}

func runRecord(c *cli.Context) error {
	log, err := logger(c)
	if err != nil {
		return err
	}
	roomAddr, err := roomURL(c)
	if err != nil {
		return err
	}
	creds, err := credentials(c, roomAddr)
	if err == nil && creds.Token != "" && !strings.HasPrefix(registry.Scheme(roomAddr), "janus+") {
		err = checkRecorderGrant(c, creds.Token, log)
	}
	if err != nil {
		return err
	}
	if c.String("output") == "" && len(c.StringSlice("stream")) == 0 && c.String("hls") == "" {
		return fmt.Errorf("%w: record needs --output FILE.mp4, --hls DIR and/or --stream URL", errUsage)
	}
	cfg, err := pipelineConfig(c, log)
	if err != nil {
		return err
	}
	if err := applyStreamPreset(c, &cfg); err != nil {
		return err
	}
	sess, err := session.New(session.Config{
		Room:             roomAddr,
		Credentials:      creds,
		ConnectTimeout:   c.Duration("connect-timeout"),
		Pipeline:         cfg,
		Outputs:          outputsConfig(c),
		Duration:         c.Duration("duration"),
		WaitFirstSpeaker: c.Duration("wait-first-speaker"),
		EmptyTimeout:     c.Duration("empty-timeout"),
		Log:              log,
		Name:             c.String("recorder-name"),
		Consent: consent.Policy{Only: c.StringSlice("only"), Exclude: c.StringSlice("exclude"),
			Attribute: c.String("consent-attribute")},
		Announce: session.Announce{Off: c.Bool("no-announce"), Start: c.String("announce-start"), Stop: c.String("announce-stop")},
	})
	if err != nil {
		return sessionError(err)
	}
	stopWatch, err := startWatch(c, log)
	if err != nil {
		return err
	}
	defer stopWatch()
	// The signal context stops the session, which then finalises.
	if err := sess.Start(c.Context); err != nil {
		return sessionError(err)
	}
	return sessionError(sess.Wait())
}

// sessionError maps a session's error classes to exit codes, keeping the
// message (configuration mistakes read "usage: …" as every usage error).
func sessionError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, session.ErrConfig):
		return fmt.Errorf("%w: %w", errUsage, err)
	case errors.Is(err, session.ErrRoom), errors.Is(err, session.ErrNoSpeaker):
		return &exitError{exitRoom, err}
	case errors.Is(err, session.ErrStream):
		return &exitError{exitStream, err}
	}
	return err // output errors: classify finds mp4's and recorder's sentinels
}

// checkRecorderGrant makes the recorder visible: LiveKit turns the room's
// active-recording flag on (standard clients show "recording") only for a
// participant whose token carries the recorder grant, as roomcast's own
// minted tokens do. A supplied token without it is a warning, or an error
// with --require-recording-flag. The token is read, not verified (the
// server does that).
func checkRecorderGrant(c *cli.Context, token string, log zerolog.Logger) error {
	var claims struct {
		jwt.RegisteredClaims
		Video *struct {
			Recorder bool `json:"recorder"`
		} `json:"video"`
	}
	_, _, err := jwt.NewParser().ParseUnverified(token, &claims)
	if err != nil {
		return nil // not a JWT: the server rejects it with a clear error (exit 5)
	}
	if claims.Video != nil && claims.Video.Recorder {
		return nil
	}
	if c.Bool("require-recording-flag") {
		return fmt.Errorf("%w: the access token has no recorder grant (video.recorder): participants would not see that the room is recorded; mint it with the recorder grant or let roomcast mint one from the API key", errUsage)
	}
	log.Warn().Msg("the access token has no recorder grant: standard LiveKit clients will not show that the room is recorded (--require-recording-flag refuses such tokens)")
	return nil
}
