package snapshot

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "github.com/mattn/go-sqlite3" // the driver kine itself uses

	"github.com/kubox-io/kubox/pkg/atomicfile"
)

// openSQLite opens file with kine's busy timeout; ro opens it read-only,
// which also keeps a stopped server's WAL as it is.
func openSQLite(file string, ro bool) (*sql.DB, error) {
	q := url.Values{"_busy_timeout": {"30000"}}
	if ro {
		q.Set("mode", "ro")
	}
	db, err := sql.Open("sqlite3", "file:"+file+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// saveSQLite copies src into dst with VACUUM INTO: one read transaction,
// so the copy is the database as of one commit, while kine keeps writing.
func saveSQLite(ctx context.Context, src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("no SQLite datastore at %s (%v): give the server's --data-dir, or run on the server", src, errors.Unwrap(err))
	}
	db, err := openSQLite(src, true)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return fmt.Errorf("cannot copy the SQLite datastore %s: %w", src, err)
	}
	return checkSQLite(ctx, dst)
}

// checkSQLite proves file is a whole kine database: SQLite's integrity
// check passes and the kine table is there.
func checkSQLite(ctx context.Context, file string) error {
	head := make([]byte, 16)
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	_, err = io.ReadFull(f, head)
	f.Close()
	if err != nil || string(head) != "SQLite format 3\x00" {
		return fmt.Errorf("%s is not an SQLite snapshot (no SQLite header)", file)
	}
	db, err := openSQLite(file, true)
	if err != nil {
		return err
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return fmt.Errorf("%s is not a whole SQLite database: %v", file, err)
	}
	if res != "ok" {
		return fmt.Errorf("%s fails SQLite's integrity check: %s", file, res)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'kine'").Scan(&n); err != nil || n != 1 {
		return fmt.Errorf("%s holds no kubox cluster state (no kine table)", file)
	}
	return nil
}

// Restored records a restore in the database directory, so that a server
// restarted with the same --cluster-reset flags does not roll back again.
type Restored struct {
	From       string    `json:"from"`
	SHA256     string    `json:"sha256"`
	At         time.Time `json:"at"`
	PreRestore string    `json:"preRestore,omitempty"`
	Revision   int64     `json:"revision"`
}

func markerPath(dbFile string) string { return filepath.Join(filepath.Dir(dbFile), "restored.json") }

// LastRestore is the last restore recorded beside dbFile, if any.
func LastRestore(dbFile string) (Restored, bool) {
	var r Restored
	data, err := os.ReadFile(markerPath(dbFile))
	if err != nil || json.Unmarshal(data, &r) != nil {
		return Restored{}, false
	}
	return r, true
}

// RestoreSQLite replaces the SQLite database dbFile with the snapshot at
// path. The caller holds the server lock: no kine has dbFile open.
//
// The snapshot is checked (metadata hash, integrity) before anything is
// touched; the database it replaces is moved to pre-restore-<time>/ beside
// it. Revisions continue from the higher of the two databases' and all
// older ones are marked compacted: a node or client still watching from a
// revision of the replaced database must list afresh, and so sees the
// restored state rather than missing the change.
func RestoreSQLite(ctx context.Context, path, dbFile string, now time.Time) (Restored, error) {
	m, err := Verify(path)
	if err != nil {
		return Restored{}, err
	}
	if m.Datastore != "" && m.Datastore != "sqlite" {
		return Restored{}, fmt.Errorf("snapshot %s is of a %s datastore; this server's is SQLite", path, m.Datastore)
	}
	if err := checkSQLite(ctx, path); err != nil {
		return Restored{}, fmt.Errorf("cannot restore: %v; nothing was changed", err)
	}
	dir := filepath.Dir(dbFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Restored{}, err
	}
	tmp := dbFile + ".restore"
	if err := copyFile(path, tmp); err != nil {
		return Restored{}, fmt.Errorf("cannot copy the snapshot into %s: %w; nothing was changed", dir, err)
	}
	defer os.Remove(tmp)
	oldRev := int64(0)
	if _, err := os.Stat(dbFile); err == nil {
		oldRev = currentRevision(ctx, dbFile) // 0 when unreadable: replaced anyway
	}
	rev, err := rebase(ctx, tmp, oldRev)
	if err != nil {
		return Restored{}, fmt.Errorf("cannot prepare the snapshot: %w; nothing was changed", err)
	}
	if err := syncFile(tmp); err != nil {
		return Restored{}, err
	}
	r := Restored{From: path, SHA256: m.SHA256, At: now.UTC(), Revision: rev}
	if r.SHA256 == "" {
		_, r.SHA256, _ = digest(path)
	}
	if _, err := os.Stat(dbFile); err == nil {
		r.PreRestore = filepath.Join(dir, fmt.Sprintf("pre-restore-%d", now.Unix()))
		if err := os.Mkdir(r.PreRestore, 0o700); err != nil {
			return Restored{}, fmt.Errorf("cannot keep the current database: %w; nothing was changed", err)
		}
		for _, suffix := range []string{"", "-wal", "-shm"} {
			err := os.Rename(dbFile+suffix, filepath.Join(r.PreRestore, filepath.Base(dbFile)+suffix))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return Restored{}, fmt.Errorf("cannot move the current database to %s: %w", r.PreRestore, err)
			}
		}
	}
	if err := os.Rename(tmp, dbFile); err != nil {
		return Restored{}, fmt.Errorf("cannot put the snapshot in place: %w; the previous database is in %s", err, r.PreRestore)
	}
	if err := syncDir(dir); err != nil {
		return Restored{}, err
	}
	data, _ := json.MarshalIndent(r, "", "  ")
	return r, atomicfile.Write(markerPath(dbFile), append(data, '\n'), 0o600)
}

// currentRevision is kine's current revision in file, 0 if unreadable.
func currentRevision(ctx context.Context, file string) int64 {
	db, err := openSQLite(file, true)
	if err != nil {
		return 0
	}
	defer db.Close()
	var rev sql.NullInt64
	if db.QueryRowContext(ctx, "SELECT MAX(id) FROM kine").Scan(&rev) != nil {
		return 0
	}
	return rev.Int64
}

// rebase prepares a restored kine database: history removed (what kine's
// compaction would remove), and the compaction mark, which is also the
// newest row, moved past both databases' revisions.
func rebase(ctx context.Context, file string, oldRev int64) (int64, error) {
	db, err := openSQLite(file, false)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var snapRev sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT MAX(id) FROM kine").Scan(&snapRev); err != nil {
		return 0, err
	}
	rev := max(snapRev.Int64, oldRev) + 1
	if _, err := tx.ExecContext(ctx, `DELETE FROM kine WHERE name != 'compact_rev_key' AND (deleted != 0 OR id IN (
		SELECT prev_revision FROM kine WHERE name != 'compact_rev_key' AND prev_revision != 0))`); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, "UPDATE kine SET id = ?, prev_revision = ? WHERE name = 'compact_rev_key'", rev, rev)
	if err != nil {
		return 0, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO kine (id, name, created, deleted, create_revision, prev_revision, lease, value, old_value)
			VALUES (?, 'compact_rev_key', 1, 0, 0, ?, 0, '', '')`, rev, rev); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	if _, err := db.ExecContext(ctx, "VACUUM"); err != nil {
		return 0, err
	}
	return rev, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeFrom(dst, in)
}

// writeFrom writes r's content into a new 0600 file dst.
func writeFrom(dst string, r io.Reader) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
