package serve

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // pure-Go SQLite driver
)

// ErrNotFound: no such row.
var ErrNotFound = errors.New("not found")

const schema = `
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users(
  id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, hash TEXT NOT NULL,
  admin INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions(
  token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL, csrf TEXT NOT NULL, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS api_tokens(
  token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL, name TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS setup_tokens(token_hash TEXT PRIMARY KEY, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS destinations(
  id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, name TEXT NOT NULL, url TEXT NOT NULL,
  key_enc BLOB NOT NULL, created INTEGER NOT NULL, UNIQUE(user_id, name));
CREATE TABLE IF NOT EXISTS broadcasts(
  id TEXT PRIMARY KEY, user_id INTEGER NOT NULL, room TEXT NOT NULL, layout TEXT NOT NULL,
  width INTEGER NOT NULL, height INTEGER NOT NULL, record INTEGER NOT NULL,
  dests_enc BLOB, dest_names TEXT NOT NULL DEFAULT '', start_at INTEGER NOT NULL, duration_ms INTEGER NOT NULL,
  state TEXT NOT NULL, error TEXT NOT NULL DEFAULT '', created INTEGER NOT NULL,
  started INTEGER NOT NULL DEFAULT 0, ended INTEGER NOT NULL DEFAULT 0, stats TEXT NOT NULL DEFAULT '{}',
  hls INTEGER NOT NULL DEFAULT 0, hls_replay INTEGER NOT NULL DEFAULT 1, title TEXT NOT NULL DEFAULT '',
  labels TEXT NOT NULL DEFAULT '', watch_hash TEXT NOT NULL DEFAULT '', watch_enc BLOB, pass_enc BLOB);
CREATE TABLE IF NOT EXISTS recordings(
  id TEXT PRIMARY KEY, broadcast_id TEXT NOT NULL, user_id INTEGER NOT NULL, path TEXT NOT NULL,
  state TEXT NOT NULL, created INTEGER NOT NULL, duration_ms INTEGER NOT NULL DEFAULT 0,
  size INTEGER NOT NULL DEFAULT 0, speakers TEXT NOT NULL DEFAULT '', poster TEXT NOT NULL DEFAULT '',
  note TEXT NOT NULL DEFAULT '', speaker_names TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS deliveries(
  id INTEGER PRIMARY KEY, event TEXT NOT NULL, url TEXT NOT NULL, attempt INTEGER NOT NULL,
  status INTEGER NOT NULL, error TEXT NOT NULL, at INTEGER NOT NULL);
`

// store is the server's SQLite database.
type store struct {
	db *sql.DB
}

func openStore(dir string) (*store, error) {
	dsn := "file:" + filepath.Join(dir, "roomcast.db") + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	// One connection: SQLite serialises writers anyway, and this keeps
	// transactions simple.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("database schema: %w", err)
	}
	if err := migrate(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("database schema: %w", err)
	}
	return &store{db: db}, nil
}

// addedColumns are columns added to tables after their first release: a
// database created before gets them with their defaults.
var addedColumns = []struct{ table, column, def string }{
	{"broadcasts", "hls", "INTEGER NOT NULL DEFAULT 0"},
	{"broadcasts", "hls_replay", "INTEGER NOT NULL DEFAULT 1"},
	{"broadcasts", "title", "TEXT NOT NULL DEFAULT ''"},
	{"broadcasts", "labels", "TEXT NOT NULL DEFAULT ''"},
	{"broadcasts", "watch_hash", "TEXT NOT NULL DEFAULT ''"},
	{"broadcasts", "watch_enc", "BLOB"},
	{"broadcasts", "pass_enc", "BLOB"},
	{"recordings", "speaker_names", "TEXT NOT NULL DEFAULT ''"},
}

