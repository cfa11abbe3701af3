package serve

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// AuditEntry is one line of the audit log (JSON lines). Hash covers every
// other field and the previous line's hash, so editing or removing a line
// breaks the chain from there on.
type AuditEntry struct {
	Seq    int64  `json:"seq"`
	Time   string `json:"time"`
	Actor  string `json:"actor"`
	Action string `json:"action"`
	Target string `json:"target"`
	Detail string `json:"detail,omitempty"`
	Prev   string `json:"prev"`
	Hash   string `json:"hash"`
}

func (e AuditEntry) digest() string {
	e.Hash = ""
	b, _ := json.Marshal(e)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// auditLog appends entries to a file; append-only (O_APPEND), fsynced.
type auditLog struct {
	mu   sync.Mutex
	f    *os.File
	seq  int64
	last string
	now  func() time.Time
	// anchor records the latest hash elsewhere (the database) so a cut
	// tail is detected too.
	anchor func(seq int64, hash string)
}

func openAudit(path string, now func() time.Time, anchor func(int64, string)) (*auditLog, error) {
	a := &auditLog{now: now, anchor: anchor}
	if f, err := os.Open(path); err == nil {
		res, verr := VerifyAudit(f)
		f.Close()
		if verr != nil {
			return nil, fmt.Errorf("audit log %s: %w", path, verr)
		}
		a.seq, a.last = res.Seq, res.Last
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	a.f = f
	return a, nil
}

// Append adds one entry.
func (a *auditLog) Append(actor, action, target, detail string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := AuditEntry{Seq: a.seq + 1, Time: a.now().UTC().Format(time.RFC3339Nano), Actor: actor, Action: action,
		Target: target, Detail: detail, Prev: a.last}
	e.Hash = e.digest()
	b, _ := json.Marshal(e)
	if _, err := a.f.Write(append(b, '\n')); err != nil {
		return err
	}
	if err := a.f.Sync(); err != nil {
		return err
	}
	a.seq, a.last = e.Seq, e.Hash
	if a.anchor != nil {
		a.anchor(e.Seq, e.Hash)
	}
	return nil
}

func (a *auditLog) Close() error { return a.f.Close() }

// AuditResult is what a verification saw.
type AuditResult struct {
	Seq  int64  // last sequence number
	Last string // last hash
}

// ErrAuditBroken: the chain does not verify.
var ErrAuditBroken = errors.New("audit log chain broken")

// VerifyAudit checks every line's hash and link to the previous one.
func VerifyAudit(r io.Reader) (AuditResult, error) {
	var res AuditResult
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			return res, fmt.Errorf("%w: line %d is empty", ErrAuditBroken, line)
		}
		var e AuditEntry
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return res, fmt.Errorf("%w: line %d: %v", ErrAuditBroken, line, err)
		}
		if e.Seq != res.Seq+1 {
			return res, fmt.Errorf("%w: line %d has seq %d, want %d (a line was removed or reordered)", ErrAuditBroken, line, e.Seq, res.Seq+1)
		}
		if e.Prev != res.Last {
			return res, fmt.Errorf("%w: line %d does not follow line %d (a line was removed or edited)", ErrAuditBroken, line, line-1)
		}
		if e.digest() != e.Hash {
			return res, fmt.Errorf("%w: line %d was edited (hash mismatch)", ErrAuditBroken, line)
		}
		res.Seq, res.Last = e.Seq, e.Hash
	}
	return res, sc.Err()
}

// VerifyAuditFile verifies a log file; with the data directory it also
// checks that the file ends where the database's anchor says (a cut tail).
func VerifyAuditFile(path, dataDir string) (AuditResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return AuditResult{}, err
	}
	defer f.Close()
	res, err := VerifyAudit(f)
	if err != nil || dataDir == "" {
		return res, err
	}
	st, err := openStore(dataDir)
	if err != nil {
		return res, err
	}
	defer st.Close()
	anchor, err := st.meta("audit_anchor")
	if err == nil && anchor != fmt.Sprintf("%d:%s", res.Seq, res.Last) {
		return res, fmt.Errorf("%w: the file ends at entry %d but the database recorded %s (lines removed at the end)", ErrAuditBroken, res.Seq, anchor)
	}
	return res, nil
}
