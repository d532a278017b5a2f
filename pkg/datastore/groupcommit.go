package datastore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/k3s-io/kine/pkg/drivers/generic"
	"github.com/k3s-io/kine/pkg/server"
)

// maxGroup bounds how many appends share one SQLite transaction, so that a
// burst cannot hold the write lock (and the first writer's reply) for long.
const maxGroup = 128

// groupCommit is kine's SQLite dialect with its appends committed in groups.
// Every API write reaches SQLite as a transaction of one conditional INSERT
// (kine's Append opens it read-committed); with synchronous=FULL each such
// commit waits for its own flush, so concurrent writers queued behind one
// another's flushes. Here the appends that arrive while a group is being
// written wait for the next group and share its single commit and flush.
// Each INSERT keeps kine's condition (the name's latest revision is the one
// the writer read), checked in order inside the group, so conflicts end as
// they would alone; no write is acknowledged before its group's commit has
// returned. Compaction's transactions (serializable) pass through as they
// are.
type groupCommit struct {
	*generic.Generic
	ctx  context.Context
	reqs chan *appendReq
	// committed is the highest revision the writer has committed.
	committed atomic.Int64
}

// appendReq is one INSERT waiting for its group. cols are the INSERT's
// arguments in kine's order.
type appendReq struct {
	ctx  context.Context
	cols []any
	id   int64
	err  error
	done chan struct{}
}

// newGroupCommit starts the writer; it stops when ctx ends, after failing
// whatever is still queued.
func newGroupCommit(ctx context.Context, wg *sync.WaitGroup, d *generic.Generic) *groupCommit {
	g := &groupCommit{Generic: d, ctx: ctx, reqs: make(chan *appendReq, maxGroup)}
	wg.Add(1)
	go func() {
		defer wg.Done()
		g.run()
	}()
	return g
}

// BeginTx gives kine's Append (the only read-committed transaction kine
// opens) a transaction whose INSERT joins a group; others are SQLite's own.
func (g *groupCommit) BeginTx(ctx context.Context, opts *sql.TxOptions) (server.Transaction, error) {
	if opts == nil || opts.Isolation != sql.LevelReadCommitted {
		return g.Generic.BeginTx(ctx, opts)
	}
	return &groupTx{g: g, ctx: ctx, opts: opts}, nil
}

// insert queues one INSERT and waits for its group's commit. Once queued,
// it waits even if ctx ends: the group may already hold it, and a write
// must not be reported failed and then commit.
func (g *groupCommit) insert(ctx context.Context, cols []any) (int64, error) {
	r := &appendReq{ctx: ctx, cols: cols, done: make(chan struct{})}
	select {
	case g.reqs <- r:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-g.ctx.Done():
		return 0, errStopped
	}
	<-r.done
	if r.err != nil && g.TranslateErr != nil {
		return 0, g.TranslateErr(r.err)
	}
	return r.id, r.err
}

var errStopped = errors.New("datastore is stopping")

func (g *groupCommit) run() {
	group := make([]*appendReq, 0, maxGroup)
	for {
		select {
		case <-g.ctx.Done():
			g.drain()
			return
		case r := <-g.reqs:
			group = append(group[:0], r)
		}
	more:
		for len(group) < maxGroup {
			select {
			case r := <-g.reqs:
				group = append(group, r)
			default:
				break more
			}
		}
		g.commit(group)
		for _, r := range group {
			close(r.done)
		}
	}
}

// drain fails the appends queued when the datastore stops.
func (g *groupCommit) drain() {
	for {
		select {
		case r := <-g.reqs:
			r.err = errStopped
			close(r.done)
		default:
			return
		}
	}
}

// commit writes one group. The statements run under the writer's context,
// not the callers': interrupting one INSERT inside a transaction makes
// SQLite roll back the whole transaction. If any INSERT fails (kine's
// condition failing is not an error, it inserts nothing), the group is
// rolled back and its appends run one transaction each, so that an error
// reaches only the write that caused it.
func (g *groupCommit) commit(group []*appendReq) {
	live := group[:0:0]
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	if len(live) > 1 {
		if err := g.write(live); err == nil {
			return
		}
	}
	for _, r := range live {
		r.err = g.write([]*appendReq{r})
	}
}

