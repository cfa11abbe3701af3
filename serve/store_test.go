package serve

import (
	"database/sql"
	"path/filepath"
	"testing"
)

// TestStoreMigratesOldDatabase: a data directory from before the watch
// pages and speaker names opens, keeps its rows, and gains the new columns
// with their defaults.
func TestStoreMigratesOldDatabase(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "roomcast.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE broadcasts(
  id TEXT PRIMARY KEY, user_id INTEGER NOT NULL, room TEXT NOT NULL, layout TEXT NOT NULL,
  width INTEGER NOT NULL, height INTEGER NOT NULL, record INTEGER NOT NULL,
  dests_enc BLOB, dest_names TEXT NOT NULL DEFAULT '', start_at INTEGER NOT NULL, duration_ms INTEGER NOT NULL,
  state TEXT NOT NULL, error TEXT NOT NULL DEFAULT '', created INTEGER NOT NULL,
  started INTEGER NOT NULL DEFAULT 0, ended INTEGER NOT NULL DEFAULT 0, stats TEXT NOT NULL DEFAULT '{}')`,
		`CREATE TABLE recordings(
  id TEXT PRIMARY KEY, broadcast_id TEXT NOT NULL, user_id INTEGER NOT NULL, path TEXT NOT NULL,
  state TEXT NOT NULL, created INTEGER NOT NULL, duration_ms INTEGER NOT NULL DEFAULT 0,
  size INTEGER NOT NULL DEFAULT 0, speakers TEXT NOT NULL DEFAULT '', poster TEXT NOT NULL DEFAULT '',
  note TEXT NOT NULL DEFAULT '')`,
		`INSERT INTO broadcasts(id,user_id,room,layout,width,height,record,start_at,duration_ms,state,created) VALUES('b_old',1,'demo:','grid',1280,720,1,1,0,'done',1)`,
		`INSERT INTO recordings(id,broadcast_id,user_id,path,state,created,speakers) VALUES('r_old','b_old',1,'/x.mp4','ready',1,'2')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	for i := 0; i < 2; i++ { // and a second open changes nothing
		st, err := openStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		b, err := st.broadcast("b_old")
		if err != nil || b.Room != "demo:" || b.HLS || !b.HLSReplay || b.WatchHash != "" || b.Labels != "" {
			t.Errorf("old broadcast after migration: %+v, %v", b, err)
		}
		r, err := st.recording("r_old")
		if err != nil || r.Speakers != "2" || r.SpeakerNames != "" {
			t.Errorf("old recording after migration: %+v, %v", r, err)
		}
		st.Close()
	}
}
