// Package serve is `roomcast serve`: the host's page and JSON API in one
// process that runs several broadcasts at once. State lives in SQLite in the
// data directory, recordings in DATA/recordings. The broadcasts themselves
// run through a Runner (the session core), each isolated from the others.
package serve

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/roomcast/roomcast/hls/watch"
)

// Config configures a Server. The zero value of each field is its default.
type Config struct {
	// Data is the data directory (required): roomcast.db, secret,
	// audit.jsonl, recordings/.
	Data string
	// Secret is the server secret all keys derive from. It defaults to the
	// content of DATA/secret, created at first start.
	Secret []byte
	// AdminPassword creates the first account "admin" when there is none.
	// Without it, a one-time setup link is logged instead.
	AdminPassword string
	// BaseURL is how users reach the server (for the setup link and
	// absolute download links). It defaults to "" (relative links).
	BaseURL string
	// SecureCookies marks cookies Secure (the server is behind TLS).
	SecureCookies bool
	// Runner starts broadcasts (required).
	Runner Runner
	// Log defaults to a disabled logger.
	Log zerolog.Logger
	// Now is the clock; it defaults to time.Now (tests inject one).
	Now func() time.Time
	// Retention deletes recordings older than this; default 30 days,
	// negative keeps them forever.
	Retention time.Duration
	// LinkTTL is how long download links stay valid; default 7 days.
	LinkTTL time.Duration
	// CPUCapacity is the cores broadcasts may use together; default 85% of
	// the machine's cores. Negative switches admission control off (every
	// broadcast is admitted: for benchmarks that measure the machine).
	CPUCapacity float64
	// CPUPerBroadcast is the estimated cost of a 720p30 broadcast before
	// any has been measured; default 0.5 cores.
	CPUPerBroadcast float64
	// Webhooks receive events.
	Webhooks []Webhook
	// WebhookAttempts (default 5) and WebhookBackoff (default 1 s, doubling).
	WebhookAttempts int
	WebhookBackoff  time.Duration
	// LoginLimit is the failed logins allowed per client and account per
	// LoginWindow (defaults 5 per minute).
	LoginLimit  int
	LoginWindow time.Duration
	// BcryptCost defaults to bcrypt.DefaultCost.
	BcryptCost int
	// EncryptTo, when not empty, encrypts every recording as it is written
	// to these age recipients (atrest): DATA/recordings/<id>.mp4.age, no
	// plaintext byte on disk, no poster frame (it would be plaintext).
	EncryptTo []age.Recipient
	// Identities, when set, are age identities matching EncryptTo: the
	// server then decrypts on download (range requests work on the
	// plaintext). Without them the server cannot read its recordings and
	// a download is the encrypted file, for the holder of the key.
	Identities []age.Identity
}

