package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/inletdev/inlet/pkg/store"
)

// A replay holds a lock on its id while it runs: two runs of one id at
// once (a second terminal, a retried Job whose first pod still lives)
// joined the same group, split its partitions, and each waited for every
// copy's outcome counted by itself, forever. The lock is a Redis key
// (<key prefix>replay:<id>:lock, SET NX PX) holding who runs the replay;
// it is renewed every lockLease/3 while the run lives and deleted when it
// ends, so a run killed without releasing it holds it at most lockLease
// after its last renewal.
var lockLease = 30 * time.Second // a var for tests

// lockRelease bounds the release of the lock when a run ends (its ctx may
// be cancelled by then).
const lockRelease = 5 * time.Second

var (
	// renewScript extends the lease of KEYS[1] if it still holds ARGV[1]
	// (this run's value); 1 renewed, 0 not ours (expired, taken).
	renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)
	// unlockScript deletes KEYS[1] if it still holds ARGV[1]; 1 deleted,
	// 0 not ours.
	unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)
)

// Holder is the run holding a replay's lock, as the lock records it: the
// host and process id of the inletctl (or other caller of Run) and when
// it took the lock.
type Holder struct {
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
	// Op is what holds the id: "" a run of the replay, OpRemove a
	// removal of what it left (see Remove).
	Op string `json:"op,omitempty"`
	// Token tells this run's lock from another's with the same host and
	// pid; it is not shown.
	Token string `json:"token"`
}

// RunningError is returned by Run when another run of the same id holds
// its lock. It wraps ErrRunning.
type RunningError struct {
	ID     string
	Holder Holder // zero when the lock's value could not be read
}

func (e *RunningError) Error() string {
	who := "another run"
	if h := e.Holder; h.Host != "" || h.PID != 0 {
		who = fmt.Sprintf("another run (host %s, pid %d, since %s)", h.Host, h.PID, h.Since.UTC().Format(time.RFC3339))
	}
	if e.Holder.Op == OpRemove {
		who = strings.Replace(who, "another run", "inletctl replay rm", 1)
		return fmt.Sprintf("%s: replay %s is being removed by %s; wait for it to end (one killed without ending holds the id at most %v longer)",
			ErrRunning, e.ID, who, lockLease)
	}
	return fmt.Sprintf("%s: replay %s is being run by %s; wait for it to end, or stop it (a run killed without ending holds the id at most %v longer)",
		ErrRunning, e.ID, who, lockLease)
}

// OpRemove is Holder.Op while Remove holds a replay's lock.
const OpRemove = "remove"

func (e *RunningError) Unwrap() error { return ErrRunning }

// runLock is a replay's lock held by this run.
type runLock struct {
	rdb   redis.UniversalClient
	key   string
	value string
	stop  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

// lock takes id's lock under key, or returns a *RunningError naming the
// run that holds it. Once taken, it is renewed until unlock; should it
// be lost (its renewals failing for a whole lease, or the key taken by
// another run after it expired), lost is called with ErrLockLost.
func lock(ctx context.Context, rdb redis.UniversalClient, key, id string, lost func(error)) (*runLock, error) {
	return lockFor(ctx, rdb, key, id, "", lost)
}

// lockFor is lock for op (Holder.Op).
func lockFor(ctx context.Context, rdb redis.UniversalClient, key, id, op string, lost func(error)) (*runLock, error) {
	host, _ := os.Hostname()
	v, err := json.Marshal(Holder{Host: host, PID: os.Getpid(), Since: time.Now().UTC().Truncate(time.Second), Op: op, Token: store.NewToken()})
	if err != nil {
		return nil, err
	}
	l := &runLock{rdb: rdb, key: key, value: string(v), stop: make(chan struct{})}
	// Twice: a lock expiring between the SET and the GET is taken on
	// the second try.
	for range 2 {
		ok, err := rdb.SetNX(ctx, key, l.value, lockLease).Result()
		if err != nil {
			return nil, fmt.Errorf("replay %s: take its lock: %w", id, err)
		}
		if ok {
			l.wg.Add(1)
			go l.renew(lost)
			return l, nil
		}
		held, err := rdb.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("replay %s: read its lock: %w", id, err)
		}
		var h Holder
		_ = json.Unmarshal([]byte(held), &h) // unreadable: "another run"
		h.Token = ""
		return nil, &RunningError{ID: id, Holder: h}
	}
	return nil, &RunningError{ID: id}
}

// renew extends the lease every lockLease/3 until unlock. It calls lost
// (once) when the key no longer holds this run's value, or when no
// renewal succeeded for a whole lease (the key may have expired and been
// taken).
func (l *runLock) renew(lost func(error)) {
	defer l.wg.Done()
	every := lockLease / 3
	t := time.NewTicker(every)
	defer t.Stop()
	renewed := time.Now()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		n, err := renewScript.Run(ctx, l.rdb, []string{l.key}, l.value, lockLease.Milliseconds()).Int()
		cancel()
		switch {
		case err == nil && n == 1:
			renewed = time.Now()
			continue
		case err == nil:
			lost(fmt.Errorf("%w: its key no longer holds this run (expired, or taken by another run)", ErrLockLost))
			return
		case time.Since(renewed) >= lockLease:
			lost(fmt.Errorf("%w: not renewed for %v: %w", ErrLockLost, lockLease, err))
			return
		}
	}
}

// unlock stops the renewals and deletes the key if it still holds this
// run's value. ctx is not cancelled by the caller's stop: the release is
// bounded by lockRelease.
func (l *runLock) unlock(ctx context.Context) error {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lockRelease)
	defer cancel()
	return unlockScript.Run(ctx, l.rdb, []string{l.key}, l.value).Err()
}