// write runs the INSERTs of rs in one transaction and commits it, setting
// each one's id (0 when kine's condition kept it out).
func (g *groupCommit) write(rs []*appendReq) error {
	tx, err := g.DB.BeginTx(g.ctx, nil)
	if err != nil {
		return err
	}
	for _, r := range rs {
		res, err := tx.ExecContext(g.ctx, g.InsertSQL.Query, r.cols...)
		if err == nil {
			r.id, err = insertedID(res)
		}
		if err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for _, r := range rs {
		if r.id > g.committed.Load() {
			g.committed.Store(r.id) // one writer: no other store races this one
		}
	}
	return nil
}

// groupBackend is kine's backend over a groupCommit, with the current
// revision the writer knows of. kine's log keeps its own by compare-and-swap
// from the revision each append read before it began, which assumes appends
// one at a time: when two of one group swap out of order, the later one
// fails and the log reports the revision before it until the next write.
// Watch progress notifications carry that figure, and the API server, which
// reads the true one in a consistent list, then waits for a revision the
// progress never reaches ("Too large resource version"). kine sends a
// progress notification only once every watcher has had the events up to
// it, so a revision from the writer is never reported early.
type groupBackend struct {
	server.Backend
	g *groupCommit
}

func (b *groupBackend) CurrentRevision(ctx context.Context) (int64, error) {
	rev, err := b.Backend.CurrentRevision(ctx)
	if err != nil {
		return rev, err
	}
	return max(rev, b.g.committed.Load()), nil
}

func insertedID(res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return 0, err
	}
	return res.LastInsertId()
}

// groupTx is the transaction Append opens: its INSERT goes to a group.
// Anything else asked of it (kine asks nothing else today) runs in a
// transaction of its own, opened on first use, as kine's would.
type groupTx struct {
	g    *groupCommit
	ctx  context.Context
	opts *sql.TxOptions
	tx   server.Transaction
}

func (t *groupTx) own() (server.Transaction, error) {
	if t.tx == nil {
		tx, err := t.g.Generic.BeginTx(t.ctx, t.opts)
		if err != nil {
			return nil, err
		}
		t.tx = tx
	}
	return t.tx, nil
}

func (t *groupTx) Insert(ctx context.Context, key string, created, deleted bool, previousRevision, ttl int64, value []byte) (int64, error) {
	if t.tx != nil {
		return t.tx.Insert(ctx, key, created, deleted, previousRevision, ttl, value)
	}
	return t.g.insert(ctx, []any{previousRevision, key, flag(created), flag(deleted), previousRevision, ttl, value, key, previousRevision})
}

func flag(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func (t *groupTx) Commit() error {
	if t.tx != nil {
		return t.tx.Commit()
	}
	return nil
}

func (t *groupTx) MustCommit() {
	if t.tx != nil {
		t.tx.MustCommit()
	}
}

func (t *groupTx) Rollback() error {
	if t.tx != nil {
		return t.tx.Rollback()
	}
	return nil
}

func (t *groupTx) MustRollback() {
	if t.tx != nil {
		t.tx.MustRollback()
	}
}

func (t *groupTx) GetCompactRevision(ctx context.Context) (int64, error) {
	tx, err := t.own()
	if err != nil {
		return 0, err
	}
	return tx.GetCompactRevision(ctx)
}

func (t *groupTx) SetCompactRevision(ctx context.Context, revision int64) error {
	tx, err := t.own()
	if err != nil {
		return err
	}
	return tx.SetCompactRevision(ctx, revision)
}

func (t *groupTx) Compact(ctx context.Context, from, to int64) (int64, error) {
	tx, err := t.own()
	if err != nil {
		return 0, err
	}
	return tx.Compact(ctx, from, to)
}

func (t *groupTx) DeleteRevision(ctx context.Context, revision int64) error {
	tx, err := t.own()
	if err != nil {
		return err
	}
	return tx.DeleteRevision(ctx, revision)
}

func (t *groupTx) CurrentRevision(ctx context.Context) (int64, error) {
	tx, err := t.own()
	if err != nil {
		return 0, err
	}
	return tx.CurrentRevision(ctx)
}