func (c *Config) defaults() error {
	if c.Data == "" {
		return errors.New("serve: no data directory")
	}
	if c.Runner == nil {
		return errors.New("serve: no runner")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Retention == 0 {
		c.Retention = 30 * 24 * time.Hour
	}
	if c.LinkTTL == 0 {
		c.LinkTTL = 7 * 24 * time.Hour
	}
	if c.CPUCapacity == 0 {
		c.CPUCapacity = 0.85 * float64(runtime.NumCPU())
	}
	if c.CPUPerBroadcast == 0 {
		c.CPUPerBroadcast = 0.5
	}
	if c.WebhookAttempts == 0 {
		c.WebhookAttempts = 5
	}
	if c.WebhookBackoff == 0 {
		c.WebhookBackoff = time.Second
	}
	if c.LoginLimit == 0 {
		c.LoginLimit = 5
	}
	if c.LoginWindow == 0 {
		c.LoginWindow = time.Minute
	}
	if c.BcryptCost == 0 {
		c.BcryptCost = bcrypt.DefaultCost
	}
	return nil
}

// Server is the running service. Open it, serve Handler(), Close it.
type Server struct {
	cfg     Config
	log     zerolog.Logger
	st      *store
	keys    *keys
	audit   *auditLog
	hooks   *webhooks
	recDir  string
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	limiter *loginLimiter
	cpu     *cpuMeter
	mux     *http.ServeMux
	pages   map[string]*template.Template
	viewers *watch.Handler // the watch pages of HLS broadcasts

	mu      sync.Mutex
	running map[string]*live // by broadcast id
	// startGate lets one broadcast start at a time (see launch).
	startGate chan struct{}
	closing   bool
	startMu   sync.Mutex // admission decisions one at a time
	counters  counters

	dummyOnce sync.Once
	dummy     []byte
}

// counters accumulate figures of finished broadcasts for /metrics.
type counters struct {
	framesOut, dropped, reconnects, bytes atomic.Int64
	degraded, stepDowns                   atomic.Int64
	refusals                              atomic.Int64
	net                                   netCounters
}

// netCounters sum the network counters of the broadcasts that ended.
type netCounters struct {
	packets, lost, late, repaired, nacked, retransmissions, plis atomic.Uint64
}

func (c *netCounters) add(n NetworkStatus) {
	c.packets.Add(n.Packets)
	c.lost.Add(n.Lost)
	c.late.Add(n.Late)
	c.repaired.Add(n.Repaired)
	c.nacked.Add(n.NACKed)
	c.retransmissions.Add(n.Retransmissions)
	c.plis.Add(n.KeyframeRequests)
}

func (c *netCounters) load() NetworkStatus {
	return NetworkStatus{Packets: c.packets.Load(), Lost: c.lost.Load(), Late: c.late.Load(), Repaired: c.repaired.Load(),
		NACKed: c.nacked.Load(), Retransmissions: c.retransmissions.Load(), KeyframeRequests: c.plis.Load()}
}

// Open prepares the data directory and database, recovers recordings torn
// by a crash, creates the first admin if asked and starts the background
// work (scheduler, retention, CPU meter).
func Open(cfg Config) (*Server, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Log.With().Str("component", "serve").Logger(), running: map[string]*live{},
		startGate: make(chan struct{}, 1)}
	s.recDir = filepath.Join(cfg.Data, "recordings")
	if err := os.MkdirAll(s.recDir, 0o700); err != nil {
		return nil, err
	}
	for _, d := range []string{cfg.Data, s.recDir} {
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, err
		}
	}
	if s.cfg.Secret == nil {
		sec, err := loadSecret(cfg.Data)
		if err != nil {
			return nil, fmt.Errorf("server secret: %w", err)
		}
		s.cfg.Secret = sec
	}
	var err error
	if s.keys, err = newKeys(s.cfg.Secret); err != nil {
		return nil, err
	}
	if s.st, err = openStore(cfg.Data); err != nil {
		return nil, err
	}
	anchor, _ := s.st.meta("audit_anchor")
	s.audit, err = openAudit(filepath.Join(cfg.Data, "audit.jsonl"), cfg.Now, func(seq int64, h string) {
		_ = s.st.setMeta("audit_anchor", strconv.FormatInt(seq, 10)+":"+h)
	})
	if err != nil {
		s.st.Close()
		return nil, err
	}
	if anchor != "" && anchor != strconv.FormatInt(s.audit.seq, 10)+":"+s.audit.last {
		s.log.Error().Str("anchor", anchor).Int64("seq", s.audit.seq).Msg("audit log does not end where the database says it did (lines removed at the end?)")
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.hooks = &webhooks{hooks: cfg.Webhooks, client: &http.Client{Timeout: 10 * time.Second}, st: s.st,
		log: cfg.Log.With().Str("component", "webhooks").Logger(), now: cfg.Now, attempts: cfg.WebhookAttempts,
		backoff: cfg.WebhookBackoff, ctx: s.ctx}
	s.limiter = newLoginLimiter(cfg.LoginLimit, cfg.LoginWindow, cfg.Now)
	s.cpu = newCPUMeter()
	s.newViewers()
	s.recoverAtStart()
	if err := s.firstAdmin(); err != nil {
		s.Close()
		return nil, err
	}
	s.routes()
	s.wg.Add(2)
	go s.scheduler()
	go s.housekeeping()
	return s, nil
}