func migrate(db *sql.DB) error {
	for _, c := range addedColumns {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM pragma_table_info(?) WHERE name=?`, c.table, c.column).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if _, err := db.Exec(`ALTER TABLE ` + c.table + ` ADD COLUMN ` + c.column + ` ` + c.def); err != nil {
				return err
			}
		}
	}
	_, err := db.Exec(`CREATE INDEX IF NOT EXISTS broadcasts_watch ON broadcasts(watch_hash) WHERE watch_hash!=''`)
	return err
}

func (s *store) Close() error { return s.db.Close() }

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func (s *store) meta(k string) (string, error) {
	var v string
	err := s.db.QueryRow(`SELECT v FROM meta WHERE k=?`, k).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return v, err
}

func (s *store) setMeta(k, v string) error {
	_, err := s.db.Exec(`INSERT INTO meta(k,v) VALUES(?,?) ON CONFLICT(k) DO UPDATE SET v=excluded.v`, k, v)
	return err
}

// user is an account.
type user struct {
	ID    int64
	Name  string
	Hash  string
	Admin bool
}

func (s *store) userCount() (int, error) {
	var n int
	err := s.db.QueryRow(`SELECT count(*) FROM users`).Scan(&n)
	return n, err
}

func (s *store) createUser(name, hash string, admin bool, now time.Time) (int64, error) {
	r, err := s.db.Exec(`INSERT INTO users(name,hash,admin,created) VALUES(?,?,?,?)`, name, hash, admin, ms(now))
	if err != nil {
		return 0, err
	}
	return r.LastInsertId()
}

func (s *store) userBy(q string, arg any) (user, error) {
	var u user
	err := s.db.QueryRow(`SELECT id,name,hash,admin FROM users WHERE `+q, arg).Scan(&u.ID, &u.Name, &u.Hash, &u.Admin)
	if errors.Is(err, sql.ErrNoRows) {
		return u, ErrNotFound
	}
	return u, err
}

// broadcastRow is a broadcast as stored.
type broadcastRow struct {
	ID        string
	UserID    int64
	Room      string
	Layout    string
	Width     int
	Height    int
	Record    bool
	DestsEnc  []byte
	DestNames string
	StartAt   time.Time
	Duration  time.Duration
	State     string
	Error     string
	Created   time.Time
	Started   time.Time
	Ended     time.Time
	Stats     string
	// HLS publishes a watch page; HLSReplay keeps the segments after the
	// end (the same URL becomes the replay).
	HLS, HLSReplay bool
	// Title is shown on the watch page; Labels is the label style
	// (name, initials, none) of the tiles and of the speakers' names shown.
	Title, Labels string
	// WatchHash finds the broadcast by its watch token; WatchEnc is the
	// token sealed for the host's views, PassEnc the sealed passcode.
	WatchHash         string
	WatchEnc, PassEnc []byte
}

const broadcastCols = `id,user_id,room,layout,width,height,record,dests_enc,dest_names,start_at,duration_ms,state,error,created,started,ended,stats,hls,hls_replay,title,labels,watch_hash,watch_enc,pass_enc`

func scanBroadcast(sc interface{ Scan(...any) error }) (broadcastRow, error) {
	var b broadcastRow
	var startAt, dur, created, started, ended int64
	err := sc.Scan(&b.ID, &b.UserID, &b.Room, &b.Layout, &b.Width, &b.Height, &b.Record, &b.DestsEnc, &b.DestNames,
		&startAt, &dur, &b.State, &b.Error, &created, &started, &ended, &b.Stats,
		&b.HLS, &b.HLSReplay, &b.Title, &b.Labels, &b.WatchHash, &b.WatchEnc, &b.PassEnc)
	b.StartAt, b.Duration, b.Created, b.Started, b.Ended = fromMS(startAt), time.Duration(dur)*time.Millisecond,
		fromMS(created), fromMS(started), fromMS(ended)
	return b, err
}

func (s *store) insertBroadcast(b broadcastRow) error {
	_, err := s.db.Exec(`INSERT INTO broadcasts(`+broadcastCols+`) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		b.ID, b.UserID, b.Room, b.Layout, b.Width, b.Height, b.Record, b.DestsEnc, b.DestNames, ms(b.StartAt),
		b.Duration.Milliseconds(), b.State, b.Error, ms(b.Created), ms(b.Started), ms(b.Ended), b.Stats,
		b.HLS, b.HLSReplay, b.Title, b.Labels, b.WatchHash, b.WatchEnc, b.PassEnc)
	return err
}

func (s *store) updateBroadcast(id, state, errMsg string, started, ended time.Time, stats string) error {
	_, err := s.db.Exec(`UPDATE broadcasts SET state=?, error=?, started=?, ended=?, stats=? WHERE id=?`,
		state, errMsg, ms(started), ms(ended), stats, id)
	return err
}