// Close stops every running broadcast (their recordings are finalised and
// marked interrupted), waits for them, and closes the database. Idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	lives := make([]*live, 0, len(s.running))
	for _, l := range s.running {
		lives = append(lives, l)
	}
	s.mu.Unlock()
	for _, l := range lives {
		l.shutdown.Store(true)
		l.b.Stop()
	}
	for _, l := range lives {
		<-l.done
	}
	s.cancel()
	s.wg.Wait()
	s.hooks.wait()
	s.audit.Close()
	return s.st.Close()
}

// Handler is the HTTP interface (page, API, downloads, metrics).
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) now() time.Time { return s.cfg.Now() }

// firstAdmin creates the admin from the configured password, or prints a
// one-time setup link when there is no account yet.
func (s *Server) firstAdmin() error {
	n, err := s.st.userCount()
	if err != nil || n > 0 {
		return err
	}
	if s.cfg.AdminPassword != "" {
		if err := s.createUser("admin", s.cfg.AdminPassword, true); err != nil {
			return err
		}
		s.log.Info().Str("user", "admin").Msg("created the first admin from ROOMCAST_ADMIN_PASSWORD")
		_ = s.audit.Append("system", "user.create", "admin", "first admin")
		return nil
	}
	tok := randomToken(24)
	if _, err := s.st.db.Exec(`INSERT INTO setup_tokens(token_hash,expires) VALUES(?,?)`, tokenHash(tok), ms(s.now().Add(24*time.Hour))); err != nil {
		return err
	}
	// The one place a token is printed: the operator needs it, once, on
	// the terminal that started the server. Not through the logger.
	fmt.Fprintf(os.Stderr, "roomcast: no account yet. Create the admin within 24 h at: %s/setup?token=%s\n", s.cfg.BaseURL, tok)
	return nil
}

func (s *Server) createUser(name, password string, admin bool) error {
	h, err := bcrypt.GenerateFromPassword([]byte(password), s.cfg.BcryptCost)
	if err != nil {
		return err
	}
	_, err = s.st.createUser(name, string(h), admin, s.now())
	return err
}

// CreateUser adds an account (for the CLI and tests).
func (s *Server) CreateUser(name, password string, admin bool) error {
	if err := s.createUser(name, password, admin); err != nil {
		return err
	}
	return s.audit.Append("system", "user.create", name, "")
}

// CreateToken mints an API bearer token for an account; it is returned once
// and stored only as a hash.
func (s *Server) CreateToken(userName, label string) (string, error) {
	u, err := s.st.userBy("name=?", userName)
	if err != nil {
		return "", err
	}
	tok := "rct_" + randomToken(24)
	if _, err := s.st.db.Exec(`INSERT INTO api_tokens(token_hash,user_id,name,created) VALUES(?,?,?,?)`,
		tokenHash(tok), u.ID, label, ms(s.now())); err != nil {
		return "", err
	}
	_ = s.audit.Append(userName, "token.create", label, "")
	return tok, nil
}

// housekeeping runs retention and samples CPU.
func (s *Server) housekeeping() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lastRet := time.Time{}
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.cpu.sample()
		if time.Since(lastRet) > time.Minute {
			lastRet = time.Now()
			s.RunRetention()
		}
		s.checkDestinations()
	}
}

// MintToken creates an API token for an account of a data directory
// without a running server (the CLI's `roomcast token`).
func MintToken(dataDir, userName, label string) (string, error) {
	st, err := openStore(dataDir)
	if err != nil {
		return "", err
	}
	defer st.Close()
	u, err := st.userBy("name=?", userName)
	if err != nil {
		return "", fmt.Errorf("account %q: %w", userName, err)
	}
	tok := "rct_" + randomToken(24)
	_, err = st.db.Exec(`INSERT INTO api_tokens(token_hash,user_id,name,created) VALUES(?,?,?,?)`, tokenHash(tok), u.ID, label, ms(time.Now()))
	return tok, err
}