func (s *store) broadcast(id string) (broadcastRow, error) {
	b, err := scanBroadcast(s.db.QueryRow(`SELECT `+broadcastCols+` FROM broadcasts WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return b, ErrNotFound
	}
	return b, err
}

// broadcastByWatch finds a broadcast by the hash of its watch token.
func (s *store) broadcastByWatch(hash string) (broadcastRow, error) {
	b, err := scanBroadcast(s.db.QueryRow(`SELECT `+broadcastCols+` FROM broadcasts WHERE watch_hash=? AND watch_hash!=''`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return b, ErrNotFound
	}
	return b, err
}

// broadcasts lists broadcasts, newest first; userID 0 lists everyone's.
func (s *store) broadcasts(userID int64, where string, args ...any) ([]broadcastRow, error) {
	q := `SELECT ` + broadcastCols + ` FROM broadcasts WHERE 1=1`
	if userID != 0 {
		q += ` AND user_id=?`
		args = append([]any{userID}, args...)
	}
	if where != "" {
		q += ` AND ` + where
	}
	rows, err := s.db.Query(q+` ORDER BY created DESC LIMIT 200`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []broadcastRow
	for rows.Next() {
		b, err := scanBroadcast(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// recordingRow is a recording as stored.
type recordingRow struct {
	ID          string
	BroadcastID string
	UserID      int64
	Path        string
	State       string // recording, ready, interrupted, failed
	Created     time.Time
	Duration    time.Duration
	Size        int64
	Speakers    string
	Poster      string
	Note        string
	// SpeakerNames: what the tiles showed of the names of everyone on the
	// picture during the broadcast, one a line (per its label style).
	SpeakerNames string
}

const recordingCols = `id,broadcast_id,user_id,path,state,created,duration_ms,size,speakers,poster,note,speaker_names`

func scanRecording(sc interface{ Scan(...any) error }) (recordingRow, error) {
	var r recordingRow
	var created, dur int64
	err := sc.Scan(&r.ID, &r.BroadcastID, &r.UserID, &r.Path, &r.State, &created, &dur, &r.Size, &r.Speakers, &r.Poster, &r.Note, &r.SpeakerNames)
	r.Created, r.Duration = fromMS(created), time.Duration(dur)*time.Millisecond
	return r, err
}

func (s *store) insertRecording(r recordingRow) error {
	_, err := s.db.Exec(`INSERT INTO recordings(`+recordingCols+`) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)`,
		r.ID, r.BroadcastID, r.UserID, r.Path, r.State, ms(r.Created), r.Duration.Milliseconds(), r.Size, r.Speakers, r.Poster, r.Note, r.SpeakerNames)
	return err
}

func (s *store) updateRecording(r recordingRow) error {
	_, err := s.db.Exec(`UPDATE recordings SET state=?, duration_ms=?, size=?, speakers=?, poster=?, note=?, speaker_names=? WHERE id=?`,
		r.State, r.Duration.Milliseconds(), r.Size, r.Speakers, r.Poster, r.Note, r.SpeakerNames, r.ID)
	return err
}

func (s *store) recording(id string) (recordingRow, error) {
	r, err := scanRecording(s.db.QueryRow(`SELECT `+recordingCols+` FROM recordings WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrNotFound
	}
	return r, err
}

func (s *store) recordings(userID int64, where string, args ...any) ([]recordingRow, error) {
	q := `SELECT ` + recordingCols + ` FROM recordings WHERE 1=1`
	if userID != 0 {
		q += ` AND user_id=?`
		args = append([]any{userID}, args...)
	}
	if where != "" {
		q += ` AND ` + where
	}
	rows, err := s.db.Query(q+` ORDER BY created DESC`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []recordingRow
	for rows.Next() {
		r, err := scanRecording(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *store) deleteRecording(id string) error {
	_, err := s.db.Exec(`DELETE FROM recordings WHERE id=?`, id)
	return err
}

// destinationRow is a saved destination; the key stays encrypted.
type destinationRow struct {
	ID     int64
	UserID int64
	Name   string
	URL    string
	KeyEnc []byte
}

func (s *store) insertDestination(d destinationRow, now time.Time) (int64, error) {
	r, err := s.db.Exec(`INSERT INTO destinations(user_id,name,url,key_enc,created) VALUES(?,?,?,?,?)`,
		d.UserID, d.Name, d.URL, d.KeyEnc, ms(now))
	if err != nil {
		return 0, err
	}
	return r.LastInsertId()
}

func (s *store) destinations(userID int64) ([]destinationRow, error) {
	rows, err := s.db.Query(`SELECT id,user_id,name,url,key_enc FROM destinations WHERE user_id=? ORDER BY name`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []destinationRow
	for rows.Next() {
		var d destinationRow
		if err := rows.Scan(&d.ID, &d.UserID, &d.Name, &d.URL, &d.KeyEnc); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (s *store) deleteDestination(userID, id int64) error {
	_, err := s.db.Exec(`DELETE FROM destinations WHERE user_id=? AND id=?`, userID, id)
	return err
}

func (s *store) logDelivery(event, url string, attempt, status int, errMsg string, now time.Time) {
	_, _ = s.db.ExecContext(context.Background(), `INSERT INTO deliveries(event,url,attempt,status,error,at) VALUES(?,?,?,?,?,?)`,
		event, url, attempt, status, errMsg, ms(now))
}
